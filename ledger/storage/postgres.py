"""PostgreSQL backend: many API processes and hosts against one database.

Sequencing: every append transaction first takes a transaction-scoped
advisory lock (``pg_advisory_xact_lock``), then reads the head and inserts.
The lock is held until COMMIT, so the next appender only reads the head after
the previous group is committed: indices are contiguous and commit order is
index order, across any number of connections and hosts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from ledger.errors import IntegrityError, StorageError
from ledger.events import Draft
from ledger.projections import PROJECTIONS, Update, index_ddl, projections_signature
from ledger.storage.base import (
    FORMAT,
    Appended,
    CheckpointRow,
    Publication,
    Rows,
    Store,
    TileRow,
    build_rows,
    insert_columns,
    op_batches,
    replay_ops,
)

__all__ = ["PostgresStore"]

_SEQUENCE_LOCK = 0x6C6F67  # advisory lock ids: 'log' for appends
_SEAL_LOCK = 0x7365616C  # and 'seal' for the sealer
_SET_SIGNATURE = (
    "insert into meta values ('projections', %s) "
    "on conflict (key) do update set value = excluded.value"
)
_LOG_TABLES = ("events", "private", "checkpoints", "publications")
_PUBLICATIONS = (
    "create table publications (size bigint primary key, "
    "note text not null, token bytea, time text not null)"
)
_SELECT_PUB = (
    "select p.size, c.root, p.note, p.time, p.token from publications p "
    "join checkpoints c on c.size = p.size"
)

# Content of small file deposits, written with their events (ledger.blobs).
_BLOB_DATA = "create table if not exists blob_data (sha256 text primary key, data bytea not null)"

_SCHEMA = [
    "create table meta (key text primary key, value text not null)",
    "create table events (idx bigint primary key, type text not null, time text not null, "
    "leaf bytea not null, leaf_hash bytea not null)",
    "create table private (idx bigint primary key, salt bytea not null, body bytea not null)",
    "create table tiles (level integer not null, idx bigint not null, width integer not null, "
    "hashes bytea not null, inner_nodes bytea not null, primary key (level, idx))",
    "create table checkpoints (size bigint primary key, root bytea not null, "
    "note text not null, time text not null)",
    _PUBLICATIONS,
    _BLOB_DATA,
    """create or replace function ledger_append_only() returns trigger language plpgsql as $$
       begin raise exception '% is append-only', tg_table_name; end $$""",
]


def _triggers(tables: Sequence[str] = _LOG_TABLES) -> list[str]:
    out = []
    for t in tables:
        out.append(
            f"create trigger {t}_append_only before update or delete on {t} "
            "for each row execute function ledger_append_only()"
        )
        out.append(
            f"create trigger {t}_no_truncate before truncate on {t} "
            "for each statement execute function ledger_append_only()"
        )
    return out


def _projection_ddl() -> list[str]:
    out = []
    for table, cols in PROJECTIONS.items():
        body = ", ".join(f"{name} {decl}" for name, decl in cols)
        out.append(f"create table {table} ({body})")
    out.extend(index_ddl())
    return out


def _portable(query: str) -> str:
    return query.replace("?", "%s")


class PostgresStore(Store):
    """Event store in a PostgreSQL database (schema from the URL's search_path)."""

    kind = "postgresql"

    def __init__(self, url: str, *, create: bool = False) -> None:
        self.url = url
        self._local = threading.local()
        conn = self._conn()
        if create:
            try:
                with conn.transaction():
                    for stmt in [*_SCHEMA, *_triggers(), *_projection_ddl()]:
                        conn.execute(stmt.encode())
                    conn.execute("insert into meta values ('format', %s)", (FORMAT,))
                    conn.execute(_SET_SIGNATURE, (projections_signature(),))
            except psycopg.errors.DuplicateTable as e:
                raise StorageError("database: a ledger already exists in this database") from e
            except psycopg.Error as e:
                raise StorageError(f"database: cannot create the ledger ({e})") from e
        else:
            try:
                row = conn.execute("select value from meta where key = 'format'").fetchone()
            except psycopg.Error as e:
                raise StorageError("database: not an evidence ledger (no meta table)") from e
            if row is None or row[0] != FORMAT:
                raise StorageError(f"database: not an evidence ledger ({FORMAT})")
            self._add_publications()
            self._add_blob_data()
            if self.get_meta("projections") != projections_signature():
                self.rebuild()

    def _add_publications(self) -> None:
        """Databases made before anchoring lack ``publications``: add it, with
        every existing checkpoint published (it was, when it was sealed)."""
        has = "select to_regclass('publications') is not null"
        row = self._conn().execute(has).fetchone()
        if row is not None and row[0]:
            return
        with self._write(_SEAL_LOCK) as conn:
            row = conn.execute(has).fetchone()
            if row is not None and row[0]:
                return
            for stmt in [_PUBLICATIONS, *_triggers(["publications"])]:
                conn.execute(stmt.encode())
            conn.execute("insert into publications select size, note, null, time from checkpoints")

    def _conn(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            try:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            except psycopg.Error as e:
                raise StorageError(f"database: cannot connect ({e})") from e
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self, lock: int) -> Iterator[psycopg.Connection[Any]]:
        conn = self._conn()
        try:
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(%s)", (lock,))
                yield conn
        except psycopg.errors.IntegrityError as e:
            raise IntegrityError(f"database: {e}") from e
        except psycopg.Error as e:
            raise StorageError(f"database: {e}") from e

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def get_meta(self, key: str) -> str | None:
        row = self._conn().execute("select value from meta where key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- the log ---------------------------------------------------------
    def append(self, drafts: Sequence[Draft]) -> list[Appended]:
        if not drafts:
            return []
        with self._write(_SEQUENCE_LOCK) as conn:
            head = conn.execute(
                "select idx, leaf_hash, time from events order by idx desc limit 1"
            ).fetchone()
            if head is None:
                rows = build_rows(drafts, 0, None, "")
            else:
                rows = build_rows(drafts, head[0] + 1, bytes(head[1]), head[2])
            self._insert(conn, rows)
        return rows.appended

    def _insert(self, conn: psycopg.Connection[Any], rows: Rows) -> None:
        with conn.cursor() as cur:
            with cur.copy("copy events (idx, type, time, leaf, leaf_hash) from stdin") as cp:
                for e in rows.events:
                    cp.write_row(e)
            with cur.copy("copy private (idx, salt, body) from stdin") as cp:
                for p in rows.private:
                    cp.write_row(p)
            if rows.blobs:
                cur.executemany(
                    "insert into blob_data values (%s, %s) on conflict do nothing", rows.blobs
                )
        self._apply(conn, rows.ops)

    @staticmethod
    def _apply(conn: psycopg.Connection[Any], ops: Sequence[Any]) -> None:
        with conn.cursor() as cur:
            for batch in op_batches(ops):
                if isinstance(batch, Update):
                    sets = sql.SQL(", ").join(
                        sql.SQL("{} = %s").format(sql.Identifier(k)) for k in batch.values
                    )
                    guard: sql.Composable = sql.SQL("")
                    if batch.if_null:
                        guard = sql.SQL(" and {} is null").format(sql.Identifier(batch.if_null))
                    cur.execute(
                        sql.SQL("update {} set {} where {} = %s{}").format(
                            sql.Identifier(batch.table), sets, sql.Identifier(batch.key), guard
                        ),
                        (*batch.values.values(), batch.key_value),
                    )
                else:
                    table, rows = batch
                    cols = sql.SQL(", ").join(map(sql.Identifier, insert_columns(table)))
                    stmt = sql.SQL("copy {} ({}) from stdin").format(sql.Identifier(table), cols)
                    with cur.copy(stmt) as cp:
                        for r in rows:
                            cp.write_row(r)

    def size(self) -> int:
        row = self._conn().execute("select max(idx) from events").fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def inline_blob(self, sha256: str) -> bytes | None:
        row = (
            self._conn()
            .execute("select data from blob_data where sha256 = %s", (sha256,))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def _add_blob_data(self) -> None:
        """Databases made before inline blobs lack ``blob_data``: add it."""
        row = self._conn().execute("select to_regclass('blob_data') is not null").fetchone()
        if row is None or not row[0]:
            with self._write(_SEAL_LOCK) as conn:
                conn.execute(_BLOB_DATA.encode())

    def entries(self, start: int, end: int) -> list[tuple[int, str, str, bytes, bytes]]:
        cur = self._conn().execute(
            "select idx, type, time, leaf, leaf_hash from events "
            "where idx >= %s and idx < %s order by idx",
            (start, end),
        )
        return [(r[0], r[1], r[2], bytes(r[3]), bytes(r[4])) for r in cur]

    def privates(self, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        rows = self._conn().execute(
            "select idx, salt, body from private where idx >= %s and idx < %s order by idx",
            (start, end),
        )
        return [(r[0], bytes(r[1]), bytes(r[2])) for r in rows]

    # -- tree ------------------------------------------------------------
    def tiles(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], TileRow]:
        return _read_tiles(self._conn(), keys)

    def all_tiles(self) -> Iterator[TileRow]:
        cur = self._conn().execute(
            "select level, idx, width, hashes, inner_nodes from tiles order by level, idx"
        )
        for r in cur:
            yield TileRow(r[0], r[1], r[2], bytes(r[3]), bytes(r[4]))

    def latest_checkpoint(self) -> CheckpointRow | None:
        return _latest(self._conn())

    def checkpoint(self, size: int) -> CheckpointRow | None:
        r = (
            self._conn()
            .execute("select size, root, note, time from checkpoints where size = %s", (size,))
            .fetchone()
        )
        return None if r is None else CheckpointRow(r[0], bytes(r[1]), r[2], r[3])

    def checkpoints(self) -> list[CheckpointRow]:
        cur = self._conn().execute("select size, root, note, time from checkpoints order by size")
        return [CheckpointRow(r[0], bytes(r[1]), r[2], r[3]) for r in cur]

    def publish(self, pub: Publication) -> bool:
        with self._write(_SEAL_LOCK) as conn:
            cur = conn.execute(
                "insert into publications values (%s, %s, %s, %s) on conflict (size) do nothing",
                (pub.size, pub.note, pub.token, pub.time),
            )
            return cur.rowcount == 1

    def latest_publication(self) -> Publication | None:
        r = self._conn().execute(_SELECT_PUB + " order by p.size desc limit 1").fetchone()
        return None if r is None else _publication(r)

    def publication(self, size: int) -> Publication | None:
        r = self._conn().execute(_SELECT_PUB + " where p.size = %s", (size,)).fetchone()
        return None if r is None else _publication(r)

    def publications(self) -> list[Publication]:
        return [_publication(r) for r in self._conn().execute(_SELECT_PUB + " order by p.size")]

    @contextmanager
    def sealing(self) -> Iterator[_PgSealTxn]:
        with self._write(_SEAL_LOCK) as conn:
            yield _PgSealTxn(conn)

    @contextmanager
    def snapshot(self) -> Iterator[_PgSealTxn]:
        conn = self._conn()
        try:
            with conn.transaction():
                conn.execute("set transaction isolation level repeatable read, read only")
                yield _PgSealTxn(conn)
        except psycopg.Error as e:
            raise StorageError(f"database: {e}") from e

    # -- projections -----------------------------------------------------
    def query(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self._conn().execute(_portable(query).encode(), tuple(params))
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur]

    def execute(self, query: str, params: Sequence[Any] = ()) -> int:
        conn = self._conn()
        try:
            with conn.transaction():
                return conn.execute(_portable(query).encode(), tuple(params)).rowcount
        except psycopg.errors.IntegrityError as e:
            raise IntegrityError(f"database: {e}") from e
        except psycopg.Error as e:
            raise StorageError(f"database: {e}") from e

    def rebuild(self) -> int:
        count = 0
        # The sequencing lock keeps appends out while the tables are replaced.
        with self._write(_SEQUENCE_LOCK) as conn:
            for table in PROJECTIONS:
                conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(table)))
            for stmt in _projection_ddl():
                conn.execute(stmt.encode())
            with conn.cursor(name="replay") as cur:
                cur.execute(
                    "select e.idx, e.type, e.time, e.leaf, p.salt, p.body "
                    "from events e join private p on p.idx = e.idx order by e.idx"
                )
                while chunk := cur.fetchmany(10000):
                    rows = [(a, b, c, bytes(d), bytes(e), bytes(f)) for a, b, c, d, e, f in chunk]
                    self._apply(conn, list(replay_ops(iter(rows))))
                    count += len(chunk)
            conn.execute(_SET_SIGNATURE, (projections_signature(),))
        return count

    def dump_projections(self) -> dict[str, list[tuple[Any, ...]]]:
        conn = self._conn()
        return {
            t: sorted(
                (
                    tuple(r)
                    for r in conn.execute(sql.SQL("select * from {}").format(sql.Identifier(t)))
                ),
                key=repr,
            )
            for t in PROJECTIONS
        }

    def storage_bytes(self) -> int:
        total = 0
        for t in ("events", "private", "tiles", "checkpoints", "publications", *PROJECTIONS):
            row = (
                self._conn().execute("select pg_total_relation_size(%s::regclass)", (t,)).fetchone()
            )
            total += int(row[0]) if row else 0
        return total


def _latest(conn: psycopg.Connection[Any]) -> CheckpointRow | None:
    r = conn.execute(
        "select size, root, note, time from checkpoints order by size desc limit 1"
    ).fetchone()
    return None if r is None else CheckpointRow(r[0], bytes(r[1]), r[2], r[3])


def _publication(r: Sequence[Any]) -> Publication:
    return Publication(r[0], bytes(r[1]), r[2], r[3], None if r[4] is None else bytes(r[4]))


def _read_tiles(
    conn: psycopg.Connection[Any], keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], TileRow]:
    out: dict[tuple[int, int], TileRow] = {}
    for level, idx in keys:
        r = conn.execute(
            "select level, idx, width, hashes, inner_nodes from tiles "
            "where level = %s and idx = %s",
            (level, idx),
        ).fetchone()
        if r is not None:
            out[(level, idx)] = TileRow(r[0], r[1], r[2], bytes(r[3]), bytes(r[4]))
    return out


