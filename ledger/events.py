"""Events: drafts built by callers, records sealed into the log.

Every event is an instance of its class in the catalogue
(:mod:`verifier.events`), which defines its public and private bodies; a
draft carries that event, both bodies in canonical JSON, the salt and the
commitment. Everything that can fail (validation, size limits) fails while
building the draft, before it reaches the sequencer, so one bad request can
never abort a group commit. The builders below add the ledger's own input
rules (normalised digests, length limits, no control characters) and turn
the catalogue's errors into :class:`~ledger.errors.InvalidInput`.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from ledger.errors import InvalidInput, TooLarge
from verifier.canonical import canonicalize
from verifier.errors import MalformedError
from verifier.events import (
    CATALOGUE,
    AccountRegistered,
    AccountRegisteredPrivate,
    AccountRevoked,
    CertificateIssued,
    CertificateIssuedPrivate,
    CertificateRequested,
    CertificateRequestedPrivate,
    CertificateRequestRejected,
    CertificateRequestRejectedPrivate,
    CertificateRevoked,
    CertificateRevokedPrivate,
    Event,
    EventError,
    EvidenceDeposited,
    EvidenceDepositedPrivate,
    KeyRegistered,
    KeyRevoked,
    NoPrivate,
    format_time,
    parse_event,
)
from verifier.record import MAX_LEAF_SIZE, commitment

__all__ = [
    "EVENT_TYPES",
    "SALT_SIZE",
    "Draft",
    "account_registered",
    "account_revoked",
    "certificate_issued",
    "certificate_request_rejected",
    "certificate_requested",
    "certificate_revoked",
    "draft",
    "evidence_deposited",
    "format_time",
    "key_registered",
    "key_revoked",
    "make_draft",
    "new_id",
    "parse_hex_digest",
]

SALT_SIZE = 16
# Fixed members of a public record around the body, with the longest values.
_RECORD_OVERHEAD = 260
_HEX = re.compile(r"[0-9a-f]+")
_NONE = NoPrivate()

EVENT_TYPES = frozenset(CATALOGUE)
"""The event types the ledger writes: exactly the catalogue's."""


class Draft(NamedTuple):
    """An event ready to be sequenced: the typed event, canonical bodies, salt, commitment.

    A named tuple rather than a frozen dataclass: it is built once per
    deposit on the hot path, and tuples are several times cheaper to build.
    """

    type: str
    event: Event[Any]
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


def parse_hex_digest(value: str, size: int, what: str) -> str:
    """Normalise a hex digest of ``size`` bytes to lowercase or raise InvalidInput."""
    v = value.strip().lower()
    if len(v) != 2 * size or not _HEX.fullmatch(v):
        raise InvalidInput(f"{what}: expected {2 * size} hex digits, got {value[:80]!r}")
    return v


E = TypeVar("E")


def _event(cls: Callable[..., E], **members: Any) -> E:
    """Build a catalogue event or private body, its errors becoming InvalidInput."""
    try:
        return cls(**members)
    except EventError as e:
        raise InvalidInput(str(e)) from e


def draft(event: Event[Any], ref: str = "", blob: bytes | None = None) -> Draft:
    """Canonicalise a catalogue event; refuse entries that cannot fit a tile bundle.

    The event must carry its private body (``{}`` for events with nothing private).
    """
    body = event.to_body()
    private = event.to_private()
    try:
        body_json = canonicalize(body)
        private_json = canonicalize(private)
    except MalformedError as e:
        raise InvalidInput(str(e)) from e
    if len(body_json) + len(event.TYPE) + _RECORD_OVERHEAD > MAX_LEAF_SIZE:
        raise TooLarge(f"event: public record would exceed {MAX_LEAF_SIZE} bytes")
    if len(private_json) > 16 * MAX_LEAF_SIZE:
        raise TooLarge(f"event: private body exceeds {16 * MAX_LEAF_SIZE} bytes")
    salt = _random.take(SALT_SIZE)
    return Draft(
        type=event.TYPE,
        event=event,
        body=body,
        private=private,
        body_json=body_json,
        private_json=private_json,
        salt=salt,
        commitment=commitment(salt, private_json),
        ref=ref,
        blob=blob,
    )


