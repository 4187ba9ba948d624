"""RFC 8785 (JCS): the RFC's examples, Appendix B numbers, strict parsing."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from verifier.canonical import canonicalize, loads_canonical, loads_strict
from verifier.errors import MalformedError

# RFC 8785 §3.2.2 input, verbatim.
RFC_INPUT = r"""
{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}
"""
# RFC 8785 §3.2.3 expected output (line wrap removed).
RFC_OUTPUT = (
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
).encode("utf-8")

# RFC 8785 §3.2.3 sorting example.
RFC_SORT_INPUT = r"""
{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}
"""
RFC_SORT_ORDER = [
    "Carriage Return",
    "One",
    "Control",
    "Latin Small Letter O With Diaeresis",
    "Euro Sign",
    "Emoji: Grinning Face",
    "Hebrew Letter Dalet With Dagesh",
]

# RFC 8785 Appendix B: IEEE 754 bits -> JSON text.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def double(bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(bits))[0]
    return value


def test_rfc_example() -> None:
    assert canonicalize(json.loads(RFC_INPUT)) == RFC_OUTPUT
    assert canonicalize(loads_strict(RFC_INPUT.encode())) == RFC_OUTPUT
    assert loads_canonical(RFC_OUTPUT) == json.loads(RFC_INPUT)


def test_rfc_sorting_example() -> None:
    out = canonicalize(loads_strict(RFC_SORT_INPUT.encode()))
    assert list(json.loads(out).values()) == RFC_SORT_ORDER
    # Nested objects are sorted too.
    nested = canonicalize({"z": [json.loads(RFC_SORT_INPUT)], "a": 1})
    assert list(json.loads(nested)["z"][0].values()) == RFC_SORT_ORDER
    assert loads_canonical(out) == json.loads(RFC_SORT_INPUT)


def test_utf16_order_differs_from_code_point_order() -> None:
    # U+10000 is the surrogate pair D800 DC00: it sorts before U+FFFF and U+E000.
    out = canonicalize({"\uffff": 1, "\U00010000": 2, "\ue000": 3})
    assert out == '{"\U00010000":2,"\ue000":3,"\uffff":1}'.encode()
    assert loads_canonical(out) == {"\uffff": 1, "\U00010000": 2, "\ue000": 3}
    with pytest.raises(MalformedError, match="canonical form"):
        loads_canonical('{"\ue000":3,"\U00010000":2}'.encode())


@pytest.mark.parametrize(("bits", "text"), APPENDIX_B)
def test_appendix_b_numbers(bits: str, text: str) -> None:
    value = double(bits)
    assert canonicalize(value) == text.encode()
    assert canonicalize([value]) == f"[{text}]".encode()
    parsed = loads_strict(text.encode())
    assert float(parsed) == value  # the text reads back as the same double


@pytest.mark.parametrize(("bits", "text"), APPENDIX_B)
def test_appendix_b_numbers_are_canonical_input(bits: str, text: str) -> None:
    # Whatever canonicalize writes, loads_canonical reads back as the same double.
    assert loads_canonical(text.encode()) == double(bits)


def test_large_integer_literals_read_as_doubles() -> None:
    assert loads_canonical(b"9007199254740992") == 2.0**53
    assert type(loads_canonical(b"9007199254740992")) is float
    assert canonicalize(loads_canonical(b"[295147905179352830000]")) == b"[295147905179352830000]"
    # 2**53 + 1 is not a double: its canonical text is 2**53's.
    with pytest.raises(MalformedError, match="canonical form"):
        loads_canonical(b"9007199254740993")
    with pytest.raises(MalformedError, match="canonical form"):
        loads_canonical(b"1" * 300)
    with pytest.raises(MalformedError, match="outside the range of a double"):
        loads_canonical(b"1" * 400)
    # loads_strict keeps exact integers; canonicalize refuses the inexact ones.
    assert loads_strict(b"9007199254740993") == 2**53 + 1
    with pytest.raises(MalformedError, match="I-JSON"):
        canonicalize(2**53 + 1)


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_nan_and_infinity_are_refused(bits: str) -> None:
    value = double(bits)
    assert math.isnan(value) or math.isinf(value)
    with pytest.raises(MalformedError, match="NaN and Infinity"):
        canonicalize(value)
    with pytest.raises(MalformedError):
        canonicalize({"a": [value]})


def test_integers() -> None:
    assert canonicalize([0, -0, 1, -1, 2**53 - 1, -(2**53 - 1)]) == (
        b"[0,0,1,-1,9007199254740991,-9007199254740991]"
    )
    assert canonicalize([1.0, -0.0, 5e-324]) == b"[1,0,5e-324]"
    for big in (2**53, -(2**53), 10**30):
        with pytest.raises(MalformedError, match="I-JSON"):
            canonicalize(big)


def test_string_escapes() -> None:
    # §3.2.2.2: short escapes for \b \t \n \f \r, \u00xx (lowercase) for other
    # controls, only " and \ otherwise; "/", DEL and non-ASCII as is.
    value = {"b": "\b\t\n\f\r\x00\x1f", "a": '"\\/\x7f\u00e9\u2028'}
    assert canonicalize(value) == (
        '{"a":"\\"\\\\/\x7f\u00e9\u2028","b":"\\b\\t\\n\\f\\r\\u0000\\u001f"}'.encode()
    )


@pytest.mark.parametrize("bad", [chr(0xD800), chr(0xDFFF), "a" + chr(0xDC00) + "b"])
def test_lone_surrogates_are_refused(bad: str) -> None:
    with pytest.raises(MalformedError, match="surrogate"):
        canonicalize(bad)
    with pytest.raises(MalformedError, match="surrogate"):
        canonicalize({bad: 1})
    with pytest.raises(MalformedError):
        loads_canonical(json.dumps(bad).encode())


@pytest.mark.parametrize("bad", [{1: 2}, {None: 1}, b"bytes", {1, 2}, object(), 1 + 2j])
def test_unsupported_values_are_refused(bad: Any) -> None:
    with pytest.raises(MalformedError):
        canonicalize(bad)


def test_deep_nesting_is_refused_not_crashing() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(MalformedError, match="nested"):
        canonicalize(deep)
    with pytest.raises(MalformedError, match="nested"):
        loads_strict(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(MalformedError, match="nested"):
        loads_canonical(b"[" * 100_000 + b"]" * 100_000)


# ---------------------------------------------------------------- strict parsing


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a":1,"a":2}', "duplicate member 'a'"),
        (b'{"a":{"b":1,"b":1}}', "duplicate member 'b'"),
        (b"NaN", "NaN is not a JSON value"),
        (b"[Infinity]", "Infinity is not a JSON value"),
        (b"-Infinity", "-Infinity is not a JSON value"),
        (b"1e400", "outside the range of a double"),
        (b"[-1e999]", "outside the range of a double"),
        (b"\xff", "not valid UTF-8 at byte 0"),
        (b'"\xed\xa0\x80"', "not valid UTF-8"),  # an encoded surrogate
        (b'"\xc0\xaf"', "not valid UTF-8"),  # an overlong encoding
        (b"[1,]", "json:"),
        (b"{'a':1}", "json:"),
        (b"", "json:"),
        (b"1 2", "json:"),
        (b'"\x01"', "json:"),  # raw control character in a string
        (b"1" * 5000, "number cannot be converted"),
    ],
)
def test_loads_strict_refuses(data: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        loads_strict(data)
    with pytest.raises(MalformedError):
        loads_canonical(data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"b":1,"a":2}',  # member order
        b'{"a": 1}',  # whitespace
        b' {"a":1}',
        b'{"a":1}\n',
        b"[1 ,2]",
        b'["\\u0041"]',  # unnecessary escape
        b'["\\/"]',
        b'["\\u000F"]',  # uppercase hex
        b'["\\u00e9"]',  # escaped non-ASCII
        b"1.0",
        b"1E2",
        b"-0",
        b"0.10",
        b"1E-7",
        b'{"a":-0}',
        b'{"a":"x" }',
        b'["a" ,"b"]',
        b'{"a":"x y"}\t',
        b'{"a":{"d":1,"c":2}}',
    ],
)
def test_loads_canonical_refuses_non_canonical(data: bytes) -> None:
    loads_strict(data)  # valid JSON
    with pytest.raises(MalformedError, match="canonical form"):
        loads_canonical(data)


def test_loads_canonical_names_duplicates() -> None:
    with pytest.raises(MalformedError, match="duplicate member 'a'"):
        loads_canonical(b'{"a":1,"a":1}')


@pytest.mark.parametrize(
    "data",
    [
        b"1e-7",
        b"1e+21",
        b"0.000001",
        b'"\\u000f"',
        b'"\\n\\t\\"\\\\"',
        b'{"":0,"a":[true,false,null,{}],"b":"x y, z: {[ ]}"}',
        '{"a":"\u5b58\u8bc1","\u00e9":1}'.encode(),
        b"[]",
        b"{}",
        b'""',
        b"9007199254740991",
        b"-9007199254740991",
    ],
)
def test_loads_canonical_accepts(data: bytes) -> None:
    value = loads_canonical(data)
    assert canonicalize(value) == data


# ---------------------------------------------------------------- properties

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


def _double(literal: str) -> int | float:
    """RFC 8785 reads numbers as doubles (the oracle for the properties below)."""
    value = int(literal)
    return value if abs(value) < 2**53 else float(literal)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_round_trip(value: Any) -> None:
    try:
        once = canonicalize(value)
    except MalformedError:
        # Only lone surrogates, which st.text() can produce, are refused.
        assume(False)
    assert canonicalize(loads_canonical(once)) == once
    # Python's own parser reads the same values (large integers aside).
    assert canonicalize(json.loads(once, parse_int=float)) == once


@settings(max_examples=400, deadline=None)
@given(
    json_values,
    st.sampled_from([None, 2, (",", ":"), (",", ": "), (", ", ":")]),
    st.booleans(),
    st.booleans(),
)
def test_loads_canonical_agrees_with_canonicalize(
    value: Any, indent: Any, ascii_: bool, sort: bool
) -> None:
    """loads_canonical (with its fast path) accepts exactly the canonical bytes."""
    kwargs: dict[str, Any] = {"ensure_ascii": ascii_, "sort_keys": sort}
    if isinstance(indent, tuple):
        kwargs["separators"] = indent
    else:
        kwargs["indent"] = indent
    try:
        data = json.dumps(value, **kwargs).encode("utf-8")
    except (UnicodeEncodeError, TypeError):
        assume(False)
    try:
        expected = canonicalize(json.loads(data, parse_int=_double)) == data
    except (MalformedError, ValueError):
        expected = False
    if expected:
        assert canonicalize(loads_canonical(data)) == data
    else:
        with pytest.raises(MalformedError):
            loads_canonical(data)


@settings(max_examples=300, deadline=None)
@given(json_values, st.data())
def test_loads_canonical_refuses_mutations(value: Any, data: st.DataObject) -> None:
    try:
        good = canonicalize(value)
    except MalformedError:
        assume(False)
    pos = data.draw(st.integers(0, len(good)))
    insert = data.draw(st.sampled_from([b" ", b"\n", b"0", b"\\", b",", b'"', b"-", b"e"]))
    bad = good[:pos] + insert + good[pos:]
    try:
        expected = canonicalize(json.loads(bad, parse_int=_double)) == bad
    except (MalformedError, ValueError):
        expected = False
    if expected:  # e.g. a digit appended to a number
        assert canonicalize(loads_canonical(bad)) == bad
    else:
        with pytest.raises(MalformedError):
            loads_canonical(bad)
