"""The ``publications`` and renewal tables on both backends: contract, append-only, migration.

Runs on the ``ledger`` fixture of ``tests/conftest.py`` (SQLite and PostgreSQL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from anchoring_support import deposit

from ledger.core import Ledger
from ledger.storage import open_store
from ledger.storage.base import Publication, RenewalBatch, RenewalRow


@contextmanager
def raw(url: str) -> Iterator[Any]:
    """A plain autocommit driver connection (``?`` placeholders not needed here)."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()
    else:
        pg = psycopg.connect(url, autocommit=True)
        try:
            yield pg
        finally:
            pg.close()


def test_every_unanchored_checkpoint_is_published_as_sealed(ledger: Ledger) -> None:
    deposit(ledger, 300)
    last = ledger.seal(batch_max=100)
    sealed = ledger.store.checkpoints()
    pubs = ledger.store.publications()
    assert [p.size for p in pubs] == [c.size for c in sealed] == [0, 100, 200, 300]
    assert [p.checkpoint_row() for p in pubs] == sealed
    assert all(p.token is None for p in pubs)
    assert ledger.latest_checkpoint() == last == sealed[-1]
    assert ledger.checkpoint_token(200) is None
    assert ledger.store.publication(150) is None
    assert ledger.store.latest_publication() == pubs[-1]


def test_publishing_a_size_twice_is_refused_quietly(ledger: Ledger) -> None:
    deposit(ledger, 3)
    ledger.seal()
    pub = ledger.store.latest_publication()
    assert pub is not None
    again = Publication(pub.size, pub.root, pub.note + "extra", pub.time, b"token")
    assert ledger.store.publish(again) is False
    assert ledger.store.latest_publication() == pub


def test_publications_are_append_only_in_the_database(ledger: Ledger) -> None:
    deposit(ledger, 2)
    ledger.seal()
    url = ledger.config.database_url
    statements = [
        "update publications set note = 'x'",
        "update publications set token = null where size = 2",
        "delete from publications where size = 2",
        "delete from publications",
    ]
    if ledger.store.kind == "postgresql":
        statements.append("truncate publications")
    with raw(url) as db:
        for stmt in statements:
            with pytest.raises(Exception, match="append-only"):
                db.execute(stmt)
        rows = db.execute("select count(*) from publications").fetchone()
        assert rows[0] == 2


def test_databases_from_before_anchoring_are_migrated(ledger: Ledger) -> None:
    """A database without ``publications`` (made before anchoring existed) gets the table,
    its triggers, and every existing checkpoint published, the first time it is opened."""
    deposit(ledger, 5)
    ledger.seal()
    deposit(ledger, 5, "more")
    ledger.seal()
    sealed = ledger.store.checkpoints()
    url = ledger.config.database_url
    home = ledger.config.home
    ledger.close()
    with raw(url) as db:
        if url.startswith("sqlite:"):
            for action in ("update", "delete"):
                db.execute(f"drop trigger publications_no_{action}")
            db.execute("drop table publications")
        else:
            db.execute("drop table publications cascade")
        # Such databases predate schema versions too (they are version 1).
        db.execute("delete from meta where key = 'schema_version'")
    store = open_store(url)
    try:
        assert [p.checkpoint_row() for p in store.publications()] == sealed
    finally:
        store.close()
    led = Ledger.open(home)
    try:
        assert led.latest_checkpoint() == sealed[-1]
        with raw(url) as db, pytest.raises(Exception, match="append-only"):
            db.execute("delete from publications")
    finally:
        led.close()


def test_renewals_contract_and_append_only(ledger: Ledger) -> None:
    """``renewal_batches`` and ``renewals`` (timestamp renewal, ledger.renewal):
    read back as written, a row another run wrote first is skipped, and the
    database refuses to change or delete either."""
    batch = RenewalBatch(
        batch="ab" * 32,
        time="2026-01-01T00:00:00.000000Z",
        algorithm="sha256",
        token=b"\x30\x03\x02\x01\x01",
        gen_time="2026-01-01T00:00:01.000000Z",
        not_after="2027-01-01T00:00:00.000000Z",
        tsa="CN=TSA 2",
        hash_tree_renewal=False,
    )
    rows = [
        RenewalRow(size=7, line=0, seq=1, chain=0, batch=batch.batch, hashtree=b"\x30\x00"),
        RenewalRow(size=3, line=1, seq=1, chain=0, batch=batch.batch, hashtree=b""),
    ]
    assert ledger.store.add_renewal(batch, rows) == 2
    assert ledger.store.renewal_batches() == [batch]
    assert ledger.store.renewals() == sorted(rows, key=lambda r: (r.size, r.line, r.seq))
    assert ledger.store.renewals(7) == [rows[0]]
    other = replace(batch, batch="cd" * 32, hash_tree_renewal=True)
    again = [replace(rows[0], batch=other.batch), replace(rows[0], seq=2, batch=other.batch)]
    assert ledger.store.add_renewal(other, again) == 1  # (7, 0, 1) was there first
    assert [r.seq for r in ledger.store.renewals(7)] == [1, 2]
    assert ledger.store.renewal_batches()[1].hash_tree_renewal
    statements = [
        "update renewals set chain = 5",
        "delete from renewals",
        "update renewal_batches set tsa = 'x'",
        "delete from renewal_batches",
    ]
    with raw(ledger.config.database_url) as db:
        for stmt in statements:
            with pytest.raises(Exception, match="append-only"):
                db.execute(stmt)
