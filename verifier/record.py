"""The public record of a log entry (leaf bytes), format ``v = 1``.

A leaf is the RFC 8785 canonical JSON of::

    {"body": {...}, "commitment": hex, "index": int, "prev": hex,
     "time": "YYYY-MM-DDTHH:MM:SS.ffffffZ", "type": str, "v": 1}

``prev`` is the lowercase hex RFC 9162 leaf hash of the previous entry (64
zeros for entry 0): the hash chain. ``commitment`` is
``SHA-256(salt || canonical(private body))``; the private body is never
published, so the log reveals nothing that can be confirmed by guessing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from verifier.canonical import canonicalize
from verifier.errors import MalformedError, VerificationError
from verifier.events import TIME_PATTERN

__all__ = [
    "GENESIS_PREV",
    "MAX_LEAF_SIZE",
    "RECORD_VERSION",
    "Record",
    "commitment",
    "decode_record",
    "encode_record",
    "verify_opening",
]

RECORD_VERSION = 1
MAX_LEAF_SIZE = 0xFFFF
GENESIS_PREV = "0" * 64
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(TIME_PATTERN)
_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_KEYS = frozenset({"body", "commitment", "index", "prev", "time", "type", "v"})


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded public record."""

    index: int
    type: str
    time: str
    prev: str
    commitment: str
    body: dict[str, Any]


def commitment(salt: bytes, private_body: bytes) -> str:
    """Return ``hex(SHA-256(salt || private_body))`` (private body canonical)."""
    return hashlib.sha256(salt + private_body).hexdigest()


def encode_record(
    index: int, type_: str, time: str, prev: str, commitment_: str, body_json: bytes
) -> bytes:
    """Serialise a public record; ``body_json`` must already be canonical.

    The members are written in RFC 8785 order (all names are ASCII), so the
    result is canonical without a general-purpose serialiser on the hot path.
    """
    if not _TYPE.fullmatch(type_):
        raise MalformedError(f"record: bad type {type_!r}")
    if not _TIME.fullmatch(time):
        raise MalformedError(f"record: bad time {time!r}")
    if not (_HEX64.fullmatch(prev) and _HEX64.fullmatch(commitment_)):
        raise MalformedError("record: prev and commitment must be 64 lowercase hex digits")
    if not 0 <= index < 2**53:
        raise MalformedError(f"record: index {index} out of range")
    leaf = b"".join(
        (
            b'{"body":',
            body_json,
            b',"commitment":"',
            commitment_.encode(),
            b'","index":',
            str(index).encode(),
            b',"prev":"',
            prev.encode(),
            b'","time":"',
            time.encode(),
            b'","type":"',
            type_.encode(),
            b'","v":1}',
        )
    )
    if len(leaf) > MAX_LEAF_SIZE:
        raise MalformedError(f"record: {len(leaf)} bytes exceeds {MAX_LEAF_SIZE}")
    return leaf


def _no_float(text: str) -> Any:
    raise MalformedError("record: floating-point numbers are not allowed")


_DECODER = json.JSONDecoder(parse_float=_no_float)


# The whole canonical layout of a record; only the body is free-form (and is
# checked to be a canonical JSON object separately). Greedy ``.*`` ends the
# body at the last place where the fixed suffix matches through to the end.
_LAYOUT = re.compile(
    rb'\{"body":(\{.*\}),"commitment":"([0-9a-f]{64})","index":(0|[1-9][0-9]{0,15}),'
    rb'"prev":"([0-9a-f]{64})","time":"(' + TIME_PATTERN.encode() + rb')",'
    rb'"type":"([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+)","v":1\}',
    re.DOTALL,
)


def decode_record(leaf: bytes) -> Record:
    """Parse leaf bytes strictly: exact members and types, canonical encoding.

    Fast path: match the fixed layout, then require the body to be a canonical
    JSON object. Anything else takes the general path, which names the fault.
    """
    m = _LAYOUT.fullmatch(leaf) if len(leaf) <= MAX_LEAF_SIZE else None
    if m is not None:
        body_bytes, com, index_b, prev, time, type_ = m.groups()
        try:
            body = _DECODER.decode(body_bytes.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, MalformedError):
            body = None
        index = int(index_b)
        if isinstance(body, dict) and index < 2**53 and canonicalize(body) == body_bytes:
            return Record(
                index=index,
                type=type_.decode(),
                time=time.decode(),
                prev=prev.decode(),
                commitment=com.decode(),
                body=body,
            )
    return _decode_general(leaf)


def _decode_general(leaf: bytes) -> Record:
    if len(leaf) > MAX_LEAF_SIZE:
        raise MalformedError(f"record: {len(leaf)} bytes exceeds {MAX_LEAF_SIZE}")
    try:
        obj = _DECODER.decode(leaf.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise MalformedError(f"record: not valid JSON ({e})") from e
    if not isinstance(obj, dict) or obj.keys() != _KEYS:
        raise MalformedError("record: members must be exactly " + ", ".join(sorted(_KEYS)))
    if obj["v"] != RECORD_VERSION or type(obj["v"]) is not int:
        raise MalformedError(f"record: unsupported version {obj['v']!r}")
    index, type_, time, prev, com, body = (
        obj["index"],
        obj["type"],
        obj["time"],
        obj["prev"],
        obj["commitment"],
        obj["body"],
    )
    if type(index) is not int or not all(isinstance(x, str) for x in (type_, time, prev, com)):
        raise MalformedError("record: member of the wrong type")
    if not isinstance(body, dict):
        raise MalformedError("record: body must be an object")
    again = encode_record(index, type_, time, prev, com, canonicalize(body))
    if again != leaf:
        raise MalformedError("record: not in RFC 8785 canonical form")
    return Record(index=index, type=type_, time=time, prev=prev, commitment=com, body=body)


def verify_opening(record: Record, salt: bytes, private_body: bytes) -> None:
    """Check that ``salt`` and ``private_body`` open the record's commitment."""
    if commitment(salt, private_body) != record.commitment:
        raise VerificationError(f"commitment: opening does not match entry {record.index}")
