"""Projections: query tables derived from events, and the handlers that fill them.

Handlers form a registry keyed by event type: each takes one typed event
of the catalogue (:mod:`verifier.events`) with its log index and time and
returns row operations. The same handlers run inside every append
transaction (on the drafts' events) and during ``rebuild``, which drops the
tables and replays the whole log (parsing each stored event strictly), so
both paths give identical tables by construction. Adding an event type means
one class in the catalogue and one handler here.

Revocations and closures take effect once: the first event wins, later ones
leave the row as it is (:attr:`Update.if_null`), as the verifier's fold
(:mod:`verifier.status`) counts them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from verifier.events import (
    AccountRegistered,
    AccountRevoked,
    CertificateIssued,
    CertificateRequested,
    CertificateRequestRejected,
    CertificateRevoked,
    Event,
    EventError,
    EvidenceDeposited,
    KeyRegistered,
    KeyRevoked,
    deposit_number,
    parse_event,
)
from verifier.status import REQUEST_ISSUED, REQUEST_OPEN, REQUEST_REJECTED

__all__ = [
    "HANDLERS",
    "INDEXES",
    "PROJECTIONS",
    "Insert",
    "Op",
    "Update",
    "deposit_number",
    "index_ddl",
    "project",
    "project_event",
    "projections_signature",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")

RULES_VERSION = 2
"""Raised when a handler's meaning changes, so that stores replay on open."""
TITLE_SEARCH_VERSION = 1
"""The form of the title search rows written beside ``evidence`` (ledger.storage.search)."""

# Column order of every projection table; backends create them from this.
PROJECTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "evidence": (
        ("evidence_id", "text primary key"),
        ("idx", "bigint not null"),
        ("time", "text not null"),
        ("deposit_no", "text not null"),
        ("kind", "text not null"),
        ("owner", "text"),
        ("title", "text"),
        ("file_name", "text"),
        ("media_type", "text"),
        ("size", "bigint"),
        ("sha256", "text not null"),
        ("sm3", "text"),
        ("description", "text"),
        ("idem_key", "text"),
        ("request_sha256", "text"),
    ),
    # The artefacts of captured pages (their blobs are in the manifest, whose
    # digest is the evidence's): what a clean-up must not remove.
    "artefacts": (
        ("evidence_id", "text not null"),
        ("idx", "bigint not null"),
        ("name", "text not null"),
        ("sha256", "text not null"),
    ),
    "accounts": (
        ("account_id", "text primary key"),
        ("idx", "bigint not null"),
        ("time", "text not null"),
        ("role", "text not null"),
        ("name", "text not null"),
        ("token_sha256", "text"),
        ("revoked_idx", "bigint"),
    ),
    "keys": (
        ("vkey", "text primary key"),
        ("account_id", "text not null"),
        ("purpose", "text not null"),
        ("valid_from", "text not null"),
        ("idx", "bigint not null"),
        ("revoked_idx", "bigint"),
    ),
    # Certificates (issue 3): the certificate itself is in the private body of
    # its certificate.issued event, at ``idx``.
    "certificates": (
        ("certificate_id", "text primary key"),
        ("evidence_id", "text not null"),
        ("account_id", "text not null"),
        ("idx", "bigint not null"),
        ("time", "text not null"),
        ("revoked_idx", "bigint"),
        ("revoked_time", "text"),
        ("revoked_reason", "text"),
    ),
    # Certificate requests: open until rejected or answered by an issue
    # (``closed_idx`` is the index of the event that closed it).
    "requests": (
        ("request_id", "text primary key"),
        ("evidence_id", "text not null"),
        ("requester", "text not null"),
        ("idx", "bigint not null"),
        ("time", "text not null"),
        ("note", "text"),
        ("status", "text not null"),
        ("closed_idx", "bigint"),
        ("closed_time", "text"),
        ("closed_by", "text"),
        ("reason", "text"),
        ("certificate_id", "text"),
    ),
}
# Secondary indexes: (table, columns, unique). The unique (owner, idem_key)
# index makes an Idempotency-Key retry that races its original fail to append
# instead of depositing twice.
INDEXES: tuple[tuple[str, tuple[str, ...], bool, str], ...] = (
    # Listings are keyset pages in log order: each filter has an index that
    # ends in ``idx``, so a page reads only its own rows (ReadModel.evidence_page).
    # Partial indexes: deposits made without an owner or an Idempotency-Key
    # (the CLI, bulk loads) cost no entry in them.
    ("evidence", ("idx",), True, ""),
    ("evidence", ("owner", "idx"), False, "owner is not null"),
    ("evidence", ("sha256",), False, ""),
    ("evidence", ("owner", "sha256", "idx"), False, "owner is not null"),
    ("evidence", ("owner", "kind", "idx"), False, "owner is not null"),
    ("evidence", ("kind", "idx"), False, ""),
    # Dates become index bounds: the log's time never decreases with its index.
    ("evidence", ("time", "idx"), False, ""),
    ("evidence", ("owner", "idem_key"), True, "idem_key is not null"),
    ("artefacts", ("sha256",), False, ""),
    ("accounts", ("token_sha256",), False, ""),
    ("certificates", ("evidence_id",), False, ""),
    ("requests", ("status", "idx"), False, ""),
    ("requests", ("evidence_id",), False, ""),
    ("requests", ("requester", "idx"), False, ""),
)


