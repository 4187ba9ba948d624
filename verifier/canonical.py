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
from typing import Any

from verifier.errors import MalformedError

__all__ = ["canonicalize", "loads_strict", "loads_canonical"]

_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]
# The largest integer that an IEEE 754 double represents exactly.
_MAX_SAFE = 2**53 - 1


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 serialisation of ``value``.

    Accepts ``dict`` (string keys), ``list``/``tuple``, ``str``, ``int``,
    ``float``, ``bool`` and ``None``. Integers beyond 2**53 - 1 and non-finite
    floats are refused: they have no exact I-JSON representation.
    """
    parts: list[str] = []
    _emit(value, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as e:
        raise MalformedError("canonical: string is not valid Unicode (lone surrogate)") from e


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
    n = len(int_part.lstrip("0")) if int_part.strip("0") else -(len(frac_part) - len(frac_part.lstrip("0")))
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
        body = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + body


def _reject_constant(name: str) -> Any:
    raise MalformedError(f"json: {name} is not a JSON value")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, val in pairs:
        if key in obj:
            raise MalformedError(f"json: duplicate member {key!r}")
        obj[key] = val
    return obj


def loads_strict(data: bytes) -> Any:
    """Parse UTF-8 JSON strictly: no duplicate keys, NaN or Infinity."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedError(f"json: not valid UTF-8 at byte {e.start}") from e
    try:
        return json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as e:
        raise MalformedError(f"json: {e.msg} at line {e.lineno} column {e.colno}") from e
    except RecursionError as e:
        raise MalformedError("json: nested too deeply") from e


def loads_canonical(data: bytes) -> Any:
    """Parse ``data`` and require it to be exactly its RFC 8785 serialisation."""
    value = loads_strict(data)
    if canonicalize(value) != data:
        raise MalformedError("json: not in RFC 8785 canonical form")
    return value
