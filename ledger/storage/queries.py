"""The read model: every query the services make of the projection tables.

Services never write SQL; they ask this module, which returns typed, frozen
records. The statements use ``?`` placeholders and plain SQL that both
backends accept (``Store.query`` adapts placeholders for PostgreSQL).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.storage import search
from ledger.storage.base import Store

__all__ = [
    "AccountRecord",
    "CertificateRecord",
    "EvidenceFilter",
    "EvidenceRecord",
    "KeyRecord",
    "ReadModel",
    "RequestRecord",
]


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """One deposit as the evidence projection holds it."""

    evidence_id: str
    index: int
    time: str
    deposit_no: str
    kind: str
    sha256: str
    owner: str | None = None
    title: str | None = None
    description: str | None = None
    file_name: str | None = None
    media_type: str | None = None
    size: int | None = None
    sm3: str | None = None
    leaf_hash: bytes | None = None
    """The log entry's RFC 9162 leaf hash, when the query asked for it."""
    idem_key: str | None = None
    request_sha256: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EvidenceRecord:
        leaf = row.get("_leaf_hash")
        return cls(
            evidence_id=row["evidence_id"],
            index=int(row["idx"]),
            time=row["time"],
            deposit_no=row["deposit_no"],
            kind=row["kind"],
            sha256=row["sha256"],
            owner=row["owner"],
            title=row["title"],
            description=row["description"],
            file_name=row["file_name"],
            media_type=row["media_type"],
            size=None if row["size"] is None else int(row["size"]),
            sm3=row["sm3"],
            leaf_hash=None if leaf is None else bytes(leaf),
            idem_key=row["idem_key"],
            request_sha256=row["request_sha256"],
        )


@dataclass(frozen=True, slots=True)
class EvidenceFilter:
    """Listing filters; every field optional. ``title`` is a case-insensitive
    substring; ``since`` inclusive, ``until`` exclusive (UTC times)."""

    since: str | None = None
    until: str | None = None
    title: str | None = None
    sha256: str | None = None
    deposit_no: str | None = None
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class AccountRecord:
    account_id: str
    index: int
    time: str
    role: str
    name: str
    token_sha256: str | None
    revoked_index: int | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AccountRecord:
        revoked = row["revoked_idx"]
        return cls(
            account_id=row["account_id"],
            index=int(row["idx"]),
            time=row["time"],
            role=row["role"],
            name=row["name"],
            token_sha256=row["token_sha256"],
            revoked_index=None if revoked is None else int(revoked),
        )


