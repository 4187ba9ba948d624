"""An sRGB ICC profile (ICC.1:2001-04, version 2.1), generated, for the PDF/A output intent.

PDF/A needs an output intent with an ICC profile when the page uses device
colours. Rather than depend on a profile file that some package may move or
change, the profile is computed here: the IEC 61966-2-1 transfer curve as a
1024-entry table and the sRGB primaries adapted to D50, as in the profiles
that colour-management systems ship. The bytes are the same on every machine.
"""

from __future__ import annotations

import struct
from functools import cache

__all__ = ["SRGB_DESCRIPTION", "srgb_profile"]

SRGB_DESCRIPTION = "sRGB IEC61966-2.1"
_D50 = (0.9642, 1.0, 0.8249)
_RED = (0.4360747, 0.2225045, 0.0139322)
_GREEN = (0.3850649, 0.7168786, 0.0971045)
_BLUE = (0.1430804, 0.0606169, 0.7141733)


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def _curve() -> bytes:
    n = 1024
    values = []
    for i in range(n):
        c = i / (n - 1)
        lin = c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
        values.append(round(lin * 65535))
    return b"curv\0\0\0\0" + struct.pack(">I", n) + struct.pack(f">{n}H", *values)


def _desc(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(ascii_text))
        + ascii_text
        + struct.pack(">II", 0, 0)  # no Unicode description
        + struct.pack(">HB", 0, 0)
        + b"\0" * 67  # no ScriptCode description
    )


def _text(text: str) -> bytes:
    return b"text\0\0\0\0" + text.encode("ascii") + b"\0"


@cache
def srgb_profile() -> bytes:
    """The profile's bytes (about 2.6 KB)."""
    curve = _curve()
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _desc(SRGB_DESCRIPTION)),
        (b"cprt", _text("No copyright, use freely")),
        (b"wtpt", _xyz(*_D50)),
        (b"rXYZ", _xyz(*_RED)),
        (b"gXYZ", _xyz(*_GREEN)),
        (b"bXYZ", _xyz(*_BLUE)),
        (b"rTRC", curve),
    ]
    shared = {b"gTRC": b"rTRC", b"bTRC": b"rTRC"}
    table_size = 4 + 12 * (len(tags) + len(shared))
    offset = 128 + table_size
    entries: dict[bytes, tuple[int, int]] = {}
    data = b""
    for sig, body in tags:
        entries[sig] = (offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    for sig, same in shared.items():
        entries[sig] = entries[same]
    table = struct.pack(">I", len(entries)) + b"".join(
        sig + struct.pack(">II", *entries[sig]) for sig in entries
    )
    size = 128 + len(table) + len(data)
    header = (
        struct.pack(">I", size)
        + b"\0\0\0\0"  # preferred CMM: none
        + bytes([2, 0x10, 0, 0])  # version 2.1
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2000, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0\0\0\0"  # primary platform
        + b"\0\0\0\0"  # flags
        + b"\0\0\0\0"  # device manufacturer
        + b"\0\0\0\0"  # device model
        + b"\0" * 8  # device attributes
        + struct.pack(">I", 0)  # perceptual intent
        + _s15(_D50[0])
        + _s15(_D50[1])
        + _s15(_D50[2])
        + b"\0\0\0\0"  # creator
    )
    header += b"\0" * (128 - len(header))
    return header + table + data
