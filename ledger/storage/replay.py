"""The projection tables rebuilt from the log in a private, temporary SQLite
file, for the audit to compare with the stored ones.

The same handlers that fill the projections on every append
(:mod:`ledger.projections`) fill these tables, so a clean store and its
replay hold the same rows. The file lives in a temporary directory that is
removed on :meth:`ProjectionReplay.close`; rows are written and read in
batches, so memory stays bounded whatever the size of the log.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from ledger.errors import AuditError
from ledger.projections import PROJECTIONS, Op, Update
from ledger.storage.base import insert_columns, op_batches

__all__ = ["ProjectionReplay"]


class ProjectionReplay:
    """Projection tables replayed from log operations (a context manager)."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="ledger-audit-", dir=directory))
        self._conn = sqlite3.connect(self._dir / "replay.db", isolation_level=None)
        # A scratch file: no journal, no fsync; it is thrown away afterwards.
        self._conn.execute("pragma journal_mode=off")
        self._conn.execute("pragma synchronous=off")
        for table, cols in PROJECTIONS.items():
            body = ", ".join(f"{n} {decl.replace('bigint', 'integer')}" for n, decl in cols)
            self._conn.execute(f"create table {table} ({body})")
            self._conn.execute(f"create index {table}_idx on {table} (idx)")

    def __enter__(self) -> ProjectionReplay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def apply(self, ops: Iterable[Op]) -> None:
        """Apply one batch of operations, in order, in one transaction."""
        conn = self._conn
        conn.execute("begin")
        try:
            for batch in op_batches(list(ops)):
                if isinstance(batch, Update):
                    sets = ", ".join(f"{k} = ?" for k in batch.values)
                    guard = f" and {batch.if_null} is null" if batch.if_null else ""
                    conn.execute(
                        f"update {batch.table} set {sets} where {batch.key} = ?{guard}",  # noqa: S608
                        (*batch.values.values(), batch.key_value),
                    )
                else:
                    self._insert(*batch)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def _insert(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        cols = insert_columns(table)
        query = f"insert into {table} values ({', '.join('?' * len(cols))})"  # noqa: S608
        self._conn.execute("savepoint batch")
        try:
            self._conn.executemany(query, rows)
            self._conn.execute("release batch")
        except sqlite3.IntegrityError:
            self._conn.execute("rollback to batch")
            at = cols.index("idx")
            for row in rows:  # find the row that conflicts, to name its entry
                try:
                    self._conn.execute(query, row)
                except sqlite3.IntegrityError as e:
                    raise AuditError(
                        f"entry {row[at]}: replaying it into {table} conflicts with an "
                        f"earlier entry ({cols[0]} {row[0]!r} twice)",
                        row[at],
                    ) from e

    def rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        """Every replayed row of ``table`` in PROJECTIONS column order, by ``idx``."""
        cols = ", ".join(insert_columns(table))
        cur = self._conn.execute(f"select {cols} from {table} order by idx")  # noqa: S608
        while batch := cur.fetchmany(2000):
            yield from batch
