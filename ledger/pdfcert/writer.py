"""A small PDF object writer (ISO 32000-1 §7): deterministic bytes, one revision.

Objects are numbered in the order they are added; dictionaries keep their
insertion order; numbers have a fixed format; streams are compressed with
zlib at a fixed level; the cross-reference table is classic (§7.5.4, no
object streams), which every PDF tool and signer reads.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["Name", "PdfWriter", "Raw", "Ref", "Stream", "hex_string", "text_string"]


@dataclass(frozen=True, slots=True)
class Name:
    """A PDF name (``/Type``); characters outside ``!``..``~`` and delimiters use ``#xx``."""

    value: str

    def encode(self) -> bytes:
        out = bytearray(b"/")
        for b in self.value.encode("utf-8"):
            if 0x21 <= b <= 0x7E and chr(b) not in "#()<>[]{}/%":
                out.append(b)
            else:
                out += f"#{b:02X}".encode("ascii")
        return bytes(out)


@dataclass(frozen=True, slots=True)
class Ref:
    """An indirect reference ``n 0 R``."""

    number: int


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes written as they are (a string already encoded)."""

    data: bytes


PdfValue: TypeAlias = (
    bool
    | int
    | float
    | str
    | Name
    | Ref
    | Raw
    | Sequence["PdfValue"]
    | Mapping[str, "PdfValue"]
    | None
)


@dataclass(frozen=True, slots=True)
class Stream:
    """A stream object: its dictionary and data; ``compress`` adds FlateDecode."""

    dictionary: Mapping[str, PdfValue]
    data: bytes
    compress: bool = True


def hex_string(data: bytes) -> Raw:
    """A hexadecimal string ``<…>``."""
    return Raw(b"<" + data.hex().upper().encode("ascii") + b">")


def text_string(text: str) -> Raw:
    """A text string: PDFDocEncoding-safe ASCII as a literal, anything else UTF-16BE."""
    if text.isascii() and all(32 <= ord(c) < 127 for c in text):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        return Raw(b"(" + escaped.encode("ascii") + b")")
    return hex_string(b"\xfe\xff" + text.encode("utf-16-be"))


def _number(v: float) -> bytes:
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return (s if s not in ("-0", "") else "0").encode("ascii")


def serialize(value: PdfValue) -> bytes:
    """One direct object."""
    if value is None:
        return b"null"
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, Name):
        return value.encode()
    if isinstance(value, Ref):
        return f"{value.number} 0 R".encode("ascii")
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, str):
        return text_string(value).data
    if isinstance(value, Mapping):
        parts = [Name(k).encode() + b" " + serialize(v) for k, v in value.items()]
        return b"<< " + b" ".join(parts) + b" >>"
    return b"[" + b" ".join(serialize(v) for v in value) + b"]"


class PdfWriter:
    """Collects numbered objects and writes a complete PDF file."""

    def __init__(self) -> None:
        self._objects: list[bytes | None] = []

    def reserve(self) -> Ref:
        """A number for an object written later with :meth:`set`."""
        self._objects.append(None)
        return Ref(len(self._objects))

    def add(self, value: PdfValue | Stream) -> Ref:
        """Add an object; return its reference."""
        ref = self.reserve()
        self.set(ref, value)
        return ref

    def set(self, ref: Ref, value: PdfValue | Stream) -> None:
        """Give a reserved object its value."""
        if isinstance(value, Stream):
            data = zlib.compress(value.data, 9) if value.compress else value.data
            d: dict[str, PdfValue] = dict(value.dictionary)
            if value.compress:
                d["Filter"] = Name("FlateDecode")
            d["Length"] = len(data)
            body = serialize(d) + b"\nstream\n" + data + b"\nendstream"
        else:
            body = serialize(value)
        self._objects[ref.number - 1] = body

    def write(self, root: Ref, file_id: bytes, info: Ref | None = None) -> bytes:
        """The file: header, objects, cross-reference table, trailer."""
        out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for i, body in enumerate(self._objects, 1):
            if body is None:
                raise ValueError(f"pdf: object {i} was reserved but never set")
            offsets.append(len(out))
            out += f"{i} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
        xref = len(out)
        out += f"xref\n0 {len(offsets) + 1}\n".encode("ascii")
        out += b"0000000000 65535 f\r\n"
        for off in offsets:
            out += f"{off:010d} 00000 n\r\n".encode("ascii")
        trailer: dict[str, PdfValue] = {
            "Size": len(offsets) + 1,
            "Root": root,
            "ID": [hex_string(file_id), hex_string(file_id)],
        }
        if info is not None:
            trailer["Info"] = info
        out += b"trailer\n" + serialize(trailer) + b"\n"
        out += f"startxref\n{xref}\n%%EOF\n".encode("ascii")
        return bytes(out)
