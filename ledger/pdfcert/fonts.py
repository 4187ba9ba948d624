"""Embedded fonts: subsets of Noto Sans CJK SC as CID-keyed CFF (``FontFile3``).

Debian's ``fonts-noto-cjk`` ships Noto Sans CJK as OpenType collections with
CID-keyed CFF outlines (Adobe-Identity-0). fontTools' subsetter takes about
350 ms per call on them (it parses the 65,535-glyph font each time), which
alone would exceed the time budget of a certificate, so this module keeps
one parsed face per process and writes the subset CFF itself (Adobe TN 5176):

* glyphs are numbered 1..n in the order the page first uses them and each
  gets the same number as its CID (the charset is the identity), so the
  content stream's two-byte codes, the ``/W`` widths and the ``ToUnicode``
  map all use the same small numbers; two characters that share an outline
  in the font still get two codes, so ``ToUnicode`` is never ambiguous;
* charstrings are desubroutinized (no global or local subroutines are
  embedded) and copied with the Private DICT of their font dict, byte for
  byte except its ``Subrs`` entry, so hinting and widths stay as designed.

The result is deterministic: the same characters in the same order give the
same bytes.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import ConfigError

__all__ = ["FONT_DIR", "FontFace", "Subset", "load_face"]

FONT_DIR = Path("/usr/share/fonts/opentype/noto")
_FACE_NAME = "Noto Sans CJK SC"
_FILES = {"regular": "NotoSansCJK-Regular.ttc", "bold": "NotoSansCJK-Bold.ttc"}


@dataclass(frozen=True, slots=True)
class Subset:
    """A font subset ready to embed: CFF bytes and, per code 1..n, width and text."""

    cff: bytes
    widths: tuple[int, ...]
    """Advance widths (1/1000 em) of codes 1..n."""
    chars: tuple[str, ...]
    """The character each code 1..n stands for (for ``ToUnicode``)."""
    bbox: tuple[int, int, int, int]
    ascent: int
    descent: int
    cap_height: int
    postscript_name: str


class FontFace:
    """One face of Noto Sans CJK SC, parsed once; thread-safe subsetting."""

    def __init__(self, path: Path) -> None:
        from fontTools.ttLib import TTCollection

        try:
            collection = TTCollection(str(path), lazy=True)
        except OSError as e:
            raise ConfigError(
                f"font: cannot read {path} ({e.strerror}); install Debian's fonts-noto-cjk"
            ) from e
        fonts = [f for f in collection.fonts if f["name"].getDebugName(1) == _FACE_NAME]
        if not fonts:
            raise ConfigError(f"font: {path} has no {_FACE_NAME!r} face")
        self._font = font = fonts[0]
        self._lock = threading.Lock()
        self.cmap: dict[int, str] = font.getBestCmap()
        self._hmtx = font["hmtx"]
        head, hhea, os2 = font["head"], font["hhea"], font["OS/2"]
        if head.unitsPerEm != 1000:
            raise ConfigError(f"font: {path}: {head.unitsPerEm} units per em, expected 1000")
        self.bbox = (head.xMin, head.yMin, head.xMax, head.yMax)
        self.ascent, self.descent = int(hhea.ascent), int(hhea.descent)
        self.cap_height = int(os2.sCapHeight)
        self.postscript_name = str(font["name"].getDebugName(6))
        cff = font["CFF "].cff
        self._top = cff.topDictIndex[0]
        if getattr(self._top, "ROS", None) is None:
            raise ConfigError(f"font: {path}: not a CID-keyed CFF font")
        self._raw = font.reader["CFF "]
        self._charstrings = self._top.CharStrings
        self._fdselect = self._top.FDSelect
        self._gid = {name: i for i, name in enumerate(font.getGlyphOrder())}
        self._glyphs: dict[str, tuple[bytes, int]] = {}
        self._privates: dict[int, bytes] = {}

    def has(self, ch: str) -> bool:
        """True when the face has a glyph for ``ch`` (never for .notdef)."""
        return ord(ch) in self.cmap

    def width(self, ch: str) -> int:
        """Advance width of ``ch`` in 1/1000 em (0 when the face lacks it)."""
        name = self.cmap.get(ord(ch))
        return int(self._hmtx[name][0]) if name is not None else 0

    def _glyph(self, name: str) -> tuple[bytes, int]:
        """Desubroutinized charstring bytes of a glyph and its font dict index."""
        cached = self._glyphs.get(name)
        if cached is not None:
            return cached
        from fontTools.cffLib.transforms import desubroutinizeCharString
        from fontTools.misc.psCharStrings import T2CharString

        cs, fd = self._charstrings.getItemAndSelector(name)
        desubroutinizeCharString(cs)
        flat = T2CharString(program=list(cs.program))
        flat.compile()
        out = (bytes(flat.bytecode), int(fd))
        self._glyphs[name] = out
        return out

    def _private(self, fd: int) -> bytes:
        """The Private DICT of font dict ``fd`` as in the font, without ``Subrs``."""
        cached = self._privates.get(fd)
        if cached is None:
            size, offset = self._top.FDArray[fd].rawDict["Private"]
            cached = _drop_operator(self._raw[offset : offset + size], 19)
            self._privates[fd] = cached
        return cached

    def subset(self, chars: list[str], tag: str) -> Subset:
        """A subset with codes 1..n for ``chars`` (distinct, each in the face)."""
        with self._lock:
            glyphs = [self._glyph(".notdef")]
            for ch in chars:
                glyphs.append(self._glyph(self.cmap[ord(ch)]))
            fds = sorted({fd for _, fd in glyphs})
            privates = [self._private(fd) for fd in fds]
        name = f"{tag}+{self.postscript_name}"
        cff = _build_cff(
            name,
            [g for g, _ in glyphs],
            [fds.index(fd) for _, fd in glyphs],
            privates,
            self.bbox,
        )
        return Subset(
            cff=cff,
            widths=tuple(self.width(c) for c in chars),
            chars=tuple(chars),
            bbox=self.bbox,
            ascent=self.ascent,
            descent=self.descent,
            cap_height=self.cap_height,
            postscript_name=name,
        )


_faces: dict[str, FontFace] = {}
_faces_lock = threading.Lock()


def load_face(weight: str) -> FontFace:
    """The process-wide :class:`FontFace` for ``regular`` or ``bold``."""
    with _faces_lock:
        face = _faces.get(weight)
        if face is None:
            face = _faces[weight] = FontFace(FONT_DIR / _FILES[weight])
        return face


# -- CFF writing (Adobe Technical Note 5176) ----------------------------------


def _drop_operator(data: bytes, op: int) -> bytes:
    """A DICT's bytes without the entries of one (one-byte) operator."""
    out = bytearray()
    start = i = 0
    while i < len(data):
        b = data[i]
        if b <= 21:  # an operator ends an entry
            size = 2 if b == 12 else 1
            if not (b == op and size == 1):
                out += data[start : i + size]
            i += size
            start = i
        elif b == 28:
            i += 3
        elif b == 29:
            i += 5
        elif b == 30:  # real: nibbles up to an 0xf nibble
            i += 1
            while i < len(data) and (data[i] & 0x0F) != 0x0F and (data[i] >> 4) != 0x0F:
                i += 1
            i += 1
        elif b >= 247 and b <= 254:
            i += 2
        else:
            i += 1
    return bytes(out)


