"""The strict, bounded BER/DER reader and DER writer of verifier.der (X.690).

Round trips as Hypothesis properties (any tree, written in DER or in any BER
form, reads back and re-encodes to the same DER); every DER rule the reader
enforces and every bound, each with its one-line message.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import der
from verifier.der import MAX_DEPTH, MAX_ELEMENTS, decode, encode, encode_oid, oid_text, tlv
from verifier.errors import MalformedError

# A tree: ("p", identifier byte, content) or ("c", identifier byte, children).
PRIMITIVE_TAGS = [0x02, 0x04, 0x05, 0x06, 0x0C, 0x80, 0x81]
CONSTRUCTED_TAGS = [0x30, 0x31, 0xA0, 0xA3]

trees = st.recursive(
    st.tuples(st.just("p"), st.sampled_from(PRIMITIVE_TAGS), st.binary(max_size=300)),
    lambda kids: st.tuples(
        st.just("c"), st.sampled_from(CONSTRUCTED_TAGS), st.lists(kids, max_size=4)
    ),
    max_leaves=25,
)


def as_der(tree: tuple) -> bytes:  # type: ignore[type-arg]
    kind, tag, body = tree
    if kind == "p":
        return tlv(tag, body)
    return tlv(tag, b"".join(as_der(c) for c in body))


def long_length(n: int, extra: int) -> bytes:
    """A BER long-form length with ``extra`` leading zero octets (non-minimal)."""
    raw = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    raw = bytes(extra) + raw
    return bytes([0x80 | len(raw)]) + raw


def as_ber(tree: tuple, data: st.DataObject) -> bytes:  # type: ignore[type-arg]
    kind, tag, body = tree
    form = data.draw(st.sampled_from(["der", "long", "indefinite"]))
    if kind == "p":
        if tag == 0x04 and len(body) > 1 and data.draw(st.booleans()):
            cut = data.draw(st.integers(1, len(body) - 1))
            return b"\x24\x80" + tlv(0x04, body[:cut]) + tlv(0x04, body[cut:]) + b"\x00\x00"
        if form == "long":
            return bytes([tag]) + long_length(len(body), 1) + body
        return tlv(tag, body)
    inner = b"".join(as_ber(c, data) for c in body)
    if form == "indefinite":
        return bytes([tag, 0x80]) + inner + b"\x00\x00"
    if form == "long":
        return bytes([tag]) + long_length(len(inner), 1) + inner
    return tlv(tag, inner)


@settings(max_examples=300)
@given(tree=trees)
def test_der_reads_back_and_encodes_to_itself(tree: tuple) -> None:  # type: ignore[type-arg]
    data = as_der(tree)
    element = decode(data, "t")
    assert element.der_form and element.raw == data
    assert encode(element) == data
    assert decode(data, "t", ber=True) == element


@settings(max_examples=300)
@given(tree=trees, data=st.data())
def test_any_ber_form_normalises_to_the_der_form(tree: tuple, data: st.DataObject) -> None:  # type: ignore[type-arg]
    ber = as_ber(tree, data)
    element = decode(ber, "t", ber=True)
    assert element.raw == ber
    assert encode(element) == as_der(tree)
    assert element.der_form == (ber == as_der(tree))


@settings(max_examples=200)
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_fail_only_with_malformed_error(data: bytes) -> None:
    for ber in (False, True):
        try:
            decode(data, "t", ber=ber)
        except MalformedError as e:
            message = str(e)
        else:
            continue
        assert message.startswith("t: ") and "\n" not in message


@pytest.mark.parametrize(
    ("data", "ber", "message"),
    [
        (b"", False, "truncated (no tag)"),
        (b"\x30", False, "truncated (no length)"),
        (b"\x30\x80\x00\x00", False, "indefinite length is not DER"),
        (b"\x04\x80\x00\x00", True, "indefinite length on a primitive"),
        (b"\x04\x81\x01a", False, "non-minimal length is not DER"),
        (b"\x04\x82\x00\x01a", False, "non-minimal length is not DER"),
        (b"\x04\x85\x00\x00\x00\x00\x01a", True, "length of 5 octets, limit 4"),
        (b"\x04\xff", True, "reserved length octet"),
        (b"\x04\x05ab", False, "runs past the end"),
        (b"\x04\x01ab", False, "1 bytes after the end"),
        (b"\x24\x03\x04\x01a", False, "constructed string (universal type 4) is not DER"),
        (b"\x23\x03\x03\x01\x00", True, "constructed string (universal type 3)"),
        (b"\x24\x03\x02\x01\x00", True, "a segmented OCTET STRING holds another type"),
        (b"\x22\x03\x02\x01\x00", True, "universal type 2 cannot be constructed"),
        (b"\x10\x00", False, "universal type 16 must be constructed"),
        (b"\x00\x00", True, "unexpected end-of-contents"),
        (b"\x30\x80\x02\x01\x00", True, "without end-of-contents"),
        (b"\x30\x03\x02\x02\x00", False, "runs past the end"),
        (b"\x9f\x80\x01\x00", False, "leading zero group"),
        (b"\x9f\x1e\x00", False, "below 31 in the long form"),
        (b"\x9f\xff\xff\xff\x7f\x00", False, "tag number too large"),
        (b"\x9f", False, "truncated tag"),
    ],
)
def test_strict_rules_and_their_messages(data: bytes, ber: bool, message: str) -> None:
    with pytest.raises(MalformedError, match=r"^t: ") as info:
        decode(data, "t", ber=ber)
    assert message in str(info.value)


def test_high_tag_numbers_round_trip() -> None:
    for number in (31, 127, 128, 16383, 2**20):
        data = tlv(der.Element(2, False, number, b"", b"", (), True).identifier, b"x")
        e = decode(data, "t")
        assert (e.cls, e.number, e.value) == (2, number, b"x")


def test_nesting_and_size_bounds() -> None:
    deep = b"\x05\x00"
    for _ in range(MAX_DEPTH):
        deep = tlv(0x30, deep)
    decode(deep, "t")
    with pytest.raises(MalformedError, match="nesting deeper than"):
        decode(tlv(0x30, deep), "t")
    deep_ber = b"\x30\x80" * (MAX_DEPTH + 1) + b"\x05\x00" + b"\x00\x00" * (MAX_DEPTH + 1)
    with pytest.raises(MalformedError, match="nesting deeper than"):
        decode(deep_ber, "t", ber=True)
    many = tlv(0x30, b"\x05\x00" * MAX_ELEMENTS)
    with pytest.raises(MalformedError, match="more than"):
        decode(many, "t")
    with pytest.raises(MalformedError, match="limit"):
        decode(b"\x04\x83\x10\x00\x01" + bytes(0x100001), "t")


def test_object_identifiers() -> None:
    for dotted in ("1.2.840.113549.1.9.16.2.47", "2.16.840.1.101.3.4.2.1", "2.999.3", "0.0"):
        assert oid_text(decode(encode_oid(dotted), "t"), "t") == dotted
    with pytest.raises(MalformedError, match="leading zero group"):
        oid_text(decode(b"\x06\x02\x80\x01", "t"), "t")
    with pytest.raises(MalformedError, match="not an object identifier"):
        oid_text(decode(b"\x06\x01\x81", "t"), "t")
    with pytest.raises(MalformedError, match="not an object identifier"):
        oid_text(decode(b"\x04\x01\x01", "t"), "t")


def test_sets_are_written_in_der_order() -> None:
    items = [tlv(0x04, b"b"), tlv(0x02, b"\x05"), tlv(0x04, b"a")]
    assert der.encode_set(0x31, items) == tlv(0x31, items[1] + items[2] + items[0])
