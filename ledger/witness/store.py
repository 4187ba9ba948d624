"""The witness's own SQLite database: followed logs and what it cosigned.

``logs`` lists the log keys the witness follows (by origin). ``latest`` holds,
per origin, the latest checkpoint it cosigned: the only state the C2SP
tlog-witness protocol needs, and the one row a request may change. Every
cosigned checkpoint is also appended to ``cosigned``, and requests that show a
log misbehaving (a consistency proof that fails, another root for a size
already cosigned) to ``refused``; both are append-only (triggers), so the
witness keeps evidence of what it saw.

Checking the old size and persisting the new checkpoint happen in one
``BEGIN IMMEDIATE`` transaction (SQLite's write lock), so two concurrent
requests can never roll the recorded size back, even across processes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import StorageError

__all__ = ["Cosigned", "WitnessStore"]

FORMAT = "evidence-witness/1"

_SCHEMA = [
    "create table meta (key text primary key, value text not null)",
    "create table logs (origin text not null, vkey text not null, added text not null, "
    "primary key (origin, vkey))",
    "create table latest (origin text primary key, size integer not null, "
    "root blob not null, time text not null)",
    "create table cosigned (id integer primary key autoincrement, origin text not null, "
    "size integer not null, root blob not null, time text not null, note text not null)",
    "create table refused (id integer primary key autoincrement, origin text not null, "
    "time text not null, status integer not null, reason text not null, request text not null)",
]
_APPEND_ONLY = ("cosigned", "refused")


@dataclass(frozen=True, slots=True)
class Cosigned:
    """The latest checkpoint a witness cosigned for one origin."""

    origin: str
    size: int
    root: bytes
    time: str


class WitnessStore:
    """Witness state in one SQLite file (WAL, synchronous=FULL)."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        self._local = threading.local()
        if create:
            if path.exists():
                raise StorageError(f"witness database: {path} already exists")
            path.parent.mkdir(parents=True, exist_ok=True)
            with self.transaction() as c:
                for stmt in _SCHEMA:
                    c.execute(stmt)
                for t in _APPEND_ONLY:
                    for action in ("update", "delete"):
                        c.execute(
                            f"create trigger {t}_no_{action} before {action} on {t} "
                            f"begin select raise(abort, '{t} is append-only'); end"
                        )
                c.execute("insert into meta values ('format', ?)", (FORMAT,))
        else:
            if not path.exists():
                raise StorageError(f"witness database: {path} does not exist")
            try:
                row = self._conn().execute("select value from meta where key='format'").fetchone()
            except sqlite3.DatabaseError as e:
                raise StorageError(f"witness database: {path} is not a witness ({e})") from e
            if row is None or row[0] != FORMAT:
                raise StorageError(f"witness database: {path} is not a witness ({FORMAT})")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
                conn.execute("pragma journal_mode=wal")
                conn.execute("pragma synchronous=full")
                conn.execute("pragma busy_timeout=30000")
            except sqlite3.DatabaseError as e:
                raise StorageError(f"witness database: cannot open {self.path} ({e})") from e
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds SQLite's write lock from its start."""
        conn = self._conn()
        try:
            conn.execute("begin immediate")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        except sqlite3.DatabaseError as e:
            raise StorageError(f"witness database: {e}") from e

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- followed logs ---------------------------------------------------
    def follow(self, origin: str, vkey: str, time: str) -> bool:
        """Add a log key; return False if it was already followed."""
        with self.transaction() as c:
            cur = c.execute(
                "insert into logs values (?, ?, ?) on conflict do nothing", (origin, vkey, time)
            )
            return cur.rowcount == 1

    def log_keys(self, origin: str) -> list[str]:
        cur = self._conn().execute(
            "select vkey from logs where origin = ? order by vkey", (origin,)
        )
        return [r[0] for r in cur]

    def logs(self) -> list[tuple[str, str]]:
        cur = self._conn().execute("select origin, vkey from logs order by origin, vkey")
        return [(r[0], r[1]) for r in cur]

    # -- state -----------------------------------------------------------
    @staticmethod
    def latest_in(c: sqlite3.Connection, origin: str) -> Cosigned | None:
        row = c.execute(
            "select origin, size, root, time from latest where origin = ?", (origin,)
        ).fetchone()
        return None if row is None else Cosigned(row[0], row[1], bytes(row[2]), row[3])

    def latest(self, origin: str) -> Cosigned | None:
        return self.latest_in(self._conn(), origin)

    @staticmethod
    def record_cosigned(c: sqlite3.Connection, cp: Cosigned, note: str) -> None:
        c.execute(
            "insert into latest values (?, ?, ?, ?) on conflict (origin) do update set "
            "size = excluded.size, root = excluded.root, time = excluded.time",
            (cp.origin, cp.size, cp.root, cp.time),
        )
        c.execute(
            "insert into cosigned (origin, size, root, time, note) values (?, ?, ?, ?, ?)",
            (cp.origin, cp.size, cp.root, cp.time, note),
        )

    def record_refusal(
        self, origin: str, time: str, status: int, reason: str, request: str
    ) -> None:
        with self.transaction() as c:
            c.execute(
                "insert into refused (origin, time, status, reason, request) "
                "values (?, ?, ?, ?, ?)",
                (origin, time, status, reason, request),
            )

    def refusals(self, origin: str | None = None) -> list[tuple[str, str, int, str]]:
        """``(origin, time, status, reason)`` of recorded refusals, oldest first."""
        sql = "select origin, time, status, reason from refused"
        params: tuple[str, ...] = ()
        if origin is not None:
            sql += " where origin = ?"
            params = (origin,)
        cur = self._conn().execute(sql + " order by id", params)
        return [(r[0], r[1], r[2], r[3]) for r in cur]

    def count_cosigned(self, origin: str) -> int:
        row = (
            self._conn()
            .execute("select count(*) from cosigned where origin = ?", (origin,))
            .fetchone()
        )
        return int(row[0])
