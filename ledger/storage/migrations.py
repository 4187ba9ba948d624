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

from ledger.storage.base import (
    CHECKPOINTS_HEAD,
    LINK_GENESIS,
    PUBLICATIONS_HEAD,
    checkpoint_link,
    publication_link,
)
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


def _rate_buckets(d: Dialect, conn: Any) -> None:
    """Rate limits shared by every worker and host (ledger.services.limits):
    one row per bucket, its theoretical arrival time (GCRA) in epoch seconds."""
    if not d.has_table(conn, "rate_buckets"):
        _run(
            d,
            conn,
            [
                "create table rate_buckets (bucket text primary key, "
                f"tat {d.float_type} not null, granted integer not null)",
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


def _renewals(d: Dialect, conn: Any) -> None:
    """Timestamp renewal (RFC 4998 archive timestamps, ledger.renewal): each
    renewal token once, and per renewed token of a publication its place in
    the evidence record and its reduced hash tree. Append-only, like the
    publications they extend."""
    if d.has_table(conn, "renewals"):
        return
    b, i = d.bytes_type, d.int64
    _run(
        d,
        conn,
        [
            "create table renewal_batches (batch text primary key, time text not null, "
            f"algorithm text not null, token {b} not null, gen_time text not null, "
            "not_after text not null, tsa text not null, hash_tree integer not null)",
            f"create table renewals (size {i} not null, line integer not null, "
            "seq integer not null, chain integer not null, batch text not null, "
            f"hashtree {b} not null, primary key (size, line, seq))",
            *d.append_only("renewal_batches"),
            *d.append_only("renewals"),
        ],
    )


def _chain(d: Dialect, conn: Any) -> None:
    """Link checkpoints and publications: each row's ``prev`` is the link hash of
    the row before it by size (:func:`~ledger.storage.base.checkpoint_link`), and
    meta records the latest of each, so that the audit notices a row removed
    anywhere in either sequence. Existing rows are linked as they stand; the
    append-only triggers are lifted for that one update, inside this
    transaction."""
    for table, head, link in (
        ("checkpoints", CHECKPOINTS_HEAD, _checkpoint_link),
        ("publications", PUBLICATIONS_HEAD, _publication_link),
    ):
        if d.has_column(conn, table, "prev"):
            continue
        lift, restore = d.suspend_append_only(table)
        _run(d, conn, [f"alter table {table} add column prev text", *lift])
        cols = "size, root, note, time" if table == "checkpoints" else "size, note, token, time"
        rows = conn.execute(d.sql(f"select {cols} from {table} order by size")).fetchall()  # noqa: S608
        prev = LINK_GENESIS
        for r in rows:
            conn.execute(d.sql(f"update {table} set prev = ? where size = ?"), (prev, r[0]))  # noqa: S608
            prev = link(prev, r)
        _run(d, conn, restore)
        if rows:
            conn.execute(
                d.sql(
                    "insert into meta values (?, ?) "
                    "on conflict (key) do update set value = excluded.value"
                ),
                (head, f"{rows[-1][0]} {prev}"),
            )


def _checkpoint_link(prev: str, r: Any) -> str:
    return checkpoint_link(prev, int(r[0]), bytes(r[1]), str(r[2]), str(r[3]))


def _publication_link(prev: str, r: Any) -> str:
    token = None if r[2] is None else bytes(r[2])
    return publication_link(prev, int(r[0]), str(r[1]), token, str(r[3]))


def _live_sessions(d: Dialect, conn: Any) -> None:
    """Interactive capture sessions (ledger.services.interactive) relayed
    through the database, so that every worker and host can serve the page of
    a session another process runs: one row per rights holder (the lease), the
    latest frame, and inputs waiting for the process that runs the browser."""
    if d.has_table(conn, "live_sessions"):
        return
    f, b, i = d.float_type, d.bytes_type, d.int64
    _run(
        d,
        conn,
        [
            "create table live_sessions (owner text primary key, session_id text not null, "
            f"holder text not null, expires {f} not null, beat {f} not null, seen {f} not null, "
            f"watched {f} not null, ending text, sent integer not null, "
            f"burst_at {f} not null, burst_n integer not null, state text not null, "
            "outcome text)",
            "create unique index live_sessions_id on live_sessions (session_id)",
            f"create table live_frames (session_id text primary key, seq {i} not null, "
            f"at text not null, jpeg {b} not null)",
            "create table live_inputs (session_id text not null, n integer not null, "
            "step text not null, primary key (session_id, n))",
        ],
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the log: events, private bodies, tiles, checkpoints", _log),
    Migration(2, "publications", _publications),
    Migration(3, "inline blobs", _blob_data),
    Migration(4, "capture jobs", _capture_jobs),
    Migration(5, "tiles.inner_nodes on both databases", _inner_nodes),
    Migration(6, "web console sessions", _sessions),
    Migration(7, "rate limit buckets", _rate_buckets),
    Migration(8, "checkpoints and publications linked by hash (prev), heads in meta", _chain),
    Migration(9, "account passwords; capture job schedule", _passwords_and_schedules),
    Migration(10, "timestamp renewal (RFC 4998 evidence records)", _renewals),
    Migration(11, "interactive capture sessions relayed between processes", _live_sessions),
)
LATEST = MIGRATIONS[-1].version


def migrate(d: Dialect, conn: Any, current: int) -> None:
    """Apply every migration above ``current``, in order."""
    for m in MIGRATIONS:
        if m.version > current:
            m.apply(d, conn)
