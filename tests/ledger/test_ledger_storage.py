"""The storage contract, run against every backend (SQLite and PostgreSQL).

Like eventsourcing's recorder tests: the same assertions for each store,
including a race of two writer processes and append-only enforcement by the
database itself.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ledger_helpers import LOG_TABLES, check_log, hash_drafts, raw_db

from ledger.audit import audit
from ledger.core import Ledger
from ledger.errors import IntegrityError, StorageError
from ledger.events import account_registered, evidence_deposited, key_registered
from ledger.services import OPERATOR, Receipt, Services
from ledger.storage import create_store, open_store
from ledger.storage.base import FORMAT
from ledger.storage.migrations import LATEST, MIGRATIONS
from ledger.storage.sql import SEQUENCE as SEQUENCE_LOCK
from verifier.note import VerifierKey
from verifier.record import GENESIS_PREV, decode_record

APPENDER = Path(__file__).with_name("appender_proc.py")


def test_appends_are_contiguous_from_zero_with_a_hash_chain(store_url: str) -> None:
    store = create_store(store_url)
    try:
        assert store.size() == 0
        assert store.append([]) == []
        groups = [hash_drafts(1), hash_drafts(3), [account_registered(role="notary", name="N")]]
        groups.append(hash_drafts(250))
        drafts = {}
        expected = 0
        for group in groups:
            appended = store.append(group)
            assert [a.index for a in appended] == list(range(expected, expected + len(group)))
            for a, d in zip(appended, group, strict=True):
                assert a.type == d.type
                assert a.ref == d.ref
                drafts[a.index] = d
            expected += len(group)
        assert store.size() == expected

        hashes = check_log(store, drafts)
        first = decode_record(store.entries(0, 1)[0][3])
        assert first.prev == GENESIS_PREV == "0" * 64
        second = decode_record(store.entries(1, 2)[0][3])
        assert second.prev == hashes[0].hex()
        # Entries of one group share a time; the next group never goes back.
        times = [e[2] for e in store.entries(0, expected)]
        assert times == sorted(times)
        assert len(set(times[1:4])) == 1
    finally:
        store.close()

    again = open_store(store_url)
    try:
        assert again.size() == expected
        assert check_log(again, drafts) == hashes
    finally:
        again.close()


def test_reads_of_tiles_checkpoints_and_meta(ledger: Ledger) -> None:
    store = ledger.store
    assert store.get_meta("format") == FORMAT
    assert store.get_meta("no such key") is None
    ledger.append(hash_drafts(600))
    ledger.seal(batch_max=256)
    cps = store.checkpoints()
    assert [cp.size for cp in cps] == [0, 256, 512, 600]
    assert store.latest_checkpoint() == cps[-1]
    assert store.checkpoint(512) == cps[2]
    assert store.checkpoint(300) is None
    tiles = list(store.all_tiles())
    shapes = [(t.level, t.index, t.width) for t in tiles]
    assert shapes == [(0, 0, 256), (0, 1, 256), (0, 2, 88), (1, 0, 2)]
    assert store.tiles([(0, 1), (0, 9), (1, 0)]) == {(0, 1): tiles[1], (1, 0): tiles[3]}
    assert store.entries(598, 700)[-1][0] == 599
    assert store.entries(600, 700) == []
    assert [p[0] for p in store.privates(10, 13)] == [10, 11, 12]
    assert store.storage_bytes() > 600 * 200
    stats = Services(ledger).stats()
    assert (stats["size"], stats["checkpoint_size"], stats["pending"]) == (600, 600, 0)
    assert stats["backend"] == store.kind


def test_creating_twice_is_refused(store_url: str) -> None:
    create_store(store_url).close()
    with pytest.raises(StorageError):
        create_store(store_url)


@pytest.mark.parametrize("table", LOG_TABLES)
def test_append_only_is_enforced_by_the_database(ledger: Ledger, table: str) -> None:
    ledger.append(hash_drafts(5))
    ledger.seal()
    url = ledger.config.database_url
    with raw_db(url) as db:
        before = db.snapshot()
        assert before[table], f"{table} is empty, nothing to protect"
        key = "size" if table == "checkpoints" else "idx"
        last = before[table][-1][0]
        statements = [
            f"update {table} set {key} = {key} + 1000",
            f"update {table} set {key} = {key} where {key} = {last}",
            f"delete from {table} where {key} = {last}",
            f"delete from {table}",
        ]
        if db.kind == "postgresql":
            statements.append(f"truncate {table}")
            statements.append(f"truncate {table} cascade")
        for stmt in statements:
            with pytest.raises(Exception, match="append-only") as info:
                db.execute(stmt)
            assert type(info.value).__module__.split(".")[0] in {"sqlite3", "psycopg"}
        assert db.snapshot() == before
    # The ledger still works and audits clean.
    ledger.append(hash_drafts(2))
    ledger.seal()
    audit(ledger.store, ledger.verifier_key, ledger.config.origin)


def test_many_threads_are_grouped_and_every_receipt_is_durable(ledger: Ledger, home: Path) -> None:
    threads, per_thread = 16, 40
    start = threading.Barrier(threads)
    receipts: list[Receipt] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                r = Services(ledger).deposits.deposit_hash(
                    OPERATOR, f"{n:02x}{i:062x}", title=f"t{n}-{i}"
                )
                with lock:
                    receipts.append(r)
        except BaseException as e:
            errors.append(e)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    total = threads * per_thread
    assert sorted(r.index for r in receipts) == list(range(total))
    assert 0 < ledger.sequencer.groups < total, "concurrent appends were not grouped"
    ledger.close()

    with Ledger.open(home) as again:
        assert again.store.size() == total
        stored = {e[0]: e[4].hex() for e in again.store.entries(0, total)}
        for r in receipts:
            assert stored[r.index] == r.leaf_hash
            row = Services(again).evidence.get(OPERATOR, r.evidence_id)
            assert row.index == r.index
            assert row.sha256 == r.sha256
            assert row.deposit_no == r.deposit_no
        check_log(again.store)


def test_a_failing_group_does_not_poison_later_appends(ledger: Ledger) -> None:
    first = ledger.append(hash_drafts(3))
    taken = first[0].ref
    dup = evidence_deposited(kind="hash", sha256="ab" * 32, evidence_id=taken)
    with pytest.raises(IntegrityError):
        ledger.append([*hash_drafts(2), dup])
    # Nothing of the failed group was written.
    assert ledger.store.size() == 3
    assert ledger.store.query("select count(*) as n from evidence")[0]["n"] == 3

    later = ledger.append(hash_drafts(4))
    assert [a.index for a in later] == [3, 4, 5, 6]
    ledger.seal()


def test_a_bad_submission_does_not_fail_the_others_in_its_group(ledger: Ledger) -> None:
    """Submissions queued while another writer holds the sequencing lock are
    committed as one group; a conflicting one among them fails alone."""
    taken = ledger.append(hash_drafts(1))[0].ref
    with raw_db(ledger.config.database_url) as db:
        # Another writer holds the log's write lock, as a second process would.
        if db.kind == "sqlite":
            db.execute("begin immediate")
        else:
            db.execute("select pg_advisory_lock(?)", (SEQUENCE_LOCK,))
        first = ledger.sequencer.submit(hash_drafts(1))
        time.sleep(0.2)  # the writer thread is now blocked on the lock with `first`
        futures = []
        for i in range(20):
            if i % 5 == 2:
                d = evidence_deposited(kind="hash", sha256="cd" * 32, evidence_id=taken)
                futures.append((False, ledger.sequencer.submit([d])))
            else:
                futures.append((True, ledger.sequencer.submit(hash_drafts(2))))
        if db.kind == "sqlite":
            db.execute("commit")
        else:
            db.execute("select pg_advisory_unlock(?)", (SEQUENCE_LOCK,))
    assert first.result(timeout=30)[0].index == 1
    ok = []
    for good, fut in futures:
        if good:
            ok.extend(fut.result(timeout=30))
        else:
            with pytest.raises(IntegrityError):
                fut.result(timeout=30)
    assert len(ok) == 16 * 2
    size = ledger.store.size()
    assert size == 2 + len(ok)
    assert [a.index for a in ok] == list(range(2, size))
    check_log(ledger.store)
    ledger.seal(batch_max=4)
    audit(ledger.store, ledger.verifier_key, ledger.config.origin)


def test_asyncio_waiters_are_settled_and_cancelled_ones_are_harmless(ledger: Ledger) -> None:
    """submit_async: waiters grouped in one commit are all settled on their
    loop; a waiter whose caller went away (cancelled) neither loses its entries
    nor stops the writer thread, and neither does a cancelled thread future."""
    taken = ledger.append(hash_drafts(1))[0].ref

    async def scenario() -> tuple[list[int], int]:
        with raw_db(ledger.config.database_url) as db:
            if db.kind == "sqlite":
                db.execute("begin immediate")
            else:
                db.execute("select pg_advisory_lock(?)", (SEQUENCE_LOCK,))
            blocker = ledger.sequencer.submit(hash_drafts(1))
            await asyncio.sleep(0.2)  # the writer is blocked on the lock with `blocker`
            good = [ledger.submit_async(hash_drafts(2)) for _ in range(10)]
            dup = evidence_deposited(kind="hash", sha256="cd" * 32, evidence_id=taken)
            bad = ledger.submit_async([dup])
            gone = ledger.submit_async(hash_drafts(3))
            gone.cancel()
            thread_gone = ledger.sequencer.submit(hash_drafts(3))
            thread_gone.cancel()
            if db.kind == "sqlite":
                db.execute("commit")
            else:
                db.execute("select pg_advisory_unlock(?)", (SEQUENCE_LOCK,))
        blocker.result(timeout=30)
        indices = [a.index for fut in good for a in await asyncio.wait_for(fut, 30)]
        with pytest.raises(IntegrityError):
            await asyncio.wait_for(bad, 30)
        later = await asyncio.wait_for(ledger.submit_async(hash_drafts(1)), 30)
        return indices, later[0].index

    indices, later = asyncio.run(scenario())
    assert indices == sorted(indices) and len(indices) == 20
    # The cancelled callers' entries were committed all the same (durable, not lost).
    assert later == 2 + 20 + 3 + 3
    assert ledger.store.size() == later + 1
    check_log(ledger.store)


def test_closed_ledger_refuses_appends(ledger: Ledger) -> None:
    ledger.append(hash_drafts(1))
    ledger.sequencer.close()
    with pytest.raises(StorageError):
        ledger.append(hash_drafts(1))


def test_two_processes_appending_at_once(ledger: Ledger, home: Path, tmp_path: Path) -> None:
    """Two writer processes, each with its own Ledger on the same home, while a
    third Ledger (this process) keeps sealing."""
    ledger.append([account_registered(role="admin", name="root", account_id="a" * 32)])
    go = tmp_path / "go"
    per_process = 2000
    outs = [tmp_path / f"out{seed}.jsonl" for seed in (1, 2)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(APPENDER), str(home), str(per_process), str(seed), str(go), out],
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed, out in zip((1, 2), outs, strict=True)
    ]
    deadline = time.monotonic() + 120
    while not all(out.exists() for out in outs) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    try:
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            ledger.seal(batch_max=300)
            time.sleep(0.01)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    outputs = []
    for p, out in zip(procs, outs, strict=True):
        _, err = p.communicate(timeout=10)
        assert p.returncode == 0, err
        outputs.append([json.loads(line) for line in out.read_text().splitlines()])

    total = 1 + 2 * per_process
    indices = [r["index"] for out in outputs for r in out]
    assert len(indices) == 2 * per_process
    assert sorted(indices) == list(range(1, total)), "gaps or duplicate indices"
    # Each writer saw its own entries in order, and the writers really raced:
    # neither finished before the other started. (On PostgreSQL they alternate
    # hundreds of times; SQLite's busy handler lets one writer run for long
    # stretches, so only overlap is required.)
    a, b = ([r["index"] for r in out] for out in outputs)
    assert a == sorted(a)
    assert b == sorted(b)
    assert min(a) < max(b)
    assert min(b) < max(a)
    ledger.close()

    with Ledger.open(home) as led:
        assert led.store.size() == total
        stored = {e[0]: e[4].hex() for e in led.store.entries(0, total)}
        for out in outputs:
            for r in out:
                assert stored[r["index"]] == r["leaf_hash"]
        check_log(led.store)
        led.seal(batch_max=1500)
        report = audit(led.store, led.verifier_key, led.config.origin)
        assert report.entries == total
        assert led.latest_checkpoint().size == total
        assert report.checkpoints >= 2


def test_keys_and_accounts_append_through_the_ledger(ledger: Ledger) -> None:
    aid = "b" * 32
    out = ledger.append(
        [
            account_registered(role="notary", name="公证员", account_id=aid),
            key_registered(
                account_id=aid,
                vkey=VerifierKey.from_public_key("n", bytes(32)).to_text(),
                purpose="certificate",
                valid_from="2026-01-01T00:00:00.000000Z",
            ),
        ]
    )
    assert [a.type for a in out] == ["account.registered", "key.registered"]
    assert ledger.store.query("select name from accounts where account_id = ?", (aid,)) == [
        {"name": "公证员"}
    ]
    assert ledger.store.query("select account_id from keys") == [{"account_id": aid}]


# -- one schema, versioned ------------------------------------------------------------


def _columns(url: str) -> set[tuple[str, str]]:
    """(table, column) of every table in a ledger database, read by the plain driver."""
    with raw_db(url) as db:
        if db.kind == "sqlite":
            tables = [
                r[0] for r in db.execute("select name from sqlite_master where type = 'table'")
            ]
            return {(t, r[1]) for t in tables for r in db.execute(f"pragma table_info({t})")}
        rows = db.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = current_schema()"
        )
        return {(str(t), str(c)) for t, c in rows}


@pytest.mark.postgres
def test_both_databases_have_the_same_tables_and_columns(tmp_path: Path, pg_schema: str) -> None:
    from pg_support import pg_url

    lite = "sqlite:///" + str(tmp_path / "ledger.db")
    pg = pg_url(pg_schema)
    for url in (lite, pg):
        create_store(url).close()

    def common(url: str) -> set[tuple[str, str]]:
        # The title search index is each database's own (SQLite: an FTS5 table
        # and its shadow tables); both hold the lowercased title in ``norm``.
        cols = _columns(url)
        assert ("evidence_search", "norm") in cols
        return {(t, c) for t, c in cols if not t.startswith("evidence_search")}

    assert common(lite) == common(pg)
    assert ("tiles", "inner_nodes") in _columns(lite)


def _downgrade(url: str) -> None:
    """Turn a database into what evidence-ledger made before schema versions:
    no publications, inline blobs or capture jobs, SQLite tiles with ``inner``."""
    with raw_db(url, bypass_triggers=True) as db:
        for table in ("publications", "blob_data", "capture_jobs"):
            db.execute(f"drop table {table}")
        db.execute("delete from meta where key = 'schema_version'")
        if db.kind == "sqlite":
            db.execute("alter table tiles rename column inner_nodes to inner")


def test_an_older_database_is_migrated_on_open(ledger: Ledger, home: Path) -> None:
    receipts = list(Services(ledger).deposits.bulk(hash_drafts(300)))
    ledger.seal()
    cp = ledger.latest_checkpoint()
    proof = ledger.inclusion_proof(123, cp.size)
    url = ledger.config.database_url
    ledger.close()
    _downgrade(url)
    assert ("publications", "size") not in _columns(url)
    with Ledger.open(home) as led:
        assert led.store.get_meta("schema_version") == str(LATEST)
        # What the older database sealed counts as published (it was, when sealed).
        assert [p.size for p in led.store.publications()] == [
            c.size for c in led.store.checkpoints()
        ]
        assert led.inclusion_proof(123, cp.size) == proof
        assert led.store.entries(0, 300)[299][4].hex() == receipts[299].leaf_hash
        led.store.put_capture_job("a" * 32, None, "queued", "{}")
        led.append(hash_drafts(2))
        led.seal()
        audit(led.store, led.verifier_key, led.config.origin)
    assert ("tiles", "inner_nodes") in _columns(url)
    with Ledger.open(home) as led:  # opening again changes nothing
        assert led.store.size() == 302


def test_a_newer_database_is_refused_with_one_line(ledger: Ledger, home: Path) -> None:
    url = ledger.config.database_url
    ledger.append(hash_drafts(3))
    ledger.close()
    with raw_db(url) as db:
        db.execute("update meta set value = ? where key = 'schema_version'", (str(LATEST + 1),))
        before = db.snapshot()
    message = (
        f"database: schema version {LATEST + 1} is newer than this evidence-ledger "
        f"supports ({LATEST}); upgrade evidence-ledger"
    )
    with pytest.raises(StorageError) as e:
        open_store(url)
    assert str(e.value) == message
    cli = Path(sys.executable).with_name("evidence-ledger")
    proc = subprocess.run(
        [str(cli), "--home", str(home), "stats"], capture_output=True, text=True, check=False
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", f"error: {message}\n")
    with raw_db(url) as db:
        assert db.snapshot() == before  # refused untouched
        db.execute("update meta set value = 'v2' where key = 'schema_version'")
    with pytest.raises(StorageError, match=r"^database: schema version 'v2' is not a number$"):
        open_store(url)


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1))
    assert all(m.summary for m in MIGRATIONS)