@dataclass(frozen=True, slots=True)
class KeyRecord:
    vkey: str
    account_id: str
    purpose: str
    valid_from: str
    index: int
    revoked_index: int | None


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    certificate_id: str
    evidence_id: str
    account_id: str
    """The issuing notary."""
    index: int
    time: str
    revoked_index: int | None = None
    revoked_time: str | None = None
    revoked_reason: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CertificateRecord:
        revoked = row["revoked_idx"]
        return cls(
            certificate_id=row["certificate_id"],
            evidence_id=row["evidence_id"],
            account_id=row["account_id"],
            index=int(row["idx"]),
            time=row["time"],
            revoked_index=None if revoked is None else int(revoked),
            revoked_time=row["revoked_time"],
            revoked_reason=row["revoked_reason"],
        )


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A certificate request (``certificate.requested``) and how it was closed."""

    request_id: str
    evidence_id: str
    requester: str
    index: int
    time: str
    status: str
    """``open``, ``rejected`` or ``issued``."""
    note: str | None = None
    closed_index: int | None = None
    closed_time: str | None = None
    closed_by: str | None = None
    reason: str | None = None
    certificate_id: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RequestRecord:
        closed = row["closed_idx"]
        return cls(
            request_id=row["request_id"],
            evidence_id=row["evidence_id"],
            requester=row["requester"],
            index=int(row["idx"]),
            time=row["time"],
            status=row["status"],
            note=row["note"],
            closed_index=None if closed is None else int(closed),
            closed_time=row["closed_time"],
            closed_by=row["closed_by"],
            reason=row["reason"],
            certificate_id=row["certificate_id"],
        )


# Evidence rows with their log entry's leaf hash, in one query.
_WITH_LEAF = "select e.*, v.leaf_hash as _leaf_hash from evidence e join events v on v.idx = e.idx"


# A deposit number (存证编号) ends in its log index (verifier.events.deposit_number).
_DEPOSIT_INDEX = re.compile(r"^EL-[0-9]{8}-([0-9]{10})$")


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ReadModel:
    """Typed queries over one store's projection tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- evidence --------------------------------------------------------
    def evidence(self, evidence_id: str, *, leaf_hash: bool = False) -> EvidenceRecord | None:
        query = (
            (_WITH_LEAF + " where e.evidence_id = ?")
            if leaf_hash
            else ("select * from evidence where evidence_id = ?")
        )
        rows = self.store.query(query, (evidence_id,))
        return EvidenceRecord.from_row(rows[0]) if rows else None

    def evidence_page(
        self, owner: str | None, filters: EvidenceFilter, after: int, limit: int
    ) -> list[EvidenceRecord]:
        """Up to ``limit`` deposits with index >= ``after`` in log order,
        those of ``owner`` only unless it is None.

        Every filter is answered from an index that yields rows in log order,
        so a page costs about ``limit`` rows read, not the owner's whole list:

        (1) a deposit number names its log index: one row;
        (2) dates become index bounds: the log's time never decreases along
            its index (the sequencer assigns it so, the audit refuses a log
            where it goes back), so no row's time needs checking;
        (3) a digest or a kind: the ``(owner, sha256, idx)`` and
            ``(owner, kind, idx)`` indexes;
        (4) a title of two characters or more, when no digest or number
            narrows the list already: the title search index
            (:mod:`ledger.storage.search`) in log order, each candidate checked
            as a substring; shorter titles are checked row by row.
        """
        where: list[str] = []
        params: list[Any] = []
        lo, hi = after, None
        number = _DEPOSIT_INDEX.match(filters.deposit_no or "")
        if filters.deposit_no is not None:  # (1)
            if number is None:
                return []
            lo, hi = max(lo, int(number[1])), int(number[1]) + 1
        if filters.since is not None:  # (2)
            first = self._first_index_at(filters.since)
            if first is None:
                return []
            lo = max(lo, first)
        if filters.until is not None:
            first = self._first_index_at(filters.until)
            if first is not None:
                hi = first if hi is None else min(hi, first)
        if hi is not None and lo >= hi:
            return []
        if owner is not None:
            where.append("e.owner = ?")
            params.append(owner)
        for column, op, value in (  # (3)
            ("sha256", "=", filters.sha256.lower() if filters.sha256 else None),
            ("deposit_no", "=", filters.deposit_no),
            ("kind", "=", filters.kind),
        ):
            if value is not None:
                where.append(f"e.{column} {op} ?")
                params.append(value)
        keys: tuple[str, ...]
        if filters.title:  # (4)
            norm = search.normalize(filters.title)
            narrow = filters.sha256 or filters.deposit_no
            found = self.store.title_search([] if narrow else search.query_grams(norm))
            source, order, keys = found.source, found.order, (found.order, found.key)
            where += [found.where, "s.norm like ? escape '\\'"]
            params += [*found.params, _like(norm)]
        else:
            source, order, keys = "evidence e", "e.idx", ("e.idx",)
        for key in keys:
            where.append(f"{key} >= ?")
            params.append(lo)
            if hi is not None:
                where.append(f"{key} < ?")
                params.append(hi)
        rows = self.store.query(
            f"select e.* from {source} where {' and '.join(where)} "  # noqa: S608
            f"order by {order} limit ?",
            (*params, limit),
            planned_each_time=True,
        )
        return [EvidenceRecord.from_row(r) for r in rows]

    def _first_index_at(self, time: str) -> int | None:
        """The index of the first deposit at or after ``time`` (None: there is none)."""
        rows = self.store.query(
            "select idx from evidence where time >= ? order by time, idx limit 1", (time,)
        )
        return int(rows[0]["idx"]) if rows else None

    def evidence_by_key(self, owner: str, key: str) -> list[EvidenceRecord]:
        """Deposits an owner made under Idempotency-Key ``key`` (exactly that
        key: stored keys are ``key#n``, and a key may itself contain ``#``)."""
        rows = self.store.query(
            _WITH_LEAF + " where e.owner = ? and e.idem_key >= ? and e.idem_key < ? order by e.idx",
            (owner, key + "#", key + "$"),
        )
        records = [EvidenceRecord.from_row(r) for r in rows]
        return [r for r in records if r.idem_key and r.idem_key.rpartition("#")[0] == key]

    def sha256_in_use(self, sha256: str) -> bool:
        """Whether any evidence refers to the content ``sha256``."""
        return bool(self.store.query("select 1 from evidence where sha256 = ? limit 1", (sha256,)))

    def deposits_by_content(
        self, after_sha256: str, after_index: int, limit: int
    ) -> list[dict[str, Any]]:
        """File and capture deposits (evidence_id, idx, kind, sha256, sm3, size)
        ordered by content, then log order, after the given position."""
        return self.store.query(
            "select evidence_id, idx, kind, sha256, sm3, size from evidence "
            "where kind in ('file', 'capture') and (sha256 > ? or (sha256 = ? and idx > ?)) "
            "order by sha256, idx limit ?",
            (after_sha256, after_sha256, after_index, limit),
        )

    def blob_in_use(self, sha256: str) -> bool:
        """Whether a committed entry refers to the blob ``sha256``: as the
        content of a deposit, or as an artefact of a captured page."""
        return self.sha256_in_use(sha256) or bool(
            self.store.query("select 1 from artefacts where sha256 = ? limit 1", (sha256,))
        )

    def count(self, table: str) -> int:
        if table not in ("evidence", "accounts", "keys", "certificates", "checkpoints"):
            raise ValueError(f"count: unknown table {table}")
        return int(self.store.query(f"select count(*) as n from {table}")[0]["n"])  # noqa: S608

    def capture_jobs_by_status(self) -> dict[str, int]:
        """How many capture jobs are in each status (queued, running, done...)."""
        rows = self.store.query("select status, count(*) as n from capture_jobs group by status")
        return {str(r["status"]): int(r["n"]) for r in rows}

    # -- accounts and keys -------------------------------------------------
    def _accounts(self, where: str, params: Sequence[Any]) -> list[AccountRecord]:
        rows = self.store.query(f"select * from accounts where {where}", params)  # noqa: S608
        return [AccountRecord.from_row(r) for r in rows]

    def active_account_by_token(self, token_sha256: str) -> list[AccountRecord]:
        return self._accounts("token_sha256 = ? and revoked_idx is null", (token_sha256,))

    def active_accounts_by_id(self, account_id: str) -> list[AccountRecord]:
        return self._accounts("account_id = ? and revoked_idx is null", (account_id,))

    def active_accounts_by_name(self, name: str, role: str | None = None) -> list[AccountRecord]:
        if role is None:
            return self._accounts("name = ? and revoked_idx is null", (name,))
        return self._accounts("name = ? and role = ? and revoked_idx is null", (name, role))

    def account(self, account_id: str) -> AccountRecord | None:
        found = self._accounts("account_id = ?", (account_id,))
        return found[0] if found else None

    def accounts(self) -> list[AccountRecord]:
        return self._accounts("1 = 1 order by idx", ())

    def keys(
        self,
        *,
        account_id: str | None = None,
        vkey: str | None = None,
        purpose: str | None = None,
        active: bool = False,
    ) -> list[KeyRecord]:
        where, params = ["1 = 1"], []
        if purpose is not None:
            where.append("purpose = ?")
            params.append(purpose)
        if account_id is not None:
            where.append("account_id = ?")
            params.append(account_id)
        if vkey is not None:
            where.append("vkey = ?")
            params.append(vkey)
        if active:
            where.append("revoked_idx is null")
        rows = self.store.query(
            f"select * from keys where {' and '.join(where)} order by idx",  # noqa: S608
            params,
        )
        return [
            KeyRecord(
                vkey=r["vkey"],
                account_id=r["account_id"],
                purpose=r["purpose"],
                valid_from=r["valid_from"],
                index=int(r["idx"]),
                revoked_index=None if r["revoked_idx"] is None else int(r["revoked_idx"]),
            )
            for r in rows
        ]

    # -- certificates ------------------------------------------------------
    def certificate(self, certificate_id: str) -> CertificateRecord | None:
        rows = self.store.query(
            "select * from certificates where certificate_id = ?", (certificate_id,)
        )
        return CertificateRecord.from_row(rows[0]) if rows else None

    def certificates_of_evidence(self, evidence_id: str) -> list[CertificateRecord]:
        rows = self.store.query(
            "select * from certificates where evidence_id = ? order by idx", (evidence_id,)
        )
        return [CertificateRecord.from_row(r) for r in rows]

    def certificates_page(
        self, account_id: str | None, owner: str | None, after: int, limit: int
    ) -> list[CertificateRecord]:
        """Certificates in log order from index ``after``: those issued by
        ``account_id`` and/or those of evidence owned by ``owner`` (None: any)."""
        where: list[str] = ["c.idx >= ?"]
        params: list[Any] = [after]
        if account_id is not None:
            where.append("c.account_id = ?")
            params.append(account_id)
        if owner is not None:
            where.append("e.owner = ?")
            params.append(owner)
        joined = "certificates c join evidence e on e.evidence_id = c.evidence_id"
        clause = " and ".join(where)
        query = f"select c.* from {joined} where {clause} order by c.idx limit ?"  # noqa: S608
        rows = self.store.query(query, (*params, limit))
        return [CertificateRecord.from_row(r) for r in rows]

    # -- certificate requests ------------------------------------------------
    def request(self, request_id: str) -> RequestRecord | None:
        rows = self.store.query("select * from requests where request_id = ?", (request_id,))
        return RequestRecord.from_row(rows[0]) if rows else None

    def requests_of_evidence(
        self, evidence_id: str, status: str | None = None
    ) -> list[RequestRecord]:
        if status is None:
            rows = self.store.query(
                "select * from requests where evidence_id = ? order by idx", (evidence_id,)
            )
        else:
            rows = self.store.query(
                "select * from requests where evidence_id = ? and status = ? order by idx",
                (evidence_id, status),
            )
        return [RequestRecord.from_row(r) for r in rows]

    def requests_page(
        self, requester: str | None, status: str | None, after: int, limit: int
    ) -> list[RequestRecord]:
        """Requests in log order from index ``after``, optionally of one
        requester and/or in one status."""
        where: list[str] = ["idx >= ?"]
        params: list[Any] = [after]
        if requester is not None:
            where.append("requester = ?")
            params.append(requester)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        rows = self.store.query(
            f"select * from requests where {' and '.join(where)} order by idx limit ?",  # noqa: S608
            (*params, limit),
        )
        return [RequestRecord.from_row(r) for r in rows]
