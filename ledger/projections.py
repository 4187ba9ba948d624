"""Projections: query tables derived from events, and the rules that fill them.

``project`` maps one event (public and private parts) to row operations. The
same function runs inside every append transaction and during ``rebuild``,
which drops the tables and replays the whole log, so both paths give
identical tables by construction.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "INDEXES",
    "PROJECTIONS",
    "Insert",
    "Op",
    "Update",
    "deposit_number",
    "index_ddl",
    "project",
    "projections_signature",
]

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
}
# Secondary indexes: (table, columns, unique). The unique (owner, idem_key)
# index makes an Idempotency-Key retry that races its original fail to append
# instead of depositing twice.
INDEXES: tuple[tuple[str, tuple[str, ...], bool, str], ...] = (
    # Partial indexes: deposits made without an owner or an Idempotency-Key
    # (the CLI, bulk loads) cost no entry in them.
    ("evidence", ("owner", "idx"), False, "owner is not null"),
    ("evidence", ("sha256",), False, ""),
    ("evidence", ("owner", "idem_key"), True, "idem_key is not null"),
    ("accounts", ("token_sha256",), False, ""),
    ("certificates", ("evidence_id",), False, ""),
)


def projections_signature() -> str:
    """A digest of the projection schema. Stored in the database's meta table:
    a store whose signature differs (made by an older version) replays its
    projections on open, since they are derived from the log anyway."""
    import hashlib

    return hashlib.sha256(repr((PROJECTIONS, INDEXES)).encode()).hexdigest()[:16]


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
    """Set ``values`` on the row of ``table`` whose ``key`` equals ``key_value``."""

    table: str
    key: str
    key_value: Any
    values: dict[str, Any]


Op = Insert | Update


def deposit_number(index: int, time: str) -> str:
    """存证编号: date of deposit and log index, e.g. ``EL-20261121-0000000042``."""
    return f"EL-{time[0:4]}{time[5:7]}{time[8:10]}-{index:010d}"


def project(
    type_: str, body: dict[str, Any], private: dict[str, Any], index: int, time: str
) -> list[Op]:
    """Return the projection changes caused by one event."""
    if type_ == "evidence.deposited":
        p = private
        return [
            Insert(
                "evidence",
                (
                    body["evidence_id"],
                    index,
                    time,
                    deposit_number(index, time),
                    body["kind"],
                    p.get("owner"),
                    p.get("title"),
                    p.get("file_name"),
                    p.get("media_type"),
                    p.get("size"),
                    p["sha256"],
                    p.get("sm3"),
                    p.get("description"),
                    p.get("idempotency_key"),
                    p.get("request_sha256"),
                ),
            )
        ]
    if type_ == "account.registered":
        return [
            Insert(
                "accounts",
                (
                    body["account_id"],
                    index,
                    time,
                    body["role"],
                    private["name"],
                    private.get("token_sha256"),
                    None,
                ),
            )
        ]
    if type_ == "account.revoked":
        return [Update("accounts", "account_id", body["account_id"], {"revoked_idx": index})]
    if type_ == "key.registered":
        return [
            Insert(
                "keys",
                (
                    body["vkey"],
                    body["account_id"],
                    body["purpose"],
                    body["valid_from"],
                    index,
                    None,
                ),
            )
        ]
    if type_ == "key.revoked":
        return [Update("keys", "vkey", body["vkey"], {"revoked_idx": index})]
    if type_ == "certificate.issued":
        # Only events shaped like ledger.certificates writes them make a row: the
        # log may hold other bodies under this type, and projecting must not fail.
        ids = [body.get(k) for k in ("certificate_id", "evidence_id", "account_id")]
        if not all(isinstance(v, str) for v in ids):
            return []
        return [Insert("certificates", (*ids, index, time, None, None, None))]
    if type_ == "certificate.revoked":
        if not isinstance(body.get("certificate_id"), str):
            return []
        values = {
            "revoked_idx": index,
            "revoked_time": time,
            "revoked_reason": private.get("reason"),
        }
        return [Update("certificates", "certificate_id", body["certificate_id"], values)]
    return []
