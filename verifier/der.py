"""A small, strict and bounded ASN.1 BER/DER reader and DER writer (ITU-T X.690).

Only what RFC 3161 tokens need: read one element into a tree of
:class:`Element` (tag, raw bytes as sent, primitive value or children), and
write DER: definite minimal lengths (X.690 §10.1), primitive strings (§10.2),
SET OF components in ascending order of their encodings (§11.6).

Reading is strict. In DER mode (the default) every length is definite and
minimal, and strings are primitive. In BER mode (``ber=True``) constructed
elements may use indefinite lengths ended by end-of-contents octets, long
lengths may be non-minimal, and an OCTET STRING may be constructed from
segments (X.690 §8.7.3); nothing else is relaxed. Either way the input is
bounded: at most :data:`MAX_INPUT` bytes, :data:`MAX_DEPTH` levels of nesting
and :data:`MAX_ELEMENTS` elements, lengths of at most four octets, tag
numbers below 2^21. Every failure is a one-line :class:`MalformedError`
prefixed with the caller's ``what``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from verifier.errors import MalformedError

__all__ = [
    "CONTEXT",
    "INTEGER",
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "MAX_INPUT",
    "NULL",
    "OCTET_STRING",
    "OID",
    "SEQUENCE",
    "SET",
    "UNIVERSAL",
    "Element",
    "decode",
    "encode",
    "encode_length",
    "encode_oid",
    "encode_set",
    "oid_text",
    "tlv",
]

UNIVERSAL, APPLICATION, CONTEXT, PRIVATE = 0, 1, 2, 3
BOOLEAN, INTEGER, BIT_STRING, OCTET_STRING, NULL, OID = 1, 2, 3, 4, 5, 6
SEQUENCE, SET = 16, 17

MAX_INPUT = 1 << 20
MAX_DEPTH = 32
MAX_ELEMENTS = 20_000
_MAX_LENGTH_OCTETS = 4
_MAX_TAG_OCTETS = 3  # tag numbers below 2^21

# Universal types that DER always encodes as primitive, and those that are always
# constructed; in BER only OCTET STRING may also come in segments.
_PRIMITIVE_ONLY = {BOOLEAN, INTEGER, NULL, OID, 9, 10, 13, 23, 24}
_STRINGS = {BIT_STRING, OCTET_STRING, 12, 18, 19, 20, 21, 22, 25, 26, 27, 28, 30}
_CONSTRUCTED_ONLY = {SEQUENCE, SET}


@dataclass(frozen=True, slots=True)
class Element:
    """One decoded element: its tag, its bytes as sent, and its value or children."""

    cls: int
    """Tag class: 0 universal, 1 application, 2 context-specific, 3 private."""
    constructed: bool
    number: int
    """Tag number."""
    raw: bytes
    """The element exactly as encoded in the input (with end-of-contents octets)."""
    value: bytes
    """Content octets of a primitive element; for a segmented BER OCTET STRING
    the concatenated segments; empty for other constructed elements."""
    children: tuple[Element, ...]
    der_form: bool
    """True when ``raw`` uses only DER's forms: definite minimal lengths and
    primitive strings, here and in every child (SET order is not judged)."""

    def is_(self, cls: int, number: int, constructed: bool | None = None) -> bool:
        """True for this tag class and number (and form, when given)."""
        return (
            self.cls == cls
            and self.number == number
            and (constructed is None or self.constructed == constructed)
        )

    @property
    def identifier(self) -> bytes:
        """The identifier octets of this element in DER."""
        return _identifier(self.cls, self.constructed, self.number)


def _identifier(cls: int, constructed: bool, number: int) -> bytes:
    first = (cls << 6) | (0x20 if constructed else 0)
    if number < 31:
        return bytes([first | number])
    groups = []
    while True:
        groups.append(number & 0x7F)
        number >>= 7
        if not number:
            break
    groups.reverse()
    return bytes([first | 0x1F, *(g | 0x80 for g in groups[:-1]), groups[-1]])


def encode_length(n: int) -> bytes:
    """DER length octets: short form below 128, else the minimal long form."""
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(identifier: bytes | int, content: bytes) -> bytes:
    """A DER element from its identifier octet(s) and content octets."""
    ident = bytes([identifier]) if isinstance(identifier, int) else identifier
    return ident + encode_length(len(content)) + content


def encode_set(identifier: bytes | int, components: Iterable[bytes]) -> bytes:
    """A DER SET OF: components sorted by their encodings (X.690 §11.6).

    Complete DER encodings are never prefixes of one another, so plain byte
    order equals the standard's zero-padded comparison.
    """
    return tlv(identifier, b"".join(sorted(components)))


def encode_oid(dotted: str) -> bytes:
    """The DER encoding of an OBJECT IDENTIFIER given in dotted form."""
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise MalformedError(f"der: {dotted!r} is not an object identifier")
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return tlv(OID, bytes(out))


def oid_text(element: Element, what: str) -> str:
    """The dotted form of an OBJECT IDENTIFIER element (minimal base-128 arcs)."""
    value = element.value
    if not element.is_(UNIVERSAL, OID, False) or not value or value[-1] & 0x80:
        raise MalformedError(f"{what}: not an object identifier")
    arcs: list[int] = []
    arc, fresh = 0, True
    for b in value:
        if fresh and b == 0x80:
            raise MalformedError(f"{what}: object identifier arc with a leading zero group")
        arc = (arc << 7) | (b & 0x7F)
        fresh = not b & 0x80
        if fresh:
            arcs.append(arc)
            arc = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def encode(element: Element) -> bytes:
    """``element`` in DER forms: definite minimal lengths, primitive strings.

    An element already in DER forms is returned as sent. Only forms change:
    SET OF order is the caller's (see :func:`encode_set`), values are kept.
    """
    if element.der_form:
        return element.raw
    if not element.constructed or (element.cls == UNIVERSAL and element.number in _STRINGS):
        return tlv(_identifier(element.cls, False, element.number), element.value)
    return tlv(element.identifier, b"".join(encode(c) for c in element.children))


def decode(data: bytes, what: str, *, ber: bool = False) -> Element:
    """Decode exactly one element filling ``data``; raise :class:`MalformedError`.

    ``what`` prefixes every message (e.g. ``"timestamp: token"``).
    """
    if len(data) > MAX_INPUT:
        raise MalformedError(f"{what}: {len(data)} bytes, limit {MAX_INPUT}")
    reader = _Reader(data, what, ber)
    element, end = reader.element(0, 0)
    if end != len(data):
        raise MalformedError(f"{what}: {len(data) - end} bytes after the end of the element")
    return element


class _Reader:
    def __init__(self, data: bytes, what: str, ber: bool) -> None:
        self.data = data
        self.what = what
        self.ber = ber
        self.count = 0

    def fail(self, at: int, problem: str) -> MalformedError:
        return MalformedError(f"{self.what}: {problem} at offset {at}")

    def element(self, pos: int, depth: int) -> tuple[Element, int]:
        if depth > MAX_DEPTH:
            raise self.fail(pos, f"nesting deeper than {MAX_DEPTH} levels")
        self.count += 1
        if self.count > MAX_ELEMENTS:
            raise self.fail(pos, f"more than {MAX_ELEMENTS} elements")
        data, start = self.data, pos
        if pos >= len(data):
            raise self.fail(pos, "truncated (no tag)")
        first = data[pos]
        cls, constructed, number = first >> 6, bool(first & 0x20), first & 0x1F
        pos += 1
        if number == 0x1F:
            number, pos = self._high_tag(pos)
        if cls == UNIVERSAL and number == 0:
            raise self.fail(start, "unexpected end-of-contents octets")
        self._check_form(start, cls, constructed, number)
        length, pos, minimal = self._length(pos, constructed)
        if length is None:  # BER indefinite length: children up to end-of-contents
            children, pos = self._children_until_eoc(pos, depth)
            der_form = False
        else:
            end = pos + length
            if end > len(data):
                raise self.fail(start, f"length {length} runs past the end of the input")
            if not constructed:
                value = data[pos:end]
                return Element(cls, False, number, data[start:end], value, (), minimal), end
            children = []
            while pos < end:
                child, pos = self.element(pos, depth + 1)
                children.append(child)
            if pos != end:
                raise self.fail(start, "contents overrun the element's length")
            der_form = minimal and all(c.der_form for c in children)
        value = b""
        if cls == UNIVERSAL and number == OCTET_STRING:  # BER segmented string
            if not all(c.is_(UNIVERSAL, OCTET_STRING) for c in children):
                raise self.fail(start, "a segmented OCTET STRING holds another type")
            value = b"".join(c.value for c in children)
            der_form = False
        raw = data[start:pos]
        return Element(cls, True, number, raw, value, tuple(children), der_form), pos

    def _high_tag(self, pos: int) -> tuple[int, int]:
        number, start = 0, pos
        while True:
            if pos >= len(self.data):
                raise self.fail(pos, "truncated tag")
            b = self.data[pos]
            pos += 1
            if pos - start == 1 and b == 0x80:
                raise self.fail(start, "tag number with a leading zero group")
            number = (number << 7) | (b & 0x7F)
            if not b & 0x80:
                break
            if pos - start >= _MAX_TAG_OCTETS:
                raise self.fail(start, "tag number too large")
        if number < 31:
            raise self.fail(start, "tag number below 31 in the long form")
        return number, pos

    def _check_form(self, at: int, cls: int, constructed: bool, number: int) -> None:
        if cls != UNIVERSAL:
            return
        if constructed and number in _PRIMITIVE_ONLY:
            raise self.fail(at, f"universal type {number} cannot be constructed")
        if not constructed and number in _CONSTRUCTED_ONLY:
            raise self.fail(at, f"universal type {number} must be constructed")
        if constructed and number in _STRINGS and not (self.ber and number == OCTET_STRING):
            raise self.fail(at, f"constructed string (universal type {number}) is not DER")

    def _length(self, pos: int, constructed: bool) -> tuple[int | None, int, bool]:
        """(length or None for indefinite, position after it, minimal DER form?)."""
        data = self.data
        if pos >= len(data):
            raise self.fail(pos, "truncated (no length)")
        first = data[pos]
        pos += 1
        if first < 0x80:
            return first, pos, True
        count = first & 0x7F
        if count == 0:
            if not self.ber:
                raise self.fail(pos - 1, "indefinite length is not DER")
            if not constructed:
                raise self.fail(pos - 1, "indefinite length on a primitive element")
            return None, pos, False
        if count == 0x7F:
            raise self.fail(pos - 1, "reserved length octet 0xFF")
        if count > _MAX_LENGTH_OCTETS:
            raise self.fail(pos - 1, f"length of {count} octets, limit {_MAX_LENGTH_OCTETS}")
        if pos + count > len(data):
            raise self.fail(pos - 1, "truncated length")
        length = int.from_bytes(data[pos : pos + count], "big")
        minimal = length >= 0x80 and data[pos] != 0
        if not minimal and not self.ber:
            raise self.fail(pos - 1, "non-minimal length is not DER")
        return length, pos + count, minimal

    def _children_until_eoc(self, pos: int, depth: int) -> tuple[list[Element], int]:
        children: list[Element] = []
        while True:
            if pos + 2 > len(self.data):
                raise self.fail(pos, "indefinite length without end-of-contents octets")
            if self.data[pos] == 0 and self.data[pos + 1] == 0:
                return children, pos + 2
            child, pos = self.element(pos, depth + 1)
            children.append(child)