def projections_signature() -> str:
    """A digest of the projection schema. Stored in the database's meta table:
    a store whose signature differs (made by an older version) replays its
    projections on open, since they are derived from the log anyway."""
    schema = (PROJECTIONS, INDEXES, RULES_VERSION, TITLE_SEARCH_VERSION)
    return hashlib.sha256(repr(schema).encode()).hexdigest()[:16]


def index_ddl() -> list[str]:
    """``create index`` statements for INDEXES (the same SQL on both backends)."""
    return [
        f"create {'unique ' if unique else ''}index if not exists "
        f"{table}_{'_'.join(cols)} on {table} ({', '.join(cols)})"
        + (f" where {where}" if where else "")
        for table, cols, unique, where in INDEXES
    ]


class Insert(NamedTuple):
    """Insert ``row`` (in PROJECTIONS column order) into ``table``."""

    table: str
    row: tuple[Any, ...]


class Update(NamedTuple):
    """Set ``values`` on the row of ``table`` whose ``key`` equals ``key_value``
    (and, with ``if_null``, only while that column is still null)."""

    table: str
    key: str
    key_value: Any
    values: dict[str, Any]
    if_null: str | None = None


Op = Insert | Update
E = TypeVar("E", bound=Event[Any])
Handler = Callable[[Any, int, str], list[Op]]

HANDLERS: dict[str, Handler] = {}
"""The projection handler of each event type (types without one project nothing)."""


def handles(cls: type[E]) -> Callable[[Callable[[E, int, str], list[Op]]], Handler]:
    """Register the decorated function as the handler of ``cls``'s events."""

    def register(fn: Callable[[E, int, str], list[Op]]) -> Handler:
        if cls.TYPE in HANDLERS:
            raise ValueError(f"projections: {cls.TYPE} already has a handler")
        HANDLERS[cls.TYPE] = fn
        return fn

    return register


def project_event(event: Event[Any], index: int, time: str) -> list[Op]:
    """The projection changes caused by one typed event (with its private body)."""
    handler = HANDLERS.get(event.TYPE)
    return [] if handler is None else handler(event, index, time)


def project(
    type_: str, body: dict[str, Any], private: dict[str, Any], index: int, time: str
) -> list[Op]:
    """The projection changes caused by one stored event. An event the catalogue
    does not accept projects nothing: the log may hold other bodies (written by
    hand or by another producer), and replaying must not fail on them."""
    if type_ not in HANDLERS:
        return []
    try:
        event = parse_event(type_, body, private)
    except EventError:
        return []
    return project_event(event, index, time)


