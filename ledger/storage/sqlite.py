"""SQLite backend (the embedded default): WAL, FULL sync, one writer at a time.

SQLite serialises writers itself: ``BEGIN IMMEDIATE`` takes the database's
write lock before the head is read, so indices stay contiguous and in commit
order even with several processes appending to one file. Every lock a
write asks for is that one lock.
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

from ledger.errors import IntegrityError, StorageError, StorageFull
from ledger.files import PRIVATE_FILE
from ledger.storage.base import FORMAT
from ledger.storage.search import SearchSql
from ledger.storage.sql import Dialect, SqlStore

__all__ = ["SqliteDialect", "SqliteStore"]


class SqliteDialect(Dialect):
    """One database file; a kernel file lock queues the writers."""

    kind = "sqlite"
    int64 = "integer"
    bytes_type = "blob"
    float_type = "real"
    epoch_now = "((julianday('now') - 2440587.5) * 86400.0)"
    # 'now' is one value for every use within one sqlite3_step().
    epoch_statement = epoch_now
    greatest = "max"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = "sqlite:///" + str(path.resolve())
        self._lock_path = Path(str(path) + ".writer-lock")
        self._local = threading.local()

    def conn(self) -> sqlite3.Connection:
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

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        fd = getattr(self._local, "lock_fd", None)
        if fd is not None:
            os.close(fd)
            self._local.lock_fd = None

    def sql(self, query: str) -> str:
        return query

    def _writer_lock(self) -> int:
        """This thread's descriptor of the writer lock file (see ``write``)."""
        fd: int | None = getattr(self._local, "lock_fd", None)
        if fd is None:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._local.lock_fd = fd
        return fd

    @contextmanager
    def write(self, conn: sqlite3.Connection, locks: Sequence[int]) -> Iterator[None]:
        # Writers queue on a kernel file lock before asking SQLite for its write
        # lock: SQLite's own busy handler polls with sleeps of up to 100 ms,
        # which lets one process starve another; flock wakes the next writer
        # as soon as the previous one commits.
        lock = self._writer_lock()
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                conn.execute("begin immediate")
                try:
                    yield
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
            except sqlite3.DatabaseError as e:
                raise _mapped(e) from e
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def snapshot(self, conn: sqlite3.Connection) -> Iterator[None]:
        # A deferred transaction in WAL mode reads one snapshot and blocks no writer.
        conn.execute("begin")
        try:
            yield
        finally:
            conn.rollback()

    def insert_rows(
        self,
        conn: sqlite3.Connection,
        table: str,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
    ) -> None:
        marks = ", ".join("?" * len(columns))
        conn.executemany(
            f"insert into {table} ({', '.join(columns)}) values ({marks})",  # noqa: S608
            rows,
        )

    def executemany(
        self, conn: sqlite3.Connection, query: str, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        conn.executemany(query, rows)

    def stream(
        self, conn: sqlite3.Connection, query: str, size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        cur = conn.execute(query)
        while chunk := cur.fetchmany(size):
            yield chunk

    def has_table(self, conn: sqlite3.Connection, name: str) -> bool:
        row = conn.execute(
            "select 1 from sqlite_master where type = 'table' and name = ?", (name,)
        ).fetchone()
        return row is not None

    def has_column(self, conn: sqlite3.Connection, table: str, column: str) -> bool:
        return any(r[1] == column for r in conn.execute(f"pragma table_info({table})"))

    def append_only(self, table: str) -> list[str]:
        return [
            f"create trigger if not exists {table}_no_{action} before {action} on {table} "
            f"begin select raise(abort, '{table} is append-only'); end"
            for action in ("update", "delete")
        ]

    def suspend_append_only(self, table: str) -> tuple[list[str], list[str]]:
        drop = [f"drop trigger if exists {table}_no_{a}" for a in ("update", "delete")]
        return drop, self.append_only(table)

    def storage_bytes(self, conn: sqlite3.Connection, tables: Sequence[str]) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total

    def search_ddl(self) -> list[str]:
        # FTS5 over the grams (ASCII tokens), rowid = the evidence's log index.
        # detail=none: queries are ANDs of single tokens, positions are not needed.
        return [
            "create virtual table evidence_search using fts5("
            "grams, norm unindexed, tokenize = 'ascii', detail = 'none')"
        ]

    def search_insert(self, conn: sqlite3.Connection, rows: Sequence[tuple[int, str, str]]) -> None:
        conn.executemany("insert into evidence_search (rowid, norm, grams) values (?, ?, ?)", rows)

    def title_search(self, tokens: Sequence[str]) -> SearchSql:
        if not tokens:
            return SearchSql(
                "evidence e join evidence_search s on s.rowid = e.idx",
                "1 = 1",
                (),
                "e.idx",
                "s.rowid",
            )
        # CROSS JOIN keeps the FTS5 table as the outer loop: it yields matches in
        # rowid (log) order, so a page stops after ``limit`` of them.
        match = " ".join(f'"{t}"' for t in tokens)
        return SearchSql(
            "evidence_search s cross join evidence e",
            "e.idx = s.rowid and s.evidence_search match ?",
            (match,),
            "s.rowid",
            "e.idx",
        )

    def error(self, e: Exception) -> Exception | None:
        return _mapped(e) if isinstance(e, sqlite3.DatabaseError) else None


def _mapped(e: sqlite3.DatabaseError) -> StorageError:
    """The ledger error for a SQLite error; SQLITE_FULL is a full disk (the
    transaction was rolled back: nothing of it is kept)."""
    if isinstance(e, sqlite3.IntegrityError):
        return IntegrityError(f"database: {e}")
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None and code & 0xFF == sqlite3.SQLITE_FULL:
        return StorageFull(f"database: the disk is full ({e}); nothing was written")
    return StorageError(f"database: {e}")


class SqliteStore(SqlStore):
    """Event store in one SQLite file."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        super().__init__(SqliteDialect(path))
        if create:
            if path.exists():
                raise StorageError(f"database: {path} already exists")
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created empty with mode 0600 before SQLite opens it: SQLite gives
            # the -wal and -shm files the database file's mode.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
            self._create()
        else:
            if not path.exists():
                raise StorageError(f"database: {path} does not exist")
            self._check_ours()
            self._open()

    def _check_ours(self) -> None:
        # Read-only, before the first connection switches the file to WAL: a
        # database that is not ours is refused without being modified.
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

    def backup_to(self, dest: Path) -> None:
        """Copy the database to ``dest`` consistently while writers go on.

        SQLite's online backup API, in one step: the copy is one read snapshot
        (WAL mode: writers are not blocked, and a backup taken in several
        steps would restart whenever another process writes).
        """
        try:
            src = sqlite3.connect(self.path, timeout=60.0)
            try:
                dst = sqlite3.connect(dest)
                try:
                    src.backup(dst)
                finally:
                    dst.close()
            finally:
                src.close()
        except sqlite3.DatabaseError as e:
            raise StorageError(f"database: backup of {self.path} failed ({e})") from e

    def checkpoint_wal(self) -> None:
        """Fold the write-ahead log into the database file (for size figures)."""
        self.d.conn().execute("pragma wal_checkpoint(truncate)")
