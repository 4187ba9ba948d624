"""RFC 8785 JSON Canonicalization Scheme (JCS).

``canonicalize`` serialises a JSON value the way RFC 8785 §3.2 prescribes:
no whitespace, object members sorted by the UTF-16 code units of their names,
strings escaped minimally (§3.2.2.2), numbers in the ECMAScript
``Number.prototype.toString`` form (§3.2.2.3). ``loads_canonical`` parses bytes
strictly and refuses any input that is not already canonical.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from verifier.errors import MalformedError

__all__ = ["canonicalize", "loads_canonical", "loads_strict"]

_encode_string = json.encoder.encode_basestring
# The largest integer that an IEEE 754 double represents exactly.
_MAX_SAFE = 2**53 - 1
_PLAIN_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 serialisation of ``value``.

    Accepts ``dict`` (string keys), ``list``/``tuple``, ``str``, ``int``,
    ``float``, ``bool`` and ``None``. Integers beyond 2**53 - 1 and non-finite
    floats are refused: they have no exact I-JSON representation.
    """
    if type(value) is dict and _flat_plain(value):
        # Same bytes as the general path: ASCII names sort identically by code
        # point and by UTF-16 unit, and json escapes strings as §3.2.2.2 does.
        text = _PLAIN_ENCODER.encode(value)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise MalformedError("canonical: string is not valid Unicode (lone surrogate)") from e
    parts: list[str] = []
    try:
        _emit(value, parts)
    except RecursionError as e:
        raise MalformedError("canonical: value nested too deeply") from e
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as e:
        raise MalformedError("canonical: string is not valid Unicode (lone surrogate)") from e


def _flat_plain(value: dict[Any, Any]) -> bool:
    """A flat object with ASCII string names and str/int/bool/null values."""
    for k, v in value.items():
        t = type(v)
        if type(k) is not str or not k.isascii():
            return False
        if not (t is str or v is None or t is bool or (t is int and -_MAX_SAFE <= v <= _MAX_SAFE)):
            return False
    return True


