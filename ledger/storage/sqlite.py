"""SQLite backend (the embedded default): WAL, FULL sync, one writer at a time.

SQLite serialises writers itself: ``BEGIN IMMEDIATE`` takes the database's
write lock before the head is read, so indices stay contiguous and in commit
order even with several processes appending to one file.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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

__all__ = ["SqliteStore"]

_SET_SIGNATURE = (
    "insert into meta values ('projections', ?) "
    "on conflict (key) do update set value = excluded.value"
)
_LOG_TABLES = ("events", "private", "checkpoints", "publications")

_SCHEMA = """
create table if not exists meta (key text primary key, value text not null);
create table if not exists events (
    idx integer primary key, type text not null, time text not null,
    leaf blob not null, leaf_hash blob not null);
create table if not exists private (
    idx integer primary key, salt blob not null, body blob not null);
create table if not exists tiles (
    level integer not null, idx integer not null, width integer not null,
    hashes blob not null, inner blob not null, primary key (level, idx));
create table if not exists checkpoints (
    size integer primary key, root blob not null, note text not null, time text not null);
"""
# Content of small file deposits, written with their events (ledger.blobs).
_BLOB_DATA = "create table if not exists blob_data (sha256 text primary key, data blob not null)"
_SCHEMA += _BLOB_DATA + ";\n"
_PUBLICATIONS = (
    "create table if not exists publications ("
    "size integer primary key, note text not null, "
    "token blob, time text not null)"
)
_SCHEMA += _PUBLICATIONS + ";\n"
_SELECT_PUB = (
    "select p.size, c.root, p.note, p.time, p.token from publications p "
    "join checkpoints c on c.size = p.size"
)


def _append_only_triggers() -> list[str]:
    out = []
    for t in _LOG_TABLES:
        for action in ("update", "delete"):
            out.append(
                f"create trigger if not exists {t}_no_{action} before {action} on {t} "
                f"begin select raise(abort, '{t} is append-only'); end"
            )
    return out


def _projection_ddl() -> list[str]:
    out = []
    for table, cols in PROJECTIONS.items():
        body = ", ".join(f"{name} {decl.replace('bigint', 'integer')}" for name, decl in cols)
        out.append(f"create table if not exists {table} ({body})")
    out.extend(index_ddl())
    return out


class SqliteStore(Store):
    """Event store in one SQLite file."""

    kind = "sqlite"

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        self.url = "sqlite:///" + str(path.resolve())
        self._lock_path = Path(str(path) + ".writer-lock")
        self._local = threading.local()
        if create:
            if path.exists():
                raise StorageError(f"database: {path} already exists")
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._conn()
            with self._write(conn):
                for stmt in [*_SCHEMA.split(";"), *_append_only_triggers(), *_projection_ddl()]:
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute("insert into meta values ('format', ?)", (FORMAT,))
                conn.execute(_SET_SIGNATURE, (projections_signature(),))
        else:
            if not path.exists():
                raise StorageError(f"database: {path} does not exist")
            self._check_ours()
            self._add_publications()
            self._add_blob_data()
            if self.get_meta("projections") != projections_signature():
                self.rebuild()

    # -- connections -----------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=60.0)
                conn.execute("pragma journal_mode=wal")
                conn.execute("pragma synchronous=full")
                conn.execute("pragma busy_timeout=60000")
                # Projection indexes (digests) take random inserts: keep them in memory.
                conn.execute("pragma cache_size=-131072")
                # Fold the WAL back every ~80 MB rather than every 4 MB: fewer
                # checkpoints (each an fsync of the main file) under bulk deposits.
                conn.execute("pragma wal_autocheckpoint=20000")
            except sqlite3.DatabaseError as e:
                raise StorageError(f"database: {self.path} is not a SQLite database ({e})") from e
            self._local.conn = conn
        return conn

    def _check_ours(self) -> None:
        # Read-only, before _conn() switches the file to WAL: a database that is
        # not ours is refused without being modified.
        try:
            ro = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, timeout=60.0)
            try:
                row = ro.execute("select value from meta where key='format'").fetchone()
            finally:
                ro.close()
        except sqlite3.DatabaseError as e:
            raise StorageError(f"database: {self.path} is not an evidence ledger ({e})") from e
        if row is None or row[0] != FORMAT:
            raise StorageError(f"database: {self.path} is not an evidence ledger ({FORMAT})")

    def _add_publications(self) -> None:
        """Databases made before anchoring lack ``publications``: add it, with
        every existing checkpoint published (it was, when it was sealed)."""
        conn = self._conn()
        has = "select 1 from sqlite_master where type = 'table' and name = 'publications'"
        if conn.execute(has).fetchone() is not None:
            return
        with self._write(conn):
            if conn.execute(has).fetchone() is not None:
                return
            conn.execute(_PUBLICATIONS)
            for stmt in _append_only_triggers():
                conn.execute(stmt)
            conn.execute("insert into publications select size, note, null, time from checkpoints")

    def _writer_lock(self) -> int:
        """This thread's descriptor of the writer lock file (see ``_write``)."""
        fd: int | None = getattr(self._local, "lock_fd", None)
        if fd is None:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._local.lock_fd = fd
        return fd

    @contextmanager
    def _write(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        # Writers queue on a kernel file lock before asking SQLite for its write
        # lock: SQLite's own busy handler polls with sleeps of up to 100 ms,
        # which lets one process starve another; flock wakes the next writer
        # as soon as the previous one commits.
        lock = self._writer_lock()
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with self._sqlite_write(conn) as c:
                yield c
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def _sqlite_write(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        try:
            conn.execute("begin immediate")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        except sqlite3.IntegrityError as e:
            raise IntegrityError(f"database: {e}") from e
        except sqlite3.DatabaseError as e:
            raise StorageError(f"database: {e}") from e

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        fd = getattr(self._local, "lock_fd", None)
        if fd is not None:
            os.close(fd)
            self._local.lock_fd = None

    def get_meta(self, key: str) -> str | None:
        row = self._conn().execute("select value from meta where key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- the log ---------------------------------------------------------
    def append(self, drafts: Sequence[Draft]) -> list[Appended]:
        if not drafts:
            return []
        conn = self._conn()
        with self._write(conn):
            head = conn.execute(
                "select idx, leaf_hash, time from events order by idx desc limit 1"
            ).fetchone()
            if head is None:
                rows = build_rows(drafts, 0, None, "")
            else:
                rows = build_rows(drafts, head[0] + 1, head[1], head[2])
            self._insert(conn, rows)
        return rows.appended

    def _insert(self, conn: sqlite3.Connection, rows: Rows) -> None:
        conn.executemany("insert into events values (?,?,?,?,?)", rows.events)
        conn.executemany("insert into private values (?,?,?)", rows.private)
        if rows.blobs:
            conn.executemany("insert or ignore into blob_data values (?,?)", rows.blobs)
        self._apply(conn, rows.ops)

    @staticmethod
    def _apply(conn: sqlite3.Connection, ops: Sequence[Any]) -> None:
        for batch in op_batches(ops):
            if isinstance(batch, Update):
                sets = ", ".join(f"{k} = ?" for k in batch.values)
                guard = f" and {batch.if_null} is null" if batch.if_null else ""
                conn.execute(
                    f"update {batch.table} set {sets} where {batch.key} = ?{guard}",  # noqa: S608
                    (*batch.values.values(), batch.key_value),
                )
            else:
                table, rows = batch
                marks = ",".join("?" * len(insert_columns(table)))
                conn.executemany(f"insert into {table} values ({marks})", rows)  # noqa: S608

    def size(self) -> int:
        row = self._conn().execute("select max(idx) from events").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def inline_blob(self, sha256: str) -> bytes | None:
        row = (
            self._conn()
            .execute("select data from blob_data where sha256 = ?", (sha256,))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def _add_blob_data(self) -> None:
        """Databases made before inline blobs lack ``blob_data``: add it."""
        has = "select 1 from sqlite_master where type = 'table' and name = 'blob_data'"
        conn = self._conn()
        if conn.execute(has).fetchone() is None:
            with self._write(conn):
                conn.execute(_BLOB_DATA)

    def entries(self, start: int, end: int) -> list[tuple[int, str, str, bytes, bytes]]:
        cur = self._conn().execute(
            "select idx, type, time, leaf, leaf_hash from events where idx >= ? and idx < ? "
            "order by idx",
            (start, end),
        )
        return list(cur)

    def privates(self, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        cur = self._conn().execute(
            "select idx, salt, body from private where idx >= ? and idx < ? order by idx",
            (start, end),
        )
        return list(cur)

    # -- tree ------------------------------------------------------------
    def tiles(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], TileRow]:
        return _read_tiles(self._conn(), keys)

    def all_tiles(self) -> Iterator[TileRow]:
        cur = self._conn().execute(
            "select level, idx, width, hashes, inner from tiles order by level, idx"
        )
        for r in cur:
            yield TileRow(*r)

    def latest_checkpoint(self) -> CheckpointRow | None:
        row = (
            self._conn()
            .execute("select size, root, note, time from checkpoints order by size desc limit 1")
            .fetchone()
        )
        return None if row is None else CheckpointRow(*row)

    def checkpoint(self, size: int) -> CheckpointRow | None:
        row = (
            self._conn()
            .execute("select size, root, note, time from checkpoints where size = ?", (size,))
            .fetchone()
        )
        return None if row is None else CheckpointRow(*row)

    def checkpoints(self) -> list[CheckpointRow]:
        cur = self._conn().execute("select size, root, note, time from checkpoints order by size")
        return [CheckpointRow(*r) for r in cur]

    def publish(self, pub: Publication) -> bool:
        conn = self._conn()
        with self._write(conn):
            cur = conn.execute(
                "insert into publications values (?,?,?,?) on conflict (size) do nothing",
                (pub.size, pub.note, pub.token, pub.time),
            )
            return cur.rowcount == 1

    def latest_publication(self) -> Publication | None:
        row = self._conn().execute(_SELECT_PUB + " order by p.size desc limit 1").fetchone()
        return None if row is None else Publication(*row)

    def publication(self, size: int) -> Publication | None:
        row = self._conn().execute(_SELECT_PUB + " where p.size = ?", (size,)).fetchone()
        return None if row is None else Publication(*row)

    def publications(self) -> list[Publication]:
        return [Publication(*r) for r in self._conn().execute(_SELECT_PUB + " order by p.size")]

    @contextmanager
    def sealing(self) -> Iterator[_SqliteSealTxn]:
        conn = self._conn()
        with self._write(conn):
            yield _SqliteSealTxn(conn)

    @contextmanager
    def snapshot(self) -> Iterator[_SqliteSealTxn]:
        # A deferred transaction in WAL mode reads one snapshot and blocks no writer.
        conn = self._conn()
        conn.execute("begin")
        try:
            yield _SqliteSealTxn(conn)
        finally:
            conn.rollback()

    # -- projections -----------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self._conn().execute(sql, tuple(params))
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        conn = self._conn()
        with self._write(conn):
            return conn.execute(sql, tuple(params)).rowcount

    def rebuild(self) -> int:
        conn = self._conn()
        count = 0
        with self._write(conn):
            for table in PROJECTIONS:
                conn.execute(f"drop table if exists {table}")
            for stmt in _projection_ddl():
                conn.execute(stmt)
            cur = conn.execute(
                "select e.idx, e.type, e.time, e.leaf, p.salt, p.body "
                "from events e join private p on p.idx = e.idx order by e.idx"
            )
            while chunk := cur.fetchmany(10000):
                self._apply(conn, list(replay_ops(iter(chunk))))
                count += len(chunk)
            conn.execute(_SET_SIGNATURE, (projections_signature(),))
        return count

    def dump_projections(self) -> dict[str, list[tuple[Any, ...]]]:
        conn = self._conn()
        return {
            t: sorted(conn.execute(f"select * from {t}"), key=repr)  # noqa: S608
            for t in PROJECTIONS
        }

    def checkpoint_wal(self) -> None:
        """Fold the write-ahead log into the database file (for size figures)."""
        self._conn().execute("pragma wal_checkpoint(truncate)")

    def storage_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total


def _read_tiles(
    conn: sqlite3.Connection, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], TileRow]:
    out: dict[tuple[int, int], TileRow] = {}
    for level, idx in keys:
        r = conn.execute(
            "select level, idx, width, hashes, inner from tiles where level = ? and idx = ?",
            (level, idx),
        ).fetchone()
        if r is not None:
            out[(level, idx)] = TileRow(*r)
    return out


class _SqliteSealTxn:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def size(self) -> int:
        row = self._c.execute("select max(idx) from events").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def latest_checkpoint(self) -> CheckpointRow | None:
        row = self._c.execute(
            "select size, root, note, time from checkpoints order by size desc limit 1"
        ).fetchone()
        return None if row is None else CheckpointRow(*row)

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        cur = self._c.execute(
            "select leaf_hash from events where idx >= ? and idx < ? order by idx", (start, end)
        )
        return [r[0] for r in cur]

    def tiles(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], TileRow]:
        return _read_tiles(self._c, keys)

    def put_tiles(self, rows: Sequence[TileRow]) -> None:
        self._c.executemany(
            "insert into tiles values (?,?,?,?,?) on conflict (level, idx) do update set "
            "width = excluded.width, hashes = excluded.hashes, inner = excluded.inner",
            [(t.level, t.index, t.width, t.hashes, t.inner) for t in rows],
        )

    def add_checkpoint(self, row: CheckpointRow) -> None:
        self._c.execute(
            "insert into checkpoints values (?,?,?,?)", (row.size, row.root, row.note, row.time)
        )

    def publish(self, pub: Publication) -> None:
        self._c.execute(
            "insert into publications values (?,?,?,?)", (pub.size, pub.note, pub.token, pub.time)
        )
