"""Helpers for the ledger tests: drafts, an independent chain check, raw SQL.

``raw_db`` opens the ledger's database with the plain driver (sqlite3 or
psycopg), outside the ledger's code, so that tests can attack it the way an
operator with a database shell could.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from ledger.core import Ledger
from ledger.events import Draft, evidence_deposited
from ledger.storage import Store
from verifier.merkle import leaf_hash
from verifier.record import GENESIS_PREV, commitment, decode_record

LOG_TABLES = ("events", "private", "checkpoints")


ORIGIN = "ledger.test/log"  # the origin the conftest ledger fixture uses


def hash_drafts(n: int) -> list[Draft]:
    """``n`` hash-only evidence drafts with random digests."""
    return [evidence_deposited(kind="hash", sha256=os.urandom(32).hex()) for _ in range(n)]


def check_log(store: Store, drafts: dict[int, Draft] | None = None) -> list[bytes]:
    """Check the whole log independently of ``ledger.audit``; return its leaf hashes.

    Indices are exactly 0..size-1, each record decodes strictly and names its
    index, ``prev`` chains to the previous leaf hash (64 zeros for entry 0), the
    stored leaf hash is RFC 9162's, and the stored salt and private body open the
    commitment. With ``drafts`` (index -> draft) the stored private body and
    public body must be the draft's.
    """
    size = store.size()
    rows = store.entries(0, size)
    privs = store.privates(0, size)
    assert [r[0] for r in rows] == list(range(size))
    assert [p[0] for p in privs] == list(range(size))
    prev = GENESIS_PREV
    last_time = ""
    hashes = []
    for (idx, type_, time, leaf, stored_hash), (_, salt, body) in zip(rows, privs, strict=True):
        rec = decode_record(leaf)
        assert rec.index == idx
        assert rec.type == type_
        assert rec.time == time >= last_time
        assert rec.prev == prev, f"hash chain broken at {idx}"
        assert stored_hash == leaf_hash(leaf)
        assert commitment(salt, body) == rec.commitment
        if drafts is not None and idx in drafts:
            d = drafts[idx]
            assert body == d.private_json
            assert json.loads(body) == d.private
            assert rec.body == d.body
            assert rec.commitment == d.commitment
        prev, last_time = stored_hash.hex(), time
        hashes.append(stored_hash)
    return hashes


def db_url(led: Ledger) -> str:
    return led.config.database_url


@contextmanager
def raw_db(url: str, bypass_triggers: bool = False) -> Iterator[RawDb]:
    """A plain driver connection to the ledger's database, in autocommit mode.

    With ``bypass_triggers`` the append-only triggers are out of the way: on
    SQLite they are dropped from the schema, on PostgreSQL the session runs with
    ``session_replication_role = replica``, which skips ordinary triggers.
    """
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            if bypass_triggers:
                names = conn.execute("select name from sqlite_master where type = 'trigger'")
                for (name,) in list(names):
                    conn.execute(f"drop trigger {name}")
            yield RawDb(conn, "sqlite")
        finally:
            conn.close()
    else:
        pg = psycopg.connect(url, autocommit=True)
        try:
            if bypass_triggers:
                pg.execute("set session_replication_role = replica")
            yield RawDb(pg, "postgresql")
        finally:
            pg.close()


class RawDb:
    """``execute`` with ``?`` placeholders on either driver; blobs come back as bytes."""

    def __init__(self, conn: Any, kind: str) -> None:
        self.conn = conn
        self.kind = kind
        # The tiles' inner-node column (the same name on both databases).
        self.inner = "inner_nodes"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.kind == "postgresql":
            sql = sql.replace("?", "%s")
        cur = self.conn.execute(sql, tuple(params))
        if cur.description is None:
            return []
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in cur]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the append-only tables, in key order."""
        keys = {"events": "idx", "private": "idx", "checkpoints": "size"}
        return {t: self.execute(f"select * from {t} order by {keys[t]}") for t in LOG_TABLES}