def _emit(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, int):
        if abs(value) > _MAX_SAFE:
            raise MalformedError(f"canonical: integer {value} is outside the I-JSON range")
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key in sorted(value, key=_utf16_key):
            if not isinstance(key, str):
                raise MalformedError("canonical: object keys must be strings")
            if not first:
                out.append(",")
            first = False
            out.append(_encode_string(key))
            out.append(":")
            _emit(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _emit(item, out)
        out.append("]")
    else:
        raise MalformedError(f"canonical: cannot serialise {type(value).__name__}")


def _utf16_key(key: object) -> bytes:
    if not isinstance(key, str):
        raise MalformedError("canonical: object keys must be strings")
    return key.encode("utf-16-be", "surrogatepass")


def _number(x: float) -> str:
    """ECMAScript Number::toString for a finite double (RFC 8785 §3.2.2.3)."""
    if math.isnan(x) or math.isinf(x):
        raise MalformedError("canonical: NaN and Infinity are not JSON numbers")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr() yields the shortest digit string that round-trips, as ECMAScript does.
    mantissa, _, exp = repr(abs(x)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    # n: position of the decimal point relative to the first significant digit.
    n = (
        len(int_part.lstrip("0"))
        if int_part.strip("0")
        else -(len(frac_part) - len(frac_part.lstrip("0")))
    )
    n += int(exp) if exp else 0
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        body = (
            digits[0]
            + ("." + digits[1:] if k > 1 else "")
            + "e"
            + ("+" if e >= 0 else "-")
            + str(abs(e))
        )
    return sign + body


def _reject_constant(name: str) -> Any:
    raise MalformedError(f"json: {name} is not a JSON value")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        # Python would silently turn 1e400 into Infinity, which is not a JSON value.
        raise MalformedError(f"json: number {text[:40]} is outside the range of a double")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, val in pairs:
        if key in obj:
            raise MalformedError(f"json: duplicate member {key!r}")
        obj[key] = val
    return obj


def _decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedError(f"json: not valid UTF-8 at byte {e.start}") from e


def loads_strict(data: bytes) -> Any:
    """Parse UTF-8 JSON (RFC 8259) strictly: no duplicate member names, no NaN or
    Infinity (nor numbers that overflow to it), no integers too long to convert."""
    return _loads(data, int)


def _jcs_int(literal: str) -> int | float:
    """An integer literal as RFC 8785 reads it: beyond 2**53 - 1, a double."""
    if len(literal) < 16:
        return int(literal)
    value = int(literal)
    return value if -_MAX_SAFE <= value <= _MAX_SAFE else _parse_float(literal)


def _loads(data: bytes, parse_int: Callable[[str], Any]) -> Any:
    text = _decode_utf8(data)
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            parse_int=parse_int,
        )
    except json.JSONDecodeError as e:
        raise MalformedError(f"json: {e.msg} at line {e.lineno} column {e.colno}") from e
    except RecursionError as e:
        raise MalformedError("json: nested too deeply") from e
    except ValueError as e:  # int() refuses numbers of more than 4300 digits
        raise MalformedError(f"json: number cannot be converted ({e})") from e


class _NotFast(Exception):
    """Internal: the fast canonical check cannot decide; use the general path."""


def _fast_float(literal: str) -> float:
    raise _NotFast


def _fast_int(literal: str) -> int:
    value = int(literal)
    if literal == "-0" or not -_MAX_SAFE <= value <= _MAX_SAFE:
        raise _NotFast
    return value


def _fast_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    keys = list(obj)
    if len(keys) != len(pairs) or keys != sorted(keys):
        raise _NotFast
    return obj


_FAST_DECODER = json.JSONDecoder(
    object_pairs_hook=_fast_object,
    parse_float=_fast_float,
    parse_int=_fast_int,
    parse_constant=_reject_constant,
)
# Bytes that send input to the general path: the backslash (escapes), JSON
# whitespace other than the space, and UTF-8 lead bytes of U+E000 and above
# (only there do code-point order and UTF-16 code-unit order, RFC 8785 §3.2.3,
# disagree). ``translate`` deletes every other byte.
_FAST_ALLOWED = bytes(b for b in range(256) if b not in b"\\\t\n\r" and b < 0xEE)


def _fast_canonical(data: bytes, text: str) -> Any:
    """Decide cheaply that ``data`` is canonical, or raise :class:`_NotFast`.

    Sound because, when it returns, every token of ``data`` is already in its
    RFC 8785 form: strings have no escapes (no backslash) and no raw control
    characters (the strict decoder refuses them), so they serialise as written;
    integers are within 2**53 - 1 and not ``-0``, so they serialise as written;
    there are no floats; members are in strictly increasing order of names
    without characters at or above U+E000, which is the §3.2.3 order; and there
    is no whitespace between tokens.
    """
    if data.translate(None, _FAST_ALLOWED):
        raise _NotFast
    # Without backslashes, '"' delimits every string: the even pieces are the
    # text between strings, where RFC 8785 allows no whitespace at all.
    if b" " in data and b" " in b"".join(data.split(b'"')[::2]):
        raise _NotFast
    value, end = _FAST_DECODER.raw_decode(text)
    if end != len(text):
        raise _NotFast
    return value


def loads_canonical(data: bytes) -> Any:
    """Parse ``data`` and require it to be exactly its RFC 8785 serialisation.

    Numbers are read as RFC 8785 reads them, as IEEE 754 doubles: an integer
    literal beyond 2**53 - 1 becomes a ``float``, so whatever :func:`canonicalize`
    writes (``9007199254740992`` for ``2.0**53``) reads back. Most ledger
    entries are decided by a fast check (see ``_fast_canonical``); the rest, and
    every failure, take the general path, whose errors are the ones raised.
    """
    text = _decode_utf8(data)
    try:
        return _fast_canonical(data, text)
    except (_NotFast, ValueError, RecursionError):
        pass
    value = _loads(data, _jcs_int)
    if canonicalize(value) != data:
        raise MalformedError("json: not in RFC 8785 canonical form")
    return value
