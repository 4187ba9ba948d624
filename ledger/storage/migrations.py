"""Versioned schema migrations: one list, the same table and column names on every dialect.

The version is kept in the database (``meta.schema_version``). A new
database runs every migration; an older one runs those above its version
when it is opened (under the write locks, in one transaction); a newer one
is refused (:class:`~ledger.storage.sql.SqlStore`). Databases made before
versioning are at version 1; the migrations after it check what exists,
since such databases may already hold some of their tables.

Projection tables are not migrated: they are derived from the log and
replayed when their schema signature changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.storage.sql import Dialect

__all__ = ["LATEST", "MIGRATIONS", "Migration", "migrate"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: ``apply`` runs inside the migrating transaction."""

    version: int
    summary: str
    apply: Callable[[Dialect, Any], None]


def _run(d: Dialect, conn: Any, statements: list[str]) -> None:
    for stmt in statements:
        conn.execute(d.sql(stmt))


def _log(d: Dialect, conn: Any) -> None:
    b, i = d.bytes_type, d.int64
    _run(
        d,
        conn,
        [
            "create table meta (key text primary key, value text not null)",
            f"create table events (idx {i} primary key, type text not null, "
            f"time text not null, leaf {b} not null, leaf_hash {b} not null)",
            f"create table private (idx {i} primary key, salt {b} not null, body {b} not null)",
            f"create table tiles (level integer not null, idx {i} not null, "
            f"width integer not null, hashes {b} not null, inner_nodes {b} not null, "
            "primary key (level, idx))",
            f"create table checkpoints (size {i} primary key, root {b} not null, "
            "note text not null, time text not null)",
            *(s for t in ("events", "private", "checkpoints") for s in d.append_only(t)),
        ],
    )


def _publications(d: Dialect, conn: Any) -> None:
    """Checkpoints whose anchoring policy was met; a database that had none yet
    published every checkpoint it sealed."""
    if d.has_table(conn, "publications"):
        return
    _run(
        d,
        conn,
        [
            f"create table publications (size {d.int64} primary key, note text not null, "
            f"token {d.bytes_type}, time text not null)",
            *d.append_only("publications"),
            "insert into publications select size, note, null, time from checkpoints",
        ],
    )


def _blob_data(d: Dialect, conn: Any) -> None:
    """Content of small file deposits, written with their events (ledger.blobs)."""
    if not d.has_table(conn, "blob_data"):
        _run(
            d,
            conn,
            [f"create table blob_data (sha256 text primary key, data {d.bytes_type} not null)"],
        )


def _capture_jobs(d: Dialect, conn: Any) -> None:
    """Capture jobs (ledger.capture.jobs): mutable records beside the log."""
    if not d.has_table(conn, "capture_jobs"):
        _run(
            d,
            conn,
            [
                "create table capture_jobs (job_id text primary key, owner text, "
                f"status text not null, heartbeat {d.float_type} not null, record text not null)"
            ],
        )


def _inner_nodes(d: Dialect, conn: Any) -> None:
    """SQLite databases named the tiles' inner-node column ``inner`` (reserved
    in PostgreSQL, which had ``inner_nodes``): one name on both."""
    if d.has_column(conn, "tiles", "inner"):
        _run(d, conn, ["alter table tiles rename column inner to inner_nodes"])


def _sessions(d: Dialect, conn: Any) -> None:
    """Web console sessions (ledger.services.sessions): mutable rows beside the
    log, keyed by the SHA-256 of the session id."""
    if not d.has_table(conn, "sessions"):
        _run(
            d,
            conn,
            [
                "create table sessions (id_sha256 text primary key, account_id text not null, "
                f"created {d.int64} not null, seen {d.int64} not null)",
                "create index sessions_account_id on sessions (account_id)",
            ],
        )


def _passwords_and_schedules(d: Dialect, conn: Any) -> None:
    """Password hashes of the accounts that set one (argon2id, operational rows
    beside the log: a cleared password must really be gone, which an
    append-only log cannot promise); and the time a capture job is due, so
    that scheduled jobs wait in the database until a worker picks them."""
    if not d.has_table(conn, "account_passwords"):
        _run(
            d,
            conn,
            [
                "create table account_passwords (account_id text primary key, "
                f"hash text not null, set_at {d.int64} not null)"
            ],
        )
    if not d.has_column(conn, "capture_jobs", "due"):
        _run(
            d,
            conn,
            [
                f"alter table capture_jobs add column due {d.float_type}",
                "create index capture_jobs_due on capture_jobs (due) where due is not null",
            ],
        )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the log: events, private bodies, tiles, checkpoints", _log),
    Migration(2, "publications", _publications),
    Migration(3, "inline blobs", _blob_data),
    Migration(4, "capture jobs", _capture_jobs),
    Migration(5, "tiles.inner_nodes on both databases", _inner_nodes),
    Migration(6, "web console sessions", _sessions),
    Migration(9, "account passwords; capture job schedule", _passwords_and_schedules),
)
LATEST = MIGRATIONS[-1].version


def migrate(d: Dialect, conn: Any, current: int) -> None:
    """Apply every migration above ``current``, in order."""
    for m in MIGRATIONS:
        if m.version > current:
            m.apply(d, conn)
