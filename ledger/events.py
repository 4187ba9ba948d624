"""Events: drafts built by callers, records sealed into the log.

A draft carries the event type, its public body and its private body, both
already in canonical JSON, plus the salt and commitment. Everything that can
fail (validation, size limits) fails while building the draft, before it
reaches the sequencer, so one bad request can never abort a group commit.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from ledger.errors import InvalidInput, TooLarge
from verifier.canonical import canonicalize
from verifier.errors import MalformedError
from verifier.record import MAX_LEAF_SIZE, commitment

__all__ = [
    "EVENT_TYPES",
    "SALT_SIZE",
    "Draft",
    "account_registered",
    "evidence_deposited",
    "format_time",
    "key_registered",
    "make_draft",
    "new_id",
    "parse_hex_digest",
]

SALT_SIZE = 16
_SCALARS = frozenset({str, int, bool, type(None)})
# Fixed members of a public record around the body, with the longest values.
_RECORD_OVERHEAD = 260
_HEX = re.compile(r"[0-9a-f]+")
_ROLES = ("rights_holder", "notary", "auditor", "admin")
_KINDS = ("file", "hash", "capture")

EVENT_TYPES = frozenset(
    {
        "evidence.deposited",
        "account.registered",
        "account.revoked",
        "key.registered",
        "key.revoked",
        "certificate.issued",
        "certificate.revoked",
        "capture.completed",
        "custody.transferred",
    }
)


class Draft(NamedTuple):
    """An event ready to be sequenced: canonical bodies, salt, commitment.

    A named tuple rather than a frozen dataclass: it is built once per
    deposit on the hot path, and tuples are several times cheaper to build.
    """

    type: str
    body: dict[str, Any]
    private: dict[str, Any]
    body_json: bytes
    private_json: bytes
    salt: bytes
    commitment: str
    ref: str = ""
    """The id the event is about (evidence id, account id), for receipts."""
    blob: bytes | None = None
    """Content stored with the event (small file deposits; never public)."""


class _RandomPool(threading.local):
    """Bytes from ``os.urandom`` drawn in blocks: one system call per 4 KiB,
    not one per salt, on the deposit hot path."""

    def __init__(self) -> None:
        self.buf = b""
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            self.buf, self.pos = os.urandom(max(4096, n)), 0
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out


_random = _RandomPool()


def new_id() -> str:
    """A fresh 128-bit identifier as 32 lowercase hex digits, time-ordered.

    48 bits of milliseconds then 80 random bits (the layout of UUIDv7), so new
    ids land at the end of the projection indexes instead of at random pages.
    """
    ms = time.time_ns() // 1_000_000
    return ms.to_bytes(6, "big").hex() + _random.take(10).hex()


def format_time(t: datetime) -> str:
    """UTC with microseconds, the only time format in the log."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_hex_digest(value: str, size: int, what: str) -> str:
    """Normalise a hex digest of ``size`` bytes to lowercase or raise InvalidInput."""
    v = value.strip().lower()
    if len(v) != 2 * size or not _HEX.fullmatch(v):
        raise InvalidInput(f"{what}: expected {2 * size} hex digits, got {value[:80]!r}")
    return v