@handles(EvidenceDeposited)
def _evidence_deposited(e: EvidenceDeposited, index: int, time: str) -> list[Op]:
    p = e.opened()
    row = (
        e.evidence_id,
        index,
        time,
        deposit_number(index, time),
        e.kind,
        p.owner,
        p.title,
        p.file_name,
        p.media_type,
        p.size,
        p.sha256,
        p.sm3,
        p.description,
        p.idempotency_key,
        p.request_sha256,
    )
    ops: list[Op] = [Insert("evidence", row)]
    if e.kind == "capture":
        ops.extend(
            Insert("artefacts", (e.evidence_id, index, name, sha256))
            for name, sha256 in _artefacts(p.extra)
        )
    return ops


def _artefacts(extra: dict[str, Any] | None) -> list[tuple[str, str]]:
    """``(name, sha256)`` of a capture's artefacts, as its deposit lists them
    (anything else in that list is skipped: a replay must not fail on it)."""
    listed = (extra or {}).get("artefacts")
    if not isinstance(listed, list):
        return []
    out = []
    for a in listed:
        if isinstance(a, dict):
            name, sha256 = a.get("name"), a.get("sha256")
            if isinstance(name, str) and isinstance(sha256, str) and _SHA256.fullmatch(sha256):
                out.append((name, sha256))
    return out


@handles(AccountRegistered)
def _account_registered(e: AccountRegistered, index: int, time: str) -> list[Op]:
    p = e.opened()
    return [Insert("accounts", (e.account_id, index, time, e.role, p.name, p.token_sha256, None))]


@handles(AccountRevoked)
def _account_revoked(e: AccountRevoked, index: int, time: str) -> list[Op]:
    values = {"revoked_idx": index}
    return [Update("accounts", "account_id", e.account_id, values, "revoked_idx")]


@handles(KeyRegistered)
def _key_registered(e: KeyRegistered, index: int, time: str) -> list[Op]:
    return [Insert("keys", (e.vkey, e.account_id, e.purpose, e.valid_from, index, None))]


@handles(KeyRevoked)
def _key_revoked(e: KeyRevoked, index: int, time: str) -> list[Op]:
    return [Update("keys", "vkey", e.vkey, {"revoked_idx": index}, "revoked_idx")]


@handles(CertificateRequested)
def _certificate_requested(e: CertificateRequested, index: int, time: str) -> list[Op]:
    p = e.opened()
    row = (
        e.request_id,
        e.evidence_id,
        p.requester,
        index,
        time,
        p.note,
        REQUEST_OPEN,
        None,
        None,
        None,
        None,
        None,
    )
    return [Insert("requests", row)]


@handles(CertificateRequestRejected)
def _request_rejected(e: CertificateRequestRejected, index: int, time: str) -> list[Op]:
    p = e.opened()
    values = {
        "status": REQUEST_REJECTED,
        "closed_idx": index,
        "closed_time": time,
        "closed_by": p.by,
        "reason": p.reason,
    }
    return [Update("requests", "request_id", e.request_id, values, "closed_idx")]


@handles(CertificateIssued)
def _certificate_issued(e: CertificateIssued, index: int, time: str) -> list[Op]:
    row = (e.certificate_id, e.evidence_id, e.account_id, index, time, None, None, None)
    ops: list[Op] = [Insert("certificates", row)]
    if e.request_id is not None:
        values = {
            "status": REQUEST_ISSUED,
            "closed_idx": index,
            "closed_time": time,
            "closed_by": e.account_id,
            "certificate_id": e.certificate_id,
        }
        ops.append(Update("requests", "request_id", e.request_id, values, "closed_idx"))
    return ops


@handles(CertificateRevoked)
def _certificate_revoked(e: CertificateRevoked, index: int, time: str) -> list[Op]:
    p = e.opened()
    values = {"revoked_idx": index, "revoked_time": time, "revoked_reason": p.reason}
    return [Update("certificates", "certificate_id", e.certificate_id, values, "revoked_idx")]
