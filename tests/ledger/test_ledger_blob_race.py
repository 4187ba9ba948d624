"""Two deposits of the same file at once, one of them failing after it published
the file: the other deposit's file stays, on both blob stores.

Real threads through the deposit service, a real sequencer and a real lock:
another connection holds the ledger's append lock (SQLite's write lock, or
PostgreSQL's advisory lock) while

1. a hash deposit takes the sequencer and waits for the lock;
2. a deposit by a revoked account (its account was revoked while it
   uploaded) publishes the file and queues behind it;
3. a deposit of the same file by an active account publishes it too (on the
   filesystem, over the first copy; on PostgreSQL, keeping the first copy)
   and queues;
4. a bulk of hash deposits queues after them, so that the second file
   deposit's commit takes a while.

Once the lock is released the log refuses the revoked account's deposit
inside the append (its group is committed again without it) and that
deposit cleans up while the active account's deposit is being committed:
the clean-up must see that the file is needed and keep it.
"""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from ledger.accounts import create_account, revoke_account
from ledger.core import Ledger
from ledger.errors import StateConflict
from ledger.events import evidence_deposited
from ledger.services import Services
from ledger.services.policy import Actor
from ledger.storage.sql import SEQUENCE

FILLER = 20_000
"""Hash deposits queued after the file deposits (their commit takes a while)."""


@contextmanager
def append_lock(ledger: Ledger, store_url: str) -> Iterator[None]:
    """Hold the ledger's append lock from another connection until the block ends."""
    if store_url.startswith("sqlite:///"):
        conn = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("begin immediate")
        try:
            yield
        finally:
            conn.execute("rollback")
            conn.close()
        return
    with psycopg.connect(store_url, autocommit=True) as pg:
        pg.execute("select pg_advisory_lock(%s)", (SEQUENCE,))
        try:
            yield
        finally:
            pg.execute("select pg_advisory_unlock(%s)", (SEQUENCE,))


class Run(threading.Thread):
    """A call on its own thread, keeping its result or error."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._fn = fn
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as e:
            self.error = e


def pins(ledger: Ledger, store_url: str) -> int:
    """Pins left in the blob store (counted outside the ledger's code)."""
    if ledger.blobs.kind == "fs":
        tmp = ledger.config.home / "blobs" / "tmp"
        return len(list(tmp.glob("pin-*"))) if tmp.exists() else 0
    with psycopg.connect(store_url) as conn:
        row = conn.execute("select count(*) from blob_pins").fetchone()
    assert row is not None
    return int(row[0])


def wait_until(cond: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_failing_deposit_keeps_the_file_a_concurrent_deposit_needs(
    ledger: Ledger, store_url: str
) -> None:
    services = Services(ledger)
    gone = create_account(ledger, "rights_holder", "revoked-meanwhile")
    kept = create_account(ledger, "rights_holder", "active")
    revoke_account(ledger, gone.account_id)
    revoked = Actor(gone.account_id, "rights_holder", "revoked-meanwhile")
    active = Actor(kept.account_id, "rights_holder", "active")
    data = os.urandom(700_000)

    def deposit(actor: Actor) -> Callable[[], Any]:
        return lambda: services.deposits.deposit_file(
            actor, io.BytesIO(data), title="same file", file_name="same.bin"
        )

    sha256 = hashlib.sha256(data).hexdigest()
    with append_lock(ledger, store_url):
        first = Run(lambda: services.deposits.deposit_hash(active, os.urandom(32).hex()))
        first.start()
        time.sleep(0.3)  # (1) the sequencer waits for the lock with this deposit
        failing = Run(deposit(revoked))
        failing.start()
        wait_until(lambda: ledger.blobs.exists(sha256), "the first upload was not published")
        time.sleep(0.3)  # (2) queued
        winning = Run(deposit(active))
        winning.start()
        time.sleep(1.0)  # (3) published and queued
        bulk = [evidence_deposited(kind="hash", sha256=os.urandom(32).hex()) for _ in range(FILLER)]
        filler = ledger.sequencer.submit(bulk)  # (4)
        time.sleep(0.3)
        assert failing.is_alive() and winning.is_alive()
    for t in (first, failing, winning):
        t.join(120)
    filler.result(120)

    assert first.error is None and winning.error is None, (first.error, winning.error)
    assert isinstance(failing.error, StateConflict), failing.error
    assert "was revoked" in str(failing.error)
    receipt = winning.result
    # The file the log names is stored, whole, and nothing is left pinned.
    assert ledger.blobs.exists(sha256)
    assert ledger.blobs.verify(sha256).sha256 == sha256
    record = services.evidence.get(active, receipt.evidence_id)
    assert b"".join(services.evidence.content(active, record.evidence_id).chunks) == data
    assert pins(ledger, store_url) == 0
    # Exactly one deposit of the file, by the active account.
    rows = ledger.store.query("select owner from evidence where sha256 = ?", (sha256,))
    assert [r["owner"] for r in rows] == [kept.account_id]


def test_a_failing_deposit_alone_removes_its_file(ledger: Ledger, store_url: str) -> None:
    """Without a concurrent deposit of the same content, nothing of it stays."""
    services = Services(ledger)
    gone = create_account(ledger, "rights_holder", "revoked-meanwhile")
    revoke_account(ledger, gone.account_id)
    data = os.urandom(300_000)
    with pytest.raises(StateConflict, match="was revoked"):
        services.deposits.deposit_file(
            Actor(gone.account_id, "rights_holder", "revoked-meanwhile"), io.BytesIO(data)
        )
    assert not ledger.blobs.exists(hashlib.sha256(data).hexdigest())
    assert pins(ledger, store_url) == 0
    assert ledger.store.query("select 1 from evidence") == []