def _refuse_floats(value: Any) -> None:
    """Public records hold no floats: ``verifier.record.decode_record`` refuses them,
    so such an entry could never be audited or verified."""
    if type(value) is dict and all(type(v) in _SCALARS for v in value.values()):
        return  # the usual flat body, checked without recursion
    if isinstance(value, float):
        raise InvalidInput("event: floating-point numbers are not allowed in a public body")
    if isinstance(value, dict):
        for v in value.values():
            _refuse_floats(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _refuse_floats(v)


def make_draft(
    type_: str,
    body: dict[str, Any],
    private: dict[str, Any],
    ref: str = "",
    blob: bytes | None = None,
) -> Draft:
    """Validate and canonicalise an event; refuse entries that cannot fit a tile bundle."""
    if type_ not in EVENT_TYPES:
        raise InvalidInput(f"event: unknown type {type_!r}")
    _refuse_floats(body)
    try:
        body_json = canonicalize(body)
        private_json = canonicalize(private)
    except MalformedError as e:
        raise InvalidInput(str(e)) from e
    if len(body_json) + len(type_) + _RECORD_OVERHEAD > MAX_LEAF_SIZE:
        raise TooLarge(f"event: public record would exceed {MAX_LEAF_SIZE} bytes")
    if len(private_json) > 16 * MAX_LEAF_SIZE:
        raise TooLarge(f"event: private body exceeds {16 * MAX_LEAF_SIZE} bytes")
    salt = _random.take(SALT_SIZE)
    return Draft(
        type=type_,
        body=body,
        private=private,
        body_json=body_json,
        private_json=private_json,
        salt=salt,
        commitment=commitment(salt, private_json),
        ref=ref,
        blob=blob,
    )


def _text(value: str | None, what: str, limit: int) -> str | None:
    if value is None:
        return None
    if len(value) > limit:
        raise TooLarge(f"{what}: longer than {limit} characters")
    if any(c < " " and c not in "\t\n" for c in value):
        raise InvalidInput(f"{what}: contains control characters")
    return value


def evidence_deposited(
    *,
    kind: str,
    sha256: str,
    sm3: str | None = None,
    size: int | None = None,
    title: str | None = None,
    description: str | None = None,
    file_name: str | None = None,
    media_type: str | None = None,
    owner: str | None = None,
    extra: dict[str, Any] | None = None,
    evidence_id: str | None = None,
    idempotency_key: str | None = None,
    request_sha256: str | None = None,
    content: bytes | None = None,
) -> Draft:
    """``evidence.deposited``: only the evidence id and kind are public.

    ``content`` (a small file's bytes, already hashed by the caller) is stored
    with the event, in the same transaction; see :mod:`ledger.blobs`.
    """
    if kind not in _KINDS:
        raise InvalidInput(f"evidence: unknown kind {kind!r}")
    if size is not None and size < 0:
        raise InvalidInput("evidence: negative size")
    eid = evidence_id or new_id()
    private: dict[str, Any] = {
        "kind": kind,
        "sha256": parse_hex_digest(sha256, 32, "sha256"),
        "sm3": parse_hex_digest(sm3, 32, "sm3") if sm3 else None,
        "size": size,
        "title": _text(title, "title", 1000),
        "description": _text(description, "description", 10000),
        "file_name": _text(file_name, "file name", 1000),
        "media_type": _text(media_type, "media type", 255),
        "owner": owner,
        "idempotency_key": _text(idempotency_key, "idempotency key", 300),
        "request_sha256": request_sha256,
    }
    if extra:
        private["extra"] = extra
    # Absent facts are left out rather than stored as nulls: smaller rows, same meaning.
    private = {k: v for k, v in private.items() if v is not None}
    if content is not None and (
        kind != "file"
        or size != len(content)
        or hashlib.sha256(content).hexdigest() != private["sha256"]
    ):
        raise InvalidInput("evidence: inline content must be the deposited file itself")
    body = {"evidence_id": eid, "kind": kind}
    return make_draft("evidence.deposited", body, private, eid, content)


def account_registered(
    *, role: str, name: str, token_sha256: str | None = None, account_id: str | None = None
) -> Draft:
    """``account.registered``: role public; name and token hash private."""
    if role not in _ROLES:
        raise InvalidInput(f"account: role must be one of {', '.join(_ROLES)}")
    if not name or _text(name, "name", 200) is None:
        raise InvalidInput("account: name is required")
    aid = account_id or new_id()
    private = {"name": name, "token_sha256": token_sha256}
    return make_draft("account.registered", {"account_id": aid, "role": role}, private, aid)


def key_registered(*, account_id: str, vkey: str, purpose: str, valid_from: str) -> Draft:
    """``key.registered``: a public verifier key bound to an account, in the open."""
    body = {"account_id": account_id, "vkey": vkey, "purpose": purpose, "valid_from": valid_from}
    return make_draft("key.registered", body, {}, account_id)
