"""PostgreSQL backend: many API processes and hosts against one database.

Sequencing: every append transaction first takes a transaction-scoped
advisory lock (``pg_advisory_xact_lock``), then reads the head and inserts.
The lock is held until COMMIT, so the next appender only reads the head after
the previous group is committed: indices are contiguous and commit order is
index order, across any number of connections and hosts.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from ledger.errors import IntegrityError, StorageError, StorageFull
from ledger.storage.base import FORMAT
from ledger.storage.search import SearchSql
from ledger.storage.sql import Dialect, SqlStore

__all__ = ["PostgresDialect", "PostgresStore", "pg_error"]

_APPEND_ONLY_FN = """create or replace function ledger_append_only() returns trigger
    language plpgsql as $$ begin raise exception '% is append-only', tg_table_name; end $$"""


# Title search: how many grams of a query go to the index (the rarest; a few
# narrow the candidates the heap must recheck), above what share of titles
# even the rarest is not worth the index, and how long the planner's gram
# statistics are reused.
_SEARCH_TOKENS = 3
_TOKEN = re.compile(r"[0-9a-f]{1,6}x[0-9a-f]{1,6}")
_SCAN_ABOVE = 0.2
_STATS_MAX_AGE = 300.0


@functools.lru_cache(maxsize=512)
def _placeholders(query: str) -> bytes:
    # Statements are written with "?" placeholders and hold no literal "?".
    return query.replace("?", "%s").encode()


class PostgresDialect(Dialect):
    """A database (schema from the URL's search_path); one connection per thread."""

    kind = "postgresql"
    int64 = "bigint"
    bytes_type = "bytea"
    float_type = "double precision"
    epoch_now = "extract(epoch from clock_timestamp())"
    epoch_statement = "extract(epoch from statement_timestamp())::double precision"
    greatest = "greatest"

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._freq: tuple[float, dict[str, float]] | None = None

    def conn(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            try:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            except psycopg.Error as e:
                raise StorageError(f"database: cannot connect ({e})") from e
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def sql(self, query: str) -> bytes:
        return _placeholders(query)

    @contextmanager
    def write(self, conn: psycopg.Connection[Any], locks: Sequence[int]) -> Iterator[None]:
        try:
            with conn.transaction():
                for lock in locks:
                    conn.execute("select pg_advisory_xact_lock(%s)", (lock,))
                yield
        except psycopg.Error as e:
            raise pg_error(e) from e

    @contextmanager
    def snapshot(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        try:
            with conn.transaction():
                conn.execute("set transaction isolation level repeatable read, read only")
                yield
        except psycopg.Error as e:
            raise StorageError(f"database: {e}") from e

    def insert_rows(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
    ) -> None:
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        stmt = sql.SQL("copy {} ({}) from stdin").format(sql.Identifier(table), cols)
        with conn.cursor() as cur, cur.copy(stmt) as cp:
            for r in rows:
                cp.write_row(r)

    def executemany(
        self, conn: psycopg.Connection[Any], query: str, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        with conn.cursor() as cur:
            cur.executemany(_placeholders(query), rows)

    def stream(
        self, conn: psycopg.Connection[Any], query: str, size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        with conn.cursor(name="ledger_stream") as cur:
            cur.execute(_placeholders(query))
            while chunk := cur.fetchmany(size):
                yield chunk

    def has_table(self, conn: psycopg.Connection[Any], name: str) -> bool:
        row = conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()
        return bool(row and row[0])

    def has_column(self, conn: psycopg.Connection[Any], table: str, column: str) -> bool:
        row = conn.execute(
            "select 1 from information_schema.columns where table_schema = current_schema() "
            "and table_name = %s and column_name = %s",
            (table, column),
        ).fetchone()
        return row is not None

    def append_only(self, table: str) -> list[str]:
        return [
            _APPEND_ONLY_FN,
            f"create trigger {table}_append_only before update or delete on {table} "
            "for each row execute function ledger_append_only()",
            f"create trigger {table}_no_truncate before truncate on {table} "
            "for each statement execute function ledger_append_only()",
        ]

    def suspend_append_only(self, table: str) -> tuple[list[str], list[str]]:
        trigger = f"{table}_append_only"
        return (
            [f"alter table {table} disable trigger {trigger}"],
            [f"alter table {table} enable trigger {trigger}"],
        )

    def storage_bytes(self, conn: psycopg.Connection[Any], tables: Sequence[str]) -> int:
        total = 0
        for t in tables:
            row = conn.execute("select pg_total_relation_size(%s::regclass)", (t,)).fetchone()
            total += int(row[0]) if row else 0
        return total

    def execute_unprepared(
        self, conn: psycopg.Connection[Any], query: str, params: Sequence[Any]
    ) -> Any:
        # psycopg prepares a statement after a few runs; its generic plan would
        # not see, say, that a rights holder's list is long or a gram rare.
        return conn.execute(_placeholders(query), tuple(params), prepare=False)

    def search_ddl(self) -> list[str]:
        # A GIN index over the grams array: built in, no extension to install.
        return [
            "create table evidence_search (idx bigint primary key, norm text not null, "
            "grams text[] not null)",
            "create index evidence_search_grams on evidence_search using gin (grams)",
        ]

    def search_insert(
        self, conn: psycopg.Connection[Any], rows: Sequence[tuple[int, str, str]]
    ) -> None:
        self.insert_rows(
            conn,
            "evidence_search",
            ("idx", "norm", "grams"),
            [(i, norm, grams.split()) for i, norm, grams in rows],
        )

    def title_search(self, tokens: Sequence[str]) -> SearchSql:
        source = "evidence e join evidence_search s on s.idx = e.idx"
        if not tokens:
            return SearchSql(source, "1 = 1", (), "e.idx", "s.idx")
        # GIN reads the whole posting list of every token it is given: a
        # common bigram (a word in every title) costs as much as the scan it
        # replaces. The rarest few, by the planner's own statistics, find the
        # candidates; the substring check on ``norm`` does the rest.
        # When even the rarest is in most titles, reading titles in log order
        # finds a page of matches sooner than any index would.
        freq = self._gram_frequencies()
        ranked = sorted(tokens, key=lambda t: freq.get(t, 0.0))
        if freq.get(ranked[0], 0.0) >= _SCAN_ABOVE:
            return SearchSql(source, "1 = 1", (), "e.idx", "s.idx")
        rarest = ranked[:_SEARCH_TOKENS]
        # The grams go into the statement's text, not its parameters: psycopg
        # prepares a statement run often, and PostgreSQL's generic plan of a
        # prepared ``grams @> $1`` cannot see which grams are rare. They are
        # our own tokens (hex digits and an x), checked here all the same.
        if not all(_TOKEN.fullmatch(t) for t in rarest):
            raise ValueError("search: malformed gram token")
        grams = ", ".join(f"'{t}'" for t in rarest)
        return SearchSql(source, f"s.grams @> array[{grams}]::text[]", (), "e.idx", "s.idx")

    def _gram_frequencies(self) -> dict[str, float]:
        """The most common grams and their frequencies (``pg_stats``, as ANALYZE
        last saw them), read at most every few minutes."""
        cached = self._freq
        if cached is not None and time.monotonic() - cached[0] < _STATS_MAX_AGE:
            return cached[1]
        row = (
            self.conn()
            .execute(
                "select most_common_elems::text::text[], most_common_elem_freqs from pg_stats "
                "where schemaname = current_schema() and tablename = 'evidence_search' "
                "and attname = 'grams'"
            )
            .fetchone()
        )
        freq = dict(zip(row[0], row[1], strict=False)) if row and row[0] else {}
        self._freq = (time.monotonic(), freq)
        return freq

    def error(self, e: Exception) -> Exception | None:
        return pg_error(e) if isinstance(e, psycopg.Error) else None


def pg_error(e: psycopg.Error, where: str = "database") -> StorageError:
    """The ledger error for a PostgreSQL error; SQLSTATE 53100 (``disk_full``:
    a table could not grow) is a full disk, and the transaction was rolled back."""
    if isinstance(e, psycopg.errors.IntegrityError):
        return IntegrityError(f"{where}: {e}")
    if isinstance(e, psycopg.errors.DiskFull) or e.sqlstate == "53100":
        return StorageFull(f"{where}: the disk is full ({e}); nothing was written")
    return StorageError(f"{where}: {e}")


class PostgresStore(SqlStore):
    """Event store in a PostgreSQL database (schema from the URL's search_path)."""

    def __init__(self, url: str, *, create: bool = False) -> None:
        super().__init__(PostgresDialect(url))
        conn = self.d.conn()
        if create:
            if self.d.has_table(conn, "meta"):
                raise StorageError("database: a ledger already exists in this database")
            try:
                self._create()
            except StorageError as e:
                if isinstance(e.__cause__, psycopg.errors.DuplicateTable):
                    raise StorageError("database: a ledger already exists in this database") from e
                raise StorageError(f"database: cannot create the ledger ({e.__cause__})") from e
        else:
            try:
                row = conn.execute("select value from meta where key = 'format'").fetchone()
            except psycopg.Error as e:
                raise StorageError("database: not an evidence ledger (no meta table)") from e
            if row is None or row[0] != FORMAT:
                raise StorageError(f"database: not an evidence ledger ({FORMAT})")
            self._open()