def _int(v: int) -> bytes:
    """A DICT integer operand in its compact form."""
    if -107 <= v <= 107:
        return bytes([v + 139])
    if 108 <= v <= 1131:
        v -= 108
        return bytes([(v >> 8) + 247, v & 0xFF])
    if -1131 <= v <= -108:
        v = -v - 108
        return bytes([(v >> 8) + 251, v & 0xFF])
    if -32768 <= v <= 32767:
        return b"\x1c" + struct.pack(">h", v)
    return b"\x1d" + struct.pack(">i", v)


def _int5(v: int) -> bytes:
    """A DICT integer in the fixed five-byte form (offsets known only later)."""
    return b"\x1d" + struct.pack(">i", v)


def _index(items: list[bytes]) -> bytes:
    if not items:
        return b"\x00\x00"
    offsets = [1]
    for it in items:
        offsets.append(offsets[-1] + len(it))
    size = (offsets[-1].bit_length() + 7) // 8 or 1
    packed = b"".join(o.to_bytes(size, "big") for o in offsets)
    return struct.pack(">HB", len(items), size) + packed + b"".join(items)


def _build_cff(
    name: str,
    charstrings: list[bytes],
    fd_of_glyph: list[int],
    privates: list[bytes],
    bbox: tuple[int, int, int, int],
) -> bytes:
    n = len(charstrings)
    strings = [b"Adobe", b"Identity", name.encode("ascii")]
    sid = {s: 391 + i for i, s in enumerate(strings)}
    header = b"\x01\x00\x04\x04"
    name_index = _index([name.encode("ascii")])
    string_index = _index(strings)
    gsubrs = _index([])
    charset = b"\x00" + b"".join(struct.pack(">H", cid) for cid in range(1, n))
    fdselect = b"\x00" + bytes(fd_of_glyph)
    cs_index = _index(charstrings)

    def top_dict(charset_off: int, fdselect_off: int, cs_off: int, fdarray_off: int) -> bytes:
        return (
            _int(sid[b"Adobe"])
            + _int(sid[b"Identity"])
            + _int(0)
            + b"\x0c\x1e"  # ROS
            + b"".join(_int(v) for v in bbox)
            + b"\x05"  # FontBBox
            + _int(n)
            + b"\x0c\x22"  # CIDCount
            + _int5(charset_off)
            + b"\x0f"  # charset
            + _int5(fdselect_off)
            + b"\x0c\x25"  # FDSelect
            + _int5(cs_off)
            + b"\x11"  # CharStrings
            + _int5(fdarray_off)
            + b"\x0c\x24"  # FDArray
        )

    top_len = len(_index([top_dict(0, 0, 0, 0)]))
    pos = len(header) + len(name_index) + top_len + len(string_index) + len(gsubrs)
    charset_off = pos
    fdselect_off = charset_off + len(charset)
    cs_off = fdselect_off + len(fdselect)
    fdarray_off = cs_off + len(cs_index)
    fd_dicts_len = len(_index([_int5(0) + _int5(0) + b"\x12"] * len(privates)))
    private_off = fdarray_off + fd_dicts_len
    fd_dicts = []
    for p in privates:
        fd_dicts.append(_int5(len(p)) + _int5(private_off) + b"\x12")  # Private
        private_off += len(p)
    top = _index([top_dict(charset_off, fdselect_off, cs_off, fdarray_off)])
    return (
        header
        + name_index
        + top
        + string_index
        + gsubrs
        + charset
        + fdselect
        + cs_index
        + _index(fd_dicts)
        + b"".join(privates)
    )
