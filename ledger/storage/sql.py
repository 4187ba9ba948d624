"""One SQL event store for SQLite and PostgreSQL; a :class:`Dialect` says what differs.

Every statement is written once, with ``?`` placeholders, against the same
table and column names on both databases. A dialect supplies the rest:
connections (one per thread), write transactions and their locking,
read-only snapshots, bulk inserts (``executemany`` or ``COPY``), streaming
reads, column types, the append-only triggers and error mapping.

Writes take named locks: ``SEQUENCE`` for appends (and anything that must
not interleave with them), ``SEAL`` for the sealer. On SQLite every write
transaction is serialised anyway; on PostgreSQL they are transaction-scoped
advisory locks (see :mod:`ledger.storage.postgres` for why that orders
commits by index).

The schema is versioned (:mod:`ledger.storage.migrations`): an older
database is migrated when opened, a newer one refused.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from ledger.errors import LedgerError, StateConflict, StorageError
from ledger.events import Draft
from ledger.guards import Require
from ledger.projections import (
    PROJECTIONS,
    Update,
    index_ddl,
    projections_signature,
)
from ledger.storage.base import (
    CHECKPOINTS_HEAD,
    FORMAT,
    LINK_GENESIS,
    PUBLICATIONS_HEAD,
    Appended,
    CheckpointRow,
    JobRecord,
    LinkedCheckpoint,
    LinkedPublication,
    LiveRow,
    Publication,
    RenewalBatch,
    RenewalRow,
    Rows,
    Store,
    TileRow,
    build_rows,
    checkpoint_link,
    insert_columns,
    op_batches,
    publication_link,
    replay_ops,
)
from ledger.storage.search import SearchSql
from ledger.storage.search import rows as search_rows

__all__ = ["SEAL", "SEQUENCE", "CorruptRow", "Dialect", "SqlStore"]

SEQUENCE = 0x6C6F67  # lock ids: 'log' for appends
SEAL = 0x7365616C  # and 'seal' for the sealer

_LOG_ROWS = (
    "select e.idx, e.type, e.time, e.leaf, p.body from events e join private p on p.idx = e.idx"
)

_SELECT_PUB = (
    "select p.size, c.root, p.note, p.time, p.token from publications p "
    "join checkpoints c on c.size = p.size"
)
_SET_META = "insert into meta values (?, ?) on conflict (key) do update set value = excluded.value"
_SET_SIGNATURE = (
    "insert into meta values ('projections', ?) "
    "on conflict (key) do update set value = excluded.value"
)


class Dialect(ABC):
    """What differs between SQLite and PostgreSQL, behind one small interface."""

    kind: str
    url: str
    int64: str
    """Column type of 64-bit integers."""
    bytes_type: str
    float_type: str
    epoch_now: str
    """SQL expression: the database's clock, in seconds since the epoch."""
    epoch_statement: str
    """The same clock, one value for a whole statement."""
    greatest: str
    """The scalar function of the larger of two values."""

    @abstractmethod
    def conn(self) -> Any:
        """This thread's connection (autocommit; opened on first use)."""

    @abstractmethod
    def close(self) -> None:
        """Close this thread's connection."""

    @abstractmethod
    def sql(self, query: str) -> Any:
        """``query`` (with ``?`` placeholders) as the driver takes it."""

    @abstractmethod
    def write(self, conn: Any, locks: Sequence[int]) -> AbstractContextManager[None]:
        """A write transaction holding ``locks``; driver errors become ledger errors."""

    @abstractmethod
    def snapshot(self, conn: Any) -> AbstractContextManager[None]:
        """A read-only transaction over one committed state, taking no lock."""

    @abstractmethod
    def insert_rows(
        self, conn: Any, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Insert many rows at once."""

    @abstractmethod
    def executemany(self, conn: Any, query: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Run ``query`` (``?`` placeholders) once per row."""

    @abstractmethod
    def stream(self, conn: Any, query: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
        """Rows of ``query`` in batches of ``size``, without holding them all
        (inside a transaction)."""

    @abstractmethod
    def has_table(self, conn: Any, name: str) -> bool: ...

    @abstractmethod
    def has_column(self, conn: Any, table: str, column: str) -> bool: ...

    @abstractmethod
    def append_only(self, table: str) -> list[str]:
        """DDL making ``table`` refuse UPDATE and DELETE (and TRUNCATE where it exists)."""

    @abstractmethod
    def suspend_append_only(self, table: str) -> tuple[list[str], list[str]]:
        """DDL that lifts ``table``'s append-only triggers, and DDL that restores
        them: for migrations only, run inside the migrating transaction."""

    @abstractmethod
    def storage_bytes(self, conn: Any, tables: Sequence[str]) -> int: ...

    # -- title search (ledger.storage.search) ------------------------------
    @abstractmethod
    def search_ddl(self) -> list[str]:
        """Create ``evidence_search`` and its inverted index."""

    @abstractmethod
    def search_insert(self, conn: Any, rows: Sequence[tuple[int, str, str]]) -> None:
        """Insert search rows ``(idx, norm, space-separated grams)``."""

    @abstractmethod
    def title_search(self, tokens: Sequence[str]) -> SearchSql:
        """The join of evidence with its search rows, through the index of
        ``tokens`` (every one required) or, with none, row by row."""

    def execute_unprepared(self, conn: Any, query: str, params: Sequence[Any]) -> Any:
        """Run ``query`` planned for these values (never a prepared statement)."""
        return conn.execute(self.sql(query), tuple(params))

    def error(self, e: Exception) -> Exception | None:
        """The ledger error for a driver error, or None if ``e`` is not one."""
        return None


class SqlStore(Store):
    """The event store, on any :class:`Dialect`."""

    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect
        self.kind = dialect.kind
        self.url = dialect.url

    # -- creation and opening (called by the backends) ---------------------
    def _create(self) -> None:
        from ledger.storage.migrations import LATEST, migrate

        conn = self.d.conn()
        with self.d.write(conn, (SEQUENCE, SEAL)):
            migrate(self.d, conn, 0)
            for stmt in self._projection_ddl():
                conn.execute(self.d.sql(stmt))
            self._x(conn, "insert into meta values ('format', ?)", (FORMAT,))
            self._x(conn, "insert into meta values ('schema_version', ?)", (str(LATEST),))
            self._x(conn, _SET_SIGNATURE, (projections_signature(),))

    def _open(self) -> None:
        from ledger.storage.migrations import LATEST, migrate

        version = self._version()
        if version > LATEST:
            raise StorageError(
                f"database: schema version {version} is newer than this evidence-ledger "
                f"supports ({LATEST}); upgrade evidence-ledger"
            )
        if version < LATEST:
            conn = self.d.conn()
            with self.d.write(conn, (SEQUENCE, SEAL)):
                version = self._version()  # another process may have migrated meanwhile
                if version < LATEST:
                    migrate(self.d, conn, version)
                    self._x(
                        conn,
                        "insert into meta values ('schema_version', ?) "
                        "on conflict (key) do update set value = excluded.value",
                        (str(LATEST),),
                    )
        if self.get_meta("projections") != projections_signature():
            self.rebuild()

    def _version(self) -> int:
        # Databases made before versioning had format evidence-ledger/1: version 1.
        raw = self.get_meta("schema_version")
        try:
            return 1 if raw is None else int(raw)
        except ValueError as e:
            raise StorageError(f"database: schema version {raw!r} is not a number") from e

    def _projection_ddl(self) -> list[str]:
        out = []
        for table, cols in PROJECTIONS.items():
            body = ", ".join(
                f"{name} {decl.replace('bigint', self.d.int64)}" for name, decl in cols
            )
            out.append(f"create table {table} ({body})")
        out.extend(index_ddl())
        out.extend(self.d.search_ddl())
        return out

    # -- helpers ---------------------------------------------------------
    def _x(self, conn: Any, query: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self.d.sql(query), tuple(params))

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """The database's errors as the ledger's (StorageFull, StorageError, ...)."""
        try:
            yield
        except LedgerError:
            raise
        except Exception as e:
            mapped = self.d.error(e)
            if mapped is None:
                raise
            raise mapped from e

    def _read(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._mapped():
            return [tuple(r) for r in self._x(self.d.conn(), query, params)]

    def _one(self, query: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self._read(query, params)
        return rows[0] if rows else None

    @contextmanager
    def _write(self, *locks: int) -> Iterator[Any]:
        conn = self.d.conn()
        with self.d.write(conn, locks):
            yield conn

    # -- lifecycle -------------------------------------------------------
    def close(self) -> None:
        self.d.close()

    def get_meta(self, key: str) -> str | None:
        row = self._one("select value from meta where key = ?", (key,))
        return None if row is None else str(row[0])

    # -- the log ---------------------------------------------------------
    def append(self, drafts: Sequence[Draft]) -> list[Appended]:
        if not drafts:
            return []
        with self._write(SEQUENCE) as conn:
            head = self._x(
                conn, "select idx, leaf_hash, time from events order by idx desc limit 1"
            ).fetchone()
            if head is None:
                rows = build_rows(drafts, 0, None, "")
            else:
                rows = build_rows(drafts, head[0] + 1, bytes(head[1]), head[2])
            self._insert(conn, rows)
        return rows.appended

    def _insert(self, conn: Any, rows: Rows) -> None:
        # Each requirement is read after the projection changes of every draft
        # before it in the group (the lock keeps other appenders out until
        # commit); one that fails rolls the whole group back.
        applied = 0
        for position, ops_before, required in rows.checks:
            self._apply(conn, rows.ops[applied:ops_before])
            applied = ops_before
            for req in required:
                self._require(conn, req, position)
        cols = ("idx", "type", "time", "leaf", "leaf_hash")
        self.d.insert_rows(conn, "events", cols, rows.events)
        self.d.insert_rows(conn, "private", ("idx", "salt", "body"), rows.private)
        if rows.blobs:
            self.d.executemany(
                conn, "insert into blob_data values (?, ?) on conflict do nothing", rows.blobs
            )
        self._apply(conn, rows.ops[applied:])

    def _require(self, conn: Any, req: Require, position: int) -> None:
        """Raise :class:`StateConflict` unless ``req`` holds (inside the append)."""
        # Table and column names come from ledger.guards, never from input.
        where = " and ".join(f"{column} = ?" for column, _ in req.match)
        state = "is not null" if req.closed else "is null"
        found = self._x(
            conn,
            f"select 1 from {req.table} where {where} and {req.open_column} {state} limit 1",  # noqa: S608
            [value for _, value in req.match],
        ).fetchone()
        if (found is not None) != req.exists:
            raise StateConflict(req.message, position)

    def _apply(self, conn: Any, ops: Sequence[Any]) -> None:
        for batch in op_batches(ops):
            if isinstance(batch, Update):
                # Table and column names come from PROJECTIONS, never from input.
                sets = ", ".join(f"{k} = ?" for k in batch.values)
                # Only-once updates (a revocation, a request's closing) touch a
                # row whose column is still null: the first one wins.
                guard = f" and {batch.if_null} is null" if batch.if_null else ""
                self._x(
                    conn,
                    f"update {batch.table} set {sets} where {batch.key} = ?{guard}",  # noqa: S608
                    (*batch.values.values(), batch.key_value),
                )
            else:
                table, rows = batch
                columns = insert_columns(table)
                self.d.insert_rows(conn, table, columns, rows)
                if table == "evidence":
                    # The title search rows go with their evidence rows.
                    found = search_rows(rows, columns.index("idx"), columns.index("title"))
                    if found:
                        self.d.search_insert(conn, found)

    def size(self) -> int:
        row = self._one("select max(idx) from events")
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def inline_blob(self, sha256: str) -> bytes | None:
        row = self._one("select data from blob_data where sha256 = ?", (sha256,))
        return None if row is None else bytes(row[0])

    def entries(self, start: int, end: int) -> list[tuple[int, str, str, bytes, bytes]]:
        rows = self._read(
            "select idx, type, time, leaf, leaf_hash from events "
            "where idx >= ? and idx < ? order by idx",
            (start, end),
        )
        return [
            (
                _idx(r[0]),
                _text(r, 1, "type"),
                _text(r, 2, "time"),
                _blob(r, 3, "leaf"),
                _blob(r, 4, "leaf_hash"),
            )
            for r in rows
        ]

    def privates(self, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        rows = self._read(
            "select idx, salt, body from private where idx >= ? and idx < ? order by idx",
            (start, end),
        )
        return [(_idx(r[0]), _blob(r, 1, "salt"), _blob(r, 2, "private body")) for r in rows]

    # -- tree ------------------------------------------------------------
    def tiles(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], TileRow]:
        return _read_tiles(self, self.d.conn(), keys)

    def all_tiles(self) -> Iterator[TileRow]:
        for r in self._read(
            "select level, idx, width, hashes, inner_nodes from tiles order by level, idx"
        ):
            yield TileRow(r[0], r[1], r[2], bytes(r[3]), bytes(r[4]))

    def latest_checkpoint(self) -> CheckpointRow | None:
        return _latest(self, self.d.conn())

    def checkpoint(self, size: int) -> CheckpointRow | None:
        r = self._one("select size, root, note, time from checkpoints where size = ?", (size,))
        return None if r is None else CheckpointRow(r[0], bytes(r[1]), r[2], r[3])

    def checkpoints(self) -> list[CheckpointRow]:
        rows = self._read("select size, root, note, time from checkpoints order by size")
        return [CheckpointRow(r[0], bytes(r[1]), r[2], r[3]) for r in rows]

    def checkpoint_page(self, after: int, limit: int) -> list[LinkedCheckpoint]:
        rows = self._read(
            "select size, root, note, time, prev from checkpoints where size > ? "
            "order by size limit ?",
            (after, limit),
        )
        return [
            LinkedCheckpoint(_checkpoint(r), _opt_text(r, 4, "prev", "checkpoint")) for r in rows
        ]

    def tile_extent(self) -> list[tuple[int, int, int]]:
        rows = self._read("select level, idx, width from tiles order by level, idx")
        return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]

    def publish(self, pub: Publication) -> bool:
        with self._write(SEAL) as conn:
            return _publish(self, conn, pub)

    def latest_publication(self) -> Publication | None:
        r = self._one(_SELECT_PUB + " order by p.size desc limit 1")
        return None if r is None else _publication(r)

    def publication(self, size: int) -> Publication | None:
        r = self._one(_SELECT_PUB + " where p.size = ?", (size,))
        return None if r is None else _publication(r)

    def recent_publications(self, limit: int) -> list[Publication]:
        rows = self._read(_SELECT_PUB + " order by p.size desc limit ?", (limit,))
        return [_publication(r) for r in rows]

    def publications(self) -> list[Publication]:
        return [_publication(r) for r in self._read(_SELECT_PUB + " order by p.size")]

    # -- timestamp renewal -------------------------------------------------
    def add_renewal(self, batch: RenewalBatch, rows: Sequence[RenewalRow]) -> int:
        with self._write(SEAL) as conn:
            self._x(
                conn,
                "insert into renewal_batches values (?, ?, ?, ?, ?, ?, ?, ?) "
                "on conflict (batch) do nothing",
                (
                    batch.batch,
                    batch.time,
                    batch.algorithm,
                    batch.token,
                    batch.gen_time,
                    batch.not_after,
                    batch.tsa,
                    int(batch.hash_tree_renewal),
                ),
            )
            added = 0
            for r in rows:
                cur = self._x(
                    conn,
                    "insert into renewals values (?, ?, ?, ?, ?, ?) "
                    "on conflict (size, line, seq) do nothing",
                    (r.size, r.line, r.seq, r.chain, r.batch, r.hashtree),
                )
                added += cur.rowcount
            return added

    def renewal_batches(self) -> list[RenewalBatch]:
        rows = self._read(
            "select batch, time, algorithm, token, gen_time, not_after, tsa, hash_tree "
            "from renewal_batches order by gen_time, batch"
        )
        return [
            RenewalBatch(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6], bool(r[7])) for r in rows
        ]

    def renewals(self, size: int | None = None) -> list[RenewalRow]:
        query = "select size, line, seq, chain, batch, hashtree from renewals"
        params: tuple[int, ...] = ()
        if size is not None:
            query, params = query + " where size = ?", (size,)
        rows = self._read(query + " order by size, line, seq", params)
        return [RenewalRow(r[0], r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]

    def publication_page(self, after: int, limit: int) -> list[LinkedPublication]:
        rows = self._read(
            "select p.size, p.note, p.token, p.time, p.prev, c.size, c.root, c.note, c.time "
            "from publications p left join checkpoints c on c.size = p.size "
            "where p.size > ? order by p.size limit ?",
            (after, limit),
        )
        return [
            LinkedPublication(
                _idx(r[0]),
                _text(r, 1, "note", "publication"),
                None if r[2] is None else _blob(r, 2, "token", "publication"),
                _text(r, 3, "time", "publication"),
                _opt_text(r, 4, "prev", "publication"),
                None if r[5] is None else _checkpoint(r[5:]),
            )
            for r in rows
        ]

    @contextmanager
    def sealing(self) -> Iterator[SqlSealTxn]:
        with self._write(SEAL) as conn:
            yield SqlSealTxn(self, conn)

    @contextmanager
    def snapshot(self) -> Iterator[SqlSealTxn]:
        conn = self.d.conn()
        with self.d.snapshot(conn):
            yield SqlSealTxn(self, conn)

    # -- capture jobs ----------------------------------------------------
    # Heartbeats are epoch seconds by the database's clock, shared by every host.
    def put_capture_job(
        self, job_id: str, owner: str | None, status: str, record: str, due: float | None = None
    ) -> None:
        with self._write() as conn:
            self._x(
                conn,
                "insert into capture_jobs (job_id, owner, status, heartbeat, record, due) "  # noqa: S608
                f"values (?, ?, ?, {self.d.epoch_now}, ?, ?) "
                "on conflict (job_id) do update set owner = excluded.owner, "
                "status = excluded.status, heartbeat = excluded.heartbeat, "
                "record = excluded.record, due = excluded.due",
                (job_id, owner, status, record, due),
            )

    def claim_due_capture_jobs(self, limit: int) -> list[JobRecord]:
        if limit <= 0:
            return []
        # Looked for outside a write transaction: workers poll every second,
        # and most polls find nothing.
        due = self._read(
            "select job_id, record from capture_jobs "  # noqa: S608
            f"where due is not null and due <= {self.d.epoch_now} order by due limit ?",
            (limit,),
        )
        if not due:
            return []
        claimed = []
        with self._write() as conn:
            for job_id, record in due:
                # Another host may have taken it since the select: the update
                # that clears the due time decides (PostgreSQL waits on the
                # row lock and then sees it cleared).
                cur = self._x(
                    conn,
                    f"update capture_jobs set due = null, heartbeat = {self.d.epoch_now} "  # noqa: S608
                    "where job_id = ? and due is not null",
                    (job_id,),
                )
                if cur.rowcount == 1:
                    claimed.append(JobRecord(str(job_id), str(record), 0.0))
        return claimed

    def capture_job(self, job_id: str) -> JobRecord | None:
        row = self._one(
            f"select record, {self.d.epoch_now} - heartbeat from capture_jobs "  # noqa: S608
            "where job_id = ?",
            (job_id,),
        )
        return None if row is None else JobRecord(job_id, str(row[0]), max(0.0, float(row[1])))

    def touch_capture_jobs(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        marks = ", ".join("?" * len(job_ids))
        with self._write() as conn:
            self._x(
                conn,
                f"update capture_jobs set heartbeat = {self.d.epoch_now} "  # noqa: S608
                f"where job_id in ({marks})",
                job_ids,
            )

    # -- interactive capture sessions ----------------------------------------
    def _live_cols(self, now: str) -> str:
        return (
            f"owner, session_id, holder, state, {now} - beat, {now} - seen, {now} - watched, "
            "ending, sent, outcome"
        )

    def _live(self, r: tuple[Any, ...]) -> LiveRow:
        return LiveRow(
            owner=str(r[0]),
            session_id=str(r[1]),
            holder=str(r[2]),
            state=str(r[3]),
            age=max(0.0, float(r[4])),
            seen=max(0.0, float(r[5])),
            watched=max(0.0, float(r[6])),
            ending=None if r[7] is None else str(r[7]),
            sent=int(r[8]),
            outcome=None if r[9] is None else str(r[9]),
        )

    def _live_write(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._mapped(), self._write() as conn:
            cur = self._x(conn, query, params)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    def live_take(self, owner: str, session_id: str, holder: str, ttl: float, state: str) -> bool:
        now = self.d.epoch_statement
        with self._mapped(), self._write() as conn:
            row = self._x(
                conn,
                "insert into live_sessions (owner, session_id, holder, expires, beat, seen, "  # noqa: S608
                "watched, ending, sent, burst_at, burst_n, state, outcome) values (?, ?, ?, "
                f"{now} + ?, {now}, {now}, 0, null, 0, 0, 0, ?, null) on conflict (owner) "
                "do update set session_id = excluded.session_id, holder = excluded.holder, "
                "expires = excluded.expires, beat = excluded.beat, seen = excluded.seen, "
                "watched = 0, ending = null, "
                "sent = 0, burst_at = 0, burst_n = 0, state = excluded.state, outcome = null "
                f"where live_sessions.expires < {now} or live_sessions.outcome is not null "
                "returning session_id",
                (owner, session_id, holder, ttl, state),
            ).fetchone()
            if row is None or str(row[0]) != session_id:
                return False
            # What the session of a holder that died may have left behind.
            for table in ("live_frames", "live_inputs"):
                self._x(
                    conn,
                    f"delete from {table} where session_id not in "  # noqa: S608 - no input
                    "(select session_id from live_sessions)",
                )
        return True

    def live_renew(self, session_id: str, ttl: float, state: str) -> LiveRow | None:
        now = self.d.epoch_statement
        rows = self._live_write(
            f"update live_sessions set expires = {now} + ?, beat = {now}, state = ? "  # noqa: S608
            f"where session_id = ? and outcome is null returning {self._live_cols(now)}",
            (ttl, state, session_id),
        )
        return self._live(rows[0]) if rows else None

    def live_row(self, owner: str) -> LiveRow | None:
        now = self.d.epoch_now
        row = self._one(
            f"select {self._live_cols(now)} from live_sessions "  # noqa: S608
            f"where owner = ? and expires >= {now}",
            (owner,),
        )
        return None if row is None else self._live(row)

    def live_touch(self, session_id: str, watched: bool) -> None:
        now = self.d.epoch_statement
        also = f", watched = {now}" if watched else ""
        self._live_write(
            f"update live_sessions set seen = {now}{also} where session_id = ?",  # noqa: S608
            (session_id,),
        )

    def live_end(self, session_id: str, how: str) -> None:
        self._live_write(
            "update live_sessions set ending = coalesce(ending, ?) where session_id = ?",
            (how, session_id),
        )

    def live_count(self, session_id: str, n: int, most: int, rate: int) -> int | None:
        now = self.d.epoch_statement
        fresh = f"live_sessions.burst_at > {now} - 1"
        burst = f"case when {fresh} then live_sessions.burst_n + ? else ? end"
        rows = self._live_write(
            "update live_sessions set sent = sent + ?, "  # noqa: S608 - no input
            f"burst_n = {burst}, burst_at = case when {fresh} then burst_at else {now} end "
            "where session_id = ? and ending is null and outcome is null "
            f"and sent + ? <= ? and {burst} <= ? returning sent",
            (n, n, n, session_id, n, most, n, n, rate),
        )
        return int(rows[0][0]) if rows else None

    def live_put_inputs(self, session_id: str, first: int, steps: Sequence[str]) -> None:
        with self._write() as conn:
            self.d.executemany(
                conn,
                "insert into live_inputs (session_id, n, step) values (?, ?, ?)",
                [(session_id, first + k, step) for k, step in enumerate(steps)],
            )

    def live_take_inputs(self, session_id: str) -> list[tuple[int, str]]:
        rows = self._read(
            "select n, step from live_inputs where session_id = ? order by n", (session_id,)
        )
        if rows:
            # Exactly the rows read: another process may be adding a lower
            # number it counted earlier (it is taken on the next look).
            marks = ", ".join("?" * len(rows))
            self._live_write(
                f"delete from live_inputs where session_id = ? and n in ({marks})",  # noqa: S608
                (session_id, *(int(r[0]) for r in rows)),
            )
        return [(int(n), str(step)) for n, step in rows]

    def live_put_frame(self, session_id: str, seq: int, at: str, jpeg: bytes) -> None:
        self._live_write(
            "insert into live_frames (session_id, seq, at, jpeg) values (?, ?, ?, ?) "
            "on conflict (session_id) do update set seq = excluded.seq, at = excluded.at, "
            "jpeg = excluded.jpeg",
            (session_id, seq, at, jpeg),
        )

    def live_frame(self, session_id: str, after: int) -> tuple[int, str, bytes] | None:
        row = self._one(
            "select seq, at, jpeg from live_frames where session_id = ? and seq > ?",
            (session_id, after),
        )
        return None if row is None else (int(row[0]), str(row[1]), bytes(row[2]))

    def live_close(self, session_id: str, outcome: str, keep: float) -> None:
        now = self.d.epoch_statement
        with self._mapped(), self._write() as conn:
            self._x(
                conn,
                f"update live_sessions set outcome = ?, expires = {now} + ? "  # noqa: S608
                "where session_id = ?",
                (outcome, keep, session_id),
            )
            for table in ("live_frames", "live_inputs"):
                self._x(conn, f"delete from {table} where session_id = ?", (session_id,))  # noqa: S608

    # -- rate limits -------------------------------------------------------
    def take_rate(self, bucket: str, interval: float, tolerance: float) -> float:
        # GCRA in one statement, so concurrent takers of one bucket (any
        # worker, any host) serialise on its row: a request is allowed when
        # the bucket's theoretical arrival time is at most ``tolerance``
        # ahead of now, and then moves it one ``interval`` on. Every SET
        # expression reads the row as it was before the update.
        now = self.d.epoch_statement
        top = f"{self.d.greatest}(rate_buckets.tat, {now})"
        allowed = f"{top} - {now} <= ?"
        query = (
            "insert into rate_buckets (bucket, tat, granted) "  # noqa: S608 - no input
            f"values (?, {now} + ?, 1) on conflict (bucket) do update set "
            f"tat = case when {allowed} then {top} + ? else rate_buckets.tat end, "
            f"granted = case when {allowed} then 1 else 0 end "
            f"returning tat, granted, {now}"
        )
        params = (bucket, interval, tolerance, interval, tolerance)
        with self._mapped(), self._write() as conn:
            tat, granted, at = self._x(conn, query, params).fetchone()
        return 0.0 if granted else max(0.0, float(tat) - float(at) - tolerance)

    def rate_wait(self, bucket: str, tolerance: float) -> float:
        now = self.d.epoch_statement
        row = self._one(
            f"select tat, {now} from rate_buckets where bucket = ?",  # noqa: S608 - no input
            (bucket,),
        )
        if row is None:
            return 0.0
        return max(0.0, float(row[0]) - float(row[1]) - tolerance)

    def prune_rates(self) -> int:
        return self.execute(f"delete from rate_buckets where tat < {self.d.epoch_statement}")  # noqa: S608

    # -- operational rows (sessions) ----------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction; return the rows it
        changed. Only for operational tables outside the log (``sessions``)."""
        with self._mapped(), self._write() as conn:
            return int(self._x(conn, sql, params).rowcount)

    # -- projections -----------------------------------------------------
    def title_search(self, tokens: Sequence[str]) -> SearchSql:
        return self.d.title_search(tokens)

    def query(
        self, sql: str, params: Sequence[Any] = (), *, planned_each_time: bool = False
    ) -> list[dict[str, Any]]:
        with self._mapped():
            if planned_each_time:
                cur = self.d.execute_unprepared(self.d.conn(), sql, params)
            else:
                cur = self._x(self.d.conn(), sql, params)
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, r, strict=True)) for r in cur]

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        count = 0
        # The sequencing lock keeps appends out while the tables are replaced.
        with self._write(SEQUENCE) as conn:
            for table in (*PROJECTIONS, "evidence_search"):
                conn.execute(self.d.sql(f"drop table if exists {table}"))
            for stmt in self._projection_ddl():
                conn.execute(self.d.sql(stmt))
            for chunk in self.d.stream(
                conn,
                "select e.idx, e.type, e.time, e.leaf, p.salt, p.body "
                "from events e join private p on p.idx = e.idx order by e.idx",
                10000,
            ):
                rows = [(a, b, c, bytes(d), bytes(e), bytes(f)) for a, b, c, d, e, f in chunk]
                self._apply(conn, list(replay_ops(iter(rows))))
                count += len(chunk)
                if progress is not None:
                    progress(count)
            self._x(conn, _SET_SIGNATURE, (projections_signature(),))
        return count

    @contextmanager
    def projection_view(self) -> Iterator[SqlProjectionView]:
        conn = self.d.conn()
        with self.d.snapshot(conn):
            yield SqlProjectionView(self, conn)

    def dump_projections(self) -> dict[str, list[tuple[Any, ...]]]:
        return {
            t: sorted(
                (
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                    for r in self._read(f"select * from {t}")  # noqa: S608
                ),
                key=repr,
            )
            for t in PROJECTIONS
        }

    def storage_bytes(self) -> int:
        tables = (
            "events",
            "private",
            "tiles",
            "checkpoints",
            "publications",
            "renewal_batches",
            "renewals",
            *PROJECTIONS,
        )
        return self.d.storage_bytes(self.d.conn(), tables)


class CorruptRow(StorageError):
    """A stored value has the wrong SQL type (changed behind the ledger's back);
    ``index`` is the row's entry index or checkpoint size when it is known."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index

    def __reduce__(self) -> tuple[type[CorruptRow], tuple[str, int | None]]:
        return (CorruptRow, (str(self), self.index))


def _key(row: Sequence[Any], where: str) -> int | None:
    """The entry index a bad value belongs to (None for checkpoints and publications)."""
    v = row[0]
    ok = where == "entry" and isinstance(v, int) and not isinstance(v, bool)
    return v if ok else None


def _blob(row: Sequence[Any], i: int, what: str, where: str = "entry") -> bytes:
    v = row[i]
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v)
    raise CorruptRow(
        f"{where} {row[0]}: {what} is stored as {_sql_type(v)}, not as bytes", _key(row, where)
    )


def _text(row: Sequence[Any], i: int, what: str, where: str = "entry") -> str:
    v = row[i]
    if isinstance(v, str):
        return v
    raise CorruptRow(
        f"{where} {row[0]}: {what} is stored as {_sql_type(v)}, not as text", _key(row, where)
    )


def _opt_text(row: Sequence[Any], i: int, what: str, where: str) -> str | None:
    return None if row[i] is None else _text(row, i, what, where)


def _idx(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise CorruptRow(f"entry {v!r}: index is stored as {_sql_type(v)}, not as an integer")


def _sql_type(v: Any) -> str:
    return {str: "text", int: "integer", float: "a real", type(None): "null"}.get(
        type(v), "bytes" if isinstance(v, bytes | bytearray | memoryview) else type(v).__name__
    )


def _checkpoint(r: Sequence[Any]) -> CheckpointRow:
    w = "checkpoint"
    return CheckpointRow(
        _idx(r[0]), _blob(r, 1, "root", w), _text(r, 2, "note", w), _text(r, 3, "time", w)
    )


def _publish(store: SqlStore, conn: Any, pub: Publication) -> bool:
    """Insert a publication linked to the latest one, unless it is not newer
    (another host published the same or a later checkpoint meanwhile)."""
    last = store._x(
        conn,
        "select size, note, token, time, prev from publications order by size desc limit 1",
    ).fetchone()
    if last is not None and last[0] >= pub.size:
        return False
    prev = (
        LINK_GENESIS
        if last is None
        else publication_link(
            last[4], last[0], last[1], None if last[2] is None else bytes(last[2]), last[3]
        )
    )
    store._x(
        conn,
        "insert into publications (size, note, token, time, prev) values (?, ?, ?, ?, ?)",
        (pub.size, pub.note, pub.token, pub.time, prev),
    )
    link = publication_link(prev, pub.size, pub.note, pub.token, pub.time)
    store._x(conn, _SET_META, (PUBLICATIONS_HEAD, f"{pub.size} {link}"))
    return True


def _latest(store: SqlStore, conn: Any) -> CheckpointRow | None:
    r = store._x(
        conn, "select size, root, note, time from checkpoints order by size desc limit 1"
    ).fetchone()
    return None if r is None else CheckpointRow(r[0], bytes(r[1]), r[2], r[3])


def _publication(r: Sequence[Any]) -> Publication:
    return Publication(r[0], bytes(r[1]), r[2], r[3], None if r[4] is None else bytes(r[4]))


def _read_tiles(
    store: SqlStore, conn: Any, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], TileRow]:
    out: dict[tuple[int, int], TileRow] = {}
    for level, idx in keys:
        r = store._x(
            conn,
            "select level, idx, width, hashes, inner_nodes from tiles where level = ? and idx = ?",
            (level, idx),
        ).fetchone()
        if r is not None:
            out[(level, idx)] = TileRow(r[0], r[1], r[2], bytes(r[3]), bytes(r[4]))
    return out


class SqlSealTxn:
    """The sealer's reads and writes inside its transaction (a ``SealTxn``)."""

    def __init__(self, store: SqlStore, conn: Any) -> None:
        self._s = store
        self._c = conn

    def size(self) -> int:
        row = self._s._x(self._c, "select max(idx) from events").fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def latest_checkpoint(self) -> CheckpointRow | None:
        return _latest(self._s, self._c)

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        cur = self._s._x(
            self._c,
            "select leaf_hash from events where idx >= ? and idx < ? order by idx",
            (start, end),
        )
        return [bytes(r[0]) for r in cur]

    def tiles(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], TileRow]:
        return _read_tiles(self._s, self._c, keys)

    def put_tiles(self, rows: Sequence[TileRow]) -> None:
        self._s.d.executemany(
            self._c,
            "insert into tiles values (?, ?, ?, ?, ?) on conflict (level, idx) do update "
            "set width = excluded.width, hashes = excluded.hashes, "
            "inner_nodes = excluded.inner_nodes",
            [(t.level, t.index, t.width, t.hashes, t.inner) for t in rows],
        )

    def add_checkpoint(self, row: CheckpointRow) -> None:
        last = self._s._x(
            self._c,
            "select size, root, note, time, prev from checkpoints order by size desc limit 1",
        ).fetchone()
        prev = (
            LINK_GENESIS
            if last is None
            else checkpoint_link(last[4], last[0], bytes(last[1]), last[2], last[3])
        )
        self._s._x(
            self._c,
            "insert into checkpoints (size, root, note, time, prev) values (?, ?, ?, ?, ?)",
            (row.size, row.root, row.note, row.time, prev),
        )
        link = checkpoint_link(prev, row.size, row.root, row.note, row.time)
        self._s._x(self._c, _SET_META, (CHECKPOINTS_HEAD, f"{row.size} {link}"))

    def publish(self, pub: Publication) -> None:
        _publish(self._s, self._c, pub)


class SqlProjectionView:
    """The audit's snapshot of the log and its projections (a ``ProjectionView``)."""

    def __init__(self, store: SqlStore, conn: Any) -> None:
        self._s = store
        self._c = conn

    def size(self) -> int:
        row = self._s._x(self._c, "select max(idx) from events").fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def log_rows(
        self, start: int, end: int
    ) -> Generator[tuple[int, str, str, bytes, bytes], None, None]:
        lo, hi = int(start), int(end)
        query = f"{_LOG_ROWS} where e.idx >= {lo} and e.idx < {hi} order by e.idx"
        for chunk in self._s.d.stream(self._c, query, 2000):
            for r in chunk:
                yield (
                    _idx(r[0]),
                    _text(r, 1, "type"),
                    _text(r, 2, "time"),
                    _blob(r, 3, "leaf"),
                    _blob(r, 4, "private body"),
                )

    def projection_rows(self, table: str) -> Generator[tuple[Any, ...], None, None]:
        # Table and column names come from PROJECTIONS, never from input.
        cols = ", ".join(insert_columns(table))
        query = f"select {cols} from {table} order by idx"  # noqa: S608
        for chunk in self._s.d.stream(self._c, query, 2000):
            yield from (tuple(r) for r in chunk)