def make_draft(
    type_: str,
    body: dict[str, Any],
    private: dict[str, Any],
    ref: str = "",
    blob: bytes | None = None,
) -> Draft:
    """Draft an event given as JSON bodies, parsed strictly against the catalogue."""
    try:
        event = parse_event(type_, body, private)
    except EventError as e:
        raise InvalidInput(str(e)) from e
    return draft(event, ref, blob)


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
    eid = evidence_id or new_id()
    private = _event(
        EvidenceDepositedPrivate,
        kind=kind,
        sha256=parse_hex_digest(sha256, 32, "sha256"),
        sm3=parse_hex_digest(sm3, 32, "sm3") if sm3 else None,
        size=size,
        title=_text(title, "title", 1000),
        description=_text(description, "description", 10000),
        file_name=_text(file_name, "file name", 1000),
        media_type=_text(media_type, "media type", 255),
        owner=owner,
        idempotency_key=_text(idempotency_key, "idempotency key", 300),
        request_sha256=request_sha256,
        extra=extra or None,
    )
    if content is not None and (
        kind != "file" or size != len(content) or hashlib.sha256(content).hexdigest() != sha256
    ):
        raise InvalidInput("evidence: inline content must be the deposited file itself")
    event = _event(EvidenceDeposited, evidence_id=eid, kind=kind, private=private)
    return draft(event, eid, content)


def account_registered(
    *, role: str, name: str, token_sha256: str | None = None, account_id: str | None = None
) -> Draft:
    """``account.registered``: role public; name and token hash private."""
    if not name or _text(name, "name", 200) is None:
        raise InvalidInput("account: name is required")
    aid = account_id or new_id()
    private = _event(AccountRegisteredPrivate, name=name, token_sha256=token_sha256)
    return draft(_event(AccountRegistered, account_id=aid, role=role, private=private), aid)


def account_revoked(*, account_id: str) -> Draft:
    """``account.revoked``."""
    return draft(_event(AccountRevoked, account_id=account_id, private=_NONE), account_id)


def key_registered(*, account_id: str, vkey: str, purpose: str, valid_from: str) -> Draft:
    """``key.registered``: a public verifier key bound to an account, in the open."""
    event = _event(
        KeyRegistered,
        account_id=account_id,
        vkey=vkey,
        purpose=purpose,
        valid_from=valid_from,
        private=_NONE,
    )
    return draft(event, account_id)


def key_revoked(*, account_id: str, vkey: str) -> Draft:
    """``key.revoked``: the key of ``account_id`` signs nothing from this entry on."""
    event = _event(KeyRevoked, account_id=account_id, vkey=vkey, private=_NONE)
    return draft(event, account_id)


def certificate_requested(
    *, evidence_id: str, requester: str, note: str | None = None, request_id: str | None = None
) -> Draft:
    """``certificate.requested``: request and evidence ids public; requester and note private."""
    rid = request_id or new_id()
    private = _event(
        CertificateRequestedPrivate, requester=requester, note=_text(note, "note", 4000)
    )
    event = _event(CertificateRequested, request_id=rid, evidence_id=evidence_id, private=private)
    return draft(event, rid)


def certificate_request_rejected(*, request_id: str, reason: str, by: str | None) -> Draft:
    """``certificate.request_rejected``: request id public; reason and notary private."""
    private = _event(CertificateRequestRejectedPrivate, reason=_text(reason, "reason", 1000), by=by)
    return draft(
        _event(CertificateRequestRejected, request_id=request_id, private=private), request_id
    )


def certificate_issued(
    *,
    certificate_id: str,
    evidence_id: str,
    account_id: str,
    certificate: bytes,
    request_id: str | None = None,
) -> Draft:
    """``certificate.issued``: ids public (and the request it answers); the
    certificate's exact bytes private."""
    private = _event(CertificateIssuedPrivate, certificate=certificate.decode("utf-8"))
    event = _event(
        CertificateIssued,
        certificate_id=certificate_id,
        evidence_id=evidence_id,
        account_id=account_id,
        request_id=request_id,
        private=private,
    )
    return draft(event, certificate_id)


def certificate_revoked(*, certificate_id: str, reason: str, by: str | None) -> Draft:
    """``certificate.revoked``: the certificate id public; reason and revoker private."""
    private = _event(CertificateRevokedPrivate, reason=_text(reason, "reason", 1000), by=by)
    event = _event(CertificateRevoked, certificate_id=certificate_id, private=private)
    return draft(event, certificate_id)
