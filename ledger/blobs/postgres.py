"""PostgreSQL blob store (the default with a PostgreSQL ledger): chunked rows.

Every host of a deployment reads and writes the same blobs through the
database, so any host can serve any file. Three tables:

- ``blob_uploads``: one row per write in progress (``touched_at`` moves on
  with every chunk, so the sweep can tell a stalled upload from a slow one);
- ``blob_chunks``: the bytes, ``block_size`` (1 MiB) per row, keyed by upload
  and sequence number, stored uncompressed (``storage external``: evidence
  files are mostly compressed already, and compressing costs throughput);
- ``blobs``: one row per committed blob, naming the upload that holds its
  chunks;
- ``blob_pins``: one row per blob a deposit in flight needs (see
  :class:`~ledger.blobs.base.BlobHold`). Pinning and discarding an address
  take the same transaction-scoped advisory lock, keyed by the address, so
  a discard either sees the pin or runs wholly before it; the lock and the
  rows are in the database every host shares.

Chunks are written and read one row per statement, so memory stays constant
whatever the size. Committing is one transaction: insert the ``blobs`` row
(``on conflict do nothing``: when two writers store the same content the
second one's chunks are deleted) and delete the upload row. Chunk inserts
commit without waiting for the WAL flush (``synchronous_commit = off``); the
commit of the ``blobs`` row waits for it, and the WAL is flushed in order,
so a committed blob's chunks are durable with it.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, BinaryIO

import psycopg

from ledger.blobs.base import BlobInfo, BlobStore, Referenced, Staging, check_address
from ledger.errors import StorageError
from ledger.storage.postgres import pg_error

__all__ = ["SCHEMA", "PgBlobStore"]

BLOCK = 1 << 20
_SCHEMA_LOCK = 0x626C6F62  # advisory lock id: 'blob'
_PIN_LOCK = 0x70696E  # with hashtext(sha256), the two-key advisory lock of an address: 'pin'
_IO = ThreadPoolExecutor(max_workers=8, thread_name_prefix="blob-io")
"""Inserts and reads ahead of the streams (each stream has at most one in flight)."""

SCHEMA = [
    "create table if not exists blob_uploads (upload_id bigserial primary key, "
    "touched_at timestamptz not null default now())",
    "create table if not exists blob_chunks (upload_id bigint not null, seq integer not null, "
    "data bytea not null, primary key (upload_id, seq))",
    "alter table blob_chunks alter column data set storage external",
    "create table if not exists blobs (sha256 text primary key, upload_id bigint not null unique, "
    "sm3 text not null, size bigint not null, chunks integer not null, "
    "stored_at timestamptz not null default now())",
    "create table if not exists blob_pins (pin_id bigserial primary key, sha256 text not null, "
    "pinned_at timestamptz not null default now())",
    "create index if not exists blob_pins_sha256 on blob_pins (sha256)",
]


class _Pool:
    """A few autocommit connections, lent for one statement or transaction at a time.

    A blob write or read spans many requests' worth of thread hops, so it
    cannot keep a thread's connection; it borrows one per chunk instead.
    """

    def __init__(self, url: str, keep: int = 8) -> None:
        self._url = url
        self._keep = keep
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
            conn.execute("set synchronous_commit = off")
        except psycopg.Error as e:
            raise StorageError(f"blobs: cannot connect to the database ({e})") from e
        return conn

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._connect()
        try:
            yield conn
        except psycopg.Error as e:
            conn.close()
            raise pg_error(e, "blobs") from e
        except BaseException:
            conn.close()
            raise
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with self._lock:
            if idle and len(self._idle) < self._keep:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _RowStaging(Staging):
    """Chunk rows under an upload id that no reader knows yet.

    One insert is in flight on a helper thread while the caller hashes and
    parses the next block, so the database round trip overlaps the work of
    the stream (at most two blocks in memory).
    """

    def __init__(self, store: PgBlobStore) -> None:
        self._pool = store._pool
        self._id: int | None = None
        self._seq = 0
        self._pending: Future[None] | None = None

    def _upload_id(self, conn: psycopg.Connection[Any]) -> int:
        if self._id is None:
            row = conn.execute(
                "insert into blob_uploads default values returning upload_id"
            ).fetchone()
            assert row is not None
            self._id = int(row[0])
        return self._id

    def _insert(self, seq: int, block: bytes | memoryview) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "with t as (update blob_uploads set touched_at = now() where upload_id = %(u)s) "
                "insert into blob_chunks (upload_id, seq, data) values (%(u)s, %(s)s, %(d)s)",
                {"u": self._upload_id(conn), "s": seq, "d": block},
            )

    def _settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def write(self, block: bytes | memoryview) -> None:
        self._settle()
        if self._id is None:  # the first insert creates the upload row, on this thread
            self._insert(self._seq, block)
        else:
            self._pending = _IO.submit(self._insert, self._seq, block)
        self._seq += 1

    def commit(self, info: BlobInfo) -> None:
        self._settle()
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("set local synchronous_commit = on")
            uid = self._upload_id(conn)
            gone = conn.execute("delete from blob_uploads where upload_id = %s", (uid,))
            if gone.rowcount != 1:
                raise StorageError("blobs: the upload was swept as stalled; send it again")
            added = conn.execute(
                "insert into blobs (sha256, upload_id, sm3, size, chunks) "
                "values (%s, %s, %s, %s, %s) on conflict (sha256) do nothing",
                (info.sha256, uid, info.sm3, info.size, self._seq),
            )
            if added.rowcount == 0:  # already stored: keep that copy
                conn.execute("delete from blob_chunks where upload_id = %s", (uid,))
        self._id = None

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._settle()
        uid, self._id = self._id, None
        if uid is None:
            return
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("delete from blob_chunks where upload_id = %s", (uid,))
                conn.execute("delete from blob_uploads where upload_id = %s", (uid,))
        except StorageError:
            pass  # the database is away: the sweep removes the upload later


class _ChunkReader(io.RawIOBase):
    """Raw reads over a blob's chunks, fetched one at a time (wrap it in a
    :class:`io.BufferedReader`)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while self._pos >= len(self._buf):
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._buf, self._pos = nxt, 0
        with memoryview(b) as view:
            n = min(len(view), len(self._buf) - self._pos)
            view[:n] = self._buf[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        self._buf = b""
        super().close()


class PgBlobStore(BlobStore):
    """Blobs as 1 MiB rows in the ledger's PostgreSQL database."""

    kind = "postgresql"
    block_size = BLOCK

    def __init__(self, url: str, inline: Callable[[str], bytes | None] | None = None) -> None:
        super().__init__(inline)
        self._pool = _Pool(url)
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        with self._pool.connection() as conn:
            # The last table of SCHEMA: a store made before it existed gets it too.
            row = conn.execute("select to_regclass('blob_pins') is not null").fetchone()
            if row is not None and row[0]:
                return
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for stmt in SCHEMA:
                    conn.execute(stmt.encode())

    def close(self) -> None:
        self._pool.close()

    def _stage(self) -> Staging:
        return _RowStaging(self)

    def _row(self, sha256: str) -> tuple[int, int] | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "select upload_id, chunks from blobs where sha256 = %s", (sha256,)
            ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def _chunk(self, sha256: str, upload_id: int, seq: int) -> bytes:
        with self._pool.connection() as conn:
            row = conn.execute(
                "select data from blob_chunks where upload_id = %s and seq = %s",
                (upload_id, seq),
                binary=True,
            ).fetchone()
        if row is None:
            raise StorageError(f"blobs: {sha256} lacks chunk {seq} (deleted while read?)")
        return bytes(row[0])

    def _chunks(self, sha256: str, upload_id: int, count: int) -> Iterator[bytes]:
        """The chunks in order, the next one fetched while the caller uses this one."""
        ahead: Future[bytes] | None = None
        for seq in range(count):
            chunk = ahead.result() if ahead is not None else self._chunk(sha256, upload_id, seq)
            ahead = None
            if seq + 1 < count:
                ahead = _IO.submit(self._chunk, sha256, upload_id, seq + 1)
            yield chunk

    def _open(self, sha256: str) -> BinaryIO | None:
        row = self._row(sha256)
        if row is None:
            return None
        return io.BufferedReader(_ChunkReader(self._chunks(sha256, *row)), BLOCK)

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        row = self._row(check_address(sha256))
        if row is None:  # inline content, or NotFound
            yield from super().iter_chunks(sha256)
            return
        yield from self._chunks(sha256, *row)

    def _exists(self, sha256: str) -> bool:
        return self._row(sha256) is not None

    def _delete(self, sha256: str) -> bool:
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "delete from blobs where sha256 = %s returning upload_id", (sha256,)
            ).fetchone()
            if row is None:
                return False
            conn.execute("delete from blob_chunks where upload_id = %s", (row[0],))
        return True

    def _pin(self, sha256: str) -> str:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (_PIN_LOCK, sha256))
            row = conn.execute(
                "insert into blob_pins (sha256) values (%s) returning pin_id", (sha256,)
            ).fetchone()
        assert row is not None
        return str(row[0])

    def _unpin(self, sha256: str, pin: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("delete from blob_pins where pin_id = %s", (int(pin),))

    def _discard(self, sha256: str, referenced: Referenced) -> bool:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (_PIN_LOCK, sha256))
            pinned = conn.execute(
                "select 1 from blob_pins where sha256 = %s limit 1", (sha256,)
            ).fetchone()
            # ``referenced`` reads through the ledger's own connection: an
            # entry committed before the pin that protected it was removed
            # is visible to it.
            if pinned is not None or referenced(sha256):
                return False
            row = conn.execute(
                "delete from blobs where sha256 = %s returning upload_id", (sha256,)
            ).fetchone()
            if row is None:
                return False
            conn.execute("delete from blob_chunks where upload_id = %s", (row[0],))
        return True

    def _sweep_partials(self, older_than: float) -> int:
        with self._pool.connection() as conn, conn.transaction():
            pins = conn.execute(
                "delete from blob_pins where pinned_at < now() - make_interval(secs => %s)",
                (older_than,),
            ).rowcount
            stale = conn.execute(
                "delete from blob_uploads where touched_at < now() - make_interval(secs => %s) "
                "returning upload_id",
                (older_than,),
            ).fetchall()
            ids = [r[0] for r in stale]
            if ids:
                conn.execute("delete from blob_chunks where upload_id = any(%s)", (ids,))
            # Chunks of an upload whose row was swept while it still wrote.
            lost = conn.execute(
                "delete from blob_chunks c where not exists "
                "(select 1 from blob_uploads u where u.upload_id = c.upload_id) "
                "and not exists (select 1 from blobs b where b.upload_id = c.upload_id) "
                "returning upload_id"
            ).fetchall()
        return len(ids) + len({r[0] for r in lost}) + max(pins, 0)

    def _stored(self, older_than: float) -> Iterator[str]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "select sha256 from blobs where stored_at < now() - make_interval(secs => %s) "
                "order by sha256",
                (older_than,),
            ).fetchall()
        for (sha256,) in rows:
            yield str(sha256)