class _PgSealTxn:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._c = conn

    def size(self) -> int:
        row = self._c.execute("select max(idx) from events").fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def latest_checkpoint(self) -> CheckpointRow | None:
        return _latest(self._c)

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        cur = self._c.execute(
            "select leaf_hash from events where idx >= %s and idx < %s order by idx", (start, end)
        )
        return [bytes(r[0]) for r in cur]

    def tiles(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], TileRow]:
        return _read_tiles(self._c, keys)

    def put_tiles(self, rows: Sequence[TileRow]) -> None:
        with self._c.cursor() as cur:
            cur.executemany(
                "insert into tiles values (%s, %s, %s, %s, %s) on conflict (level, idx) do update "
                "set width = excluded.width, hashes = excluded.hashes, "
                "inner_nodes = excluded.inner_nodes",
                [(t.level, t.index, t.width, t.hashes, t.inner) for t in rows],
            )

    def add_checkpoint(self, row: CheckpointRow) -> None:
        self._c.execute(
            "insert into checkpoints values (%s, %s, %s, %s)",
            (row.size, row.root, row.note, row.time),
        )

    def publish(self, pub: Publication) -> None:
        self._c.execute(
            "insert into publications values (%s, %s, %s, %s)",
            (pub.size, pub.note, pub.token, pub.time),
        )
