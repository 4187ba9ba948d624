"""The blob store contract, run against every backend (filesystem, PostgreSQL).

Streamed, hashed with SHA-256 and SM3, content-addressed, limited in size,
constant in memory whatever the size, safe under concurrent writers of the
same content, and leaving nothing behind when a write fails or is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pg_support import pg_url

from ledger.blobs import BlobHold, BlobStore, FsBlobStore, open_blob_store
from ledger.blobs.audit import audit_blobs
from ledger.blobs.postgres import PgBlobStore
from ledger.core import Ledger
from ledger.errors import (
    AuditError,
    ConfigError,
    InvalidInput,
    NotFound,
    StorageError,
    TooLarge,
)
from ledger.events import evidence_deposited
from ledger.services import OPERATOR, Services

SIZE = 5 * 1024 * 1024 + 12345
GIB = 1 << 30


def stream(size: int, seed: int = 1, fail_after: int | None = None) -> Iterator[bytes]:
    """``size`` pseudo-random bytes in chunks of varying length."""
    rnd = random.Random(seed)
    sent = 0
    while sent < size:
        if fail_after is not None and sent >= fail_after:
            raise ConnectionResetError("client went away")
        n = min(size - sent, rnd.randint(1, 256 * 1024))
        yield rnd.randbytes(n)
        sent += n


def digests(chunks: Iterator[bytes]) -> tuple[str, str, int]:
    sha, sm3, n = hashlib.sha256(), hashlib.new("sm3"), 0
    for c in chunks:
        sha.update(c)
        sm3.update(c)
        n += len(c)
    return sha.hexdigest(), sm3.hexdigest(), n


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# -- backends and what they hold ----------------------------------------------------


@pytest.fixture(params=["fs", pytest.param("postgresql", marks=pytest.mark.postgres)])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    store: BlobStore
    if request.param == "fs":
        store = FsBlobStore(tmp_path / "blobs")
    else:
        store = PgBlobStore(pg_url(request.getfixturevalue("pg_schema")))
    try:
        yield store
    finally:
        store.close()


def _pg(store: BlobStore) -> psycopg.Connection:
    assert isinstance(store, PgBlobStore)
    return psycopg.connect(store._pool._url, autocommit=True)


def contents(store: BlobStore) -> dict[str, int]:
    """What the backend holds, counted outside its code: committed blobs,
    staged writes and the stored pieces (files or chunk rows)."""
    if isinstance(store, FsBlobStore):
        files = files_under(store.root)
        staged = [p for p in files if p.parent == store.tmp]
        return {"blobs": len(files) - len(staged), "staged": len(staged), "pieces": len(files)}
    with _pg(store) as conn:
        count = {
            t: conn.execute(f"select count(*) from {t}").fetchone()[0]  # type: ignore[index]
            for t in ("blobs", "blob_uploads", "blob_chunks")
        }
    return {
        "blobs": count["blobs"],
        "staged": count["blob_uploads"],
        "pieces": count["blob_chunks"],
    }


EMPTY = {"blobs": 0, "staged": 0, "pieces": 0}


def age_staged(store: BlobStore, seconds: float) -> None:
    """Make every staged write look untouched for ``seconds``."""
    if isinstance(store, FsBlobStore):
        past = time.time() - seconds
        for p in store.tmp.iterdir():
            os.utime(p, (past, past))
        return
    with _pg(store) as conn:
        conn.execute(
            "update blob_uploads set touched_at = now() - make_interval(secs => %s)", (seconds,)
        )


def age_blob(store: BlobStore, sha256: str, seconds: float) -> None:
    if isinstance(store, FsBlobStore):
        past = time.time() - seconds
        os.utime(store.path_for(sha256), (past, past))
        return
    with _pg(store) as conn:
        conn.execute(
            "update blobs set stored_at = now() - make_interval(secs => %s) where sha256 = %s",
            (seconds, sha256),
        )


def corrupt(store: BlobStore, sha256: str) -> None:
    """Flip one stored byte, as a failing disk or a database shell could."""
    if isinstance(store, FsBlobStore):
        path = store.path_for(sha256)
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 1
        path.write_bytes(bytes(raw))
        return
    with _pg(store) as conn:
        conn.execute(
            "update blob_chunks set data = set_byte(data, 6, get_byte(data, 6) # 1) "
            "where upload_id = (select upload_id from blobs where sha256 = %s) and seq = 1",
            (sha256,),
        )


def current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- the contract ---------------------------------------------------------------------


def test_streamed_put_hashes_and_addresses_by_content(blobs: BlobStore) -> None:
    sha, sm3, _ = digests(stream(SIZE))
    info = blobs.put_stream(stream(SIZE))
    assert (info.sha256, info.sm3, info.size, info.data) == (sha, sm3, SIZE, None)
    assert blobs.exists(sha)
    assert digests(blobs.iter_chunks(sha)) == (sha, sm3, SIZE)
    assert all(len(c) <= 1 << 20 for c in blobs.iter_chunks(sha))
    with blobs.open(sha) as f:
        head = f.read(10)
        rest = f.read()
    assert hashlib.sha256(head + rest).hexdigest() == sha and len(head) == 10
    assert blobs.verify(sha) == info
    held = contents(blobs)
    assert (held["blobs"], held["staged"]) == (1, 0)
    # The same content again is the same blob, stored once.
    assert blobs.put_stream(stream(SIZE)) == info
    assert contents(blobs) == held
    # Empty content is a blob too.
    empty = blobs.put_stream([])
    assert empty.sha256 == hashlib.sha256(b"").hexdigest() and empty.size == 0
    assert b"".join(blobs.iter_chunks(empty.sha256)) == b""


@pytest.mark.slow
def test_one_gib_streams_in_and_out_in_constant_memory(blobs: BlobStore) -> None:
    """1 GiB made on the fly, written and read back: Python allocations stay
    under 8 MiB at peak and the process grows by less than 64 MiB."""
    block = random.Random(7).randbytes(1 << 20)

    def gib() -> Iterator[bytes]:
        for i in range(GIB // len(block)):
            # Vary every block so no two are alike; 64 KiB pieces, as a socket gives them.
            b = i.to_bytes(8, "big") + block[8:]
            for at in range(0, len(b), 65536):
                yield b[at : at + 65536]

    sha, sm3 = hashlib.sha256(), hashlib.new("sm3")
    for piece in gib():
        sha.update(piece)
        sm3.update(piece)
    base = current_rss()
    peak_rss = base

    def watched() -> Iterator[bytes]:
        nonlocal peak_rss
        for n, piece in enumerate(gib()):
            if n % 256 == 0:
                peak_rss = max(peak_rss, current_rss())
            yield piece

    tracemalloc.start()
    try:
        info = blobs.put_stream(watched())
        _, peak_write = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        back = hashlib.sha256()
        for n, chunk in enumerate(blobs.iter_chunks(info.sha256)):
            back.update(chunk)
            if n % 64 == 0:
                peak_rss = max(peak_rss, current_rss())
        _, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.sha256, info.sm3, info.size) == (sha.hexdigest(), sm3.hexdigest(), GIB)
    assert back.hexdigest() == info.sha256
    assert peak_write < 8 << 20, f"write: Python peak {peak_write} bytes for 1 GiB"
    assert peak_read < 8 << 20, f"read: Python peak {peak_read} bytes for 1 GiB"
    assert peak_rss - base < 64 << 20, f"RSS grew by {(peak_rss - base) >> 20} MiB"
    assert blobs.delete(info.sha256)
    assert contents(blobs) == EMPTY


def test_views_and_reused_buffers_hash_what_was_written(
    blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole blocks of immutable chunks go to the hashers as views; a buffer the
    caller refills after ``write`` is copied first, so its old bytes count."""
    import ledger.blobs.fs as fs

    monkeypatch.setattr(fs, "SYNC_EVERY", blobs.block_size)  # flush while writing too
    data = random.Random(7).randbytes(blobs.block_size * 7 + 12345)
    w = blobs.writer()
    w.write(memoryview(data)[:100])
    w.write(memoryview(data)[100 : blobs.block_size * 3 + 7])
    w.write(data[blobs.block_size * 3 + 7 : blobs.block_size * 6])
    buf = bytearray(data[blobs.block_size * 6 :])
    w.write(buf)
    buf[:] = bytes(len(buf))  # the caller reuses its buffer
    info = w.commit()
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.sm3 == hashlib.new("sm3", data).hexdigest()
    assert b"".join(blobs.iter_chunks(info.sha256)) == data


def test_size_limit_is_a_clear_error_and_stores_nothing(blobs: BlobStore) -> None:
    with pytest.raises(TooLarge, match=r"^upload: larger than the limit of 1048576 bytes$"):
        blobs.put_stream(stream(SIZE), limit=1024 * 1024)
    assert contents(blobs) == EMPTY
    w = blobs.writer(limit=1000, inline_max=0)
    w.write(b"x" * 600)
    w.write(b"x" * 600)
    with pytest.raises(TooLarge):
        w.finish()
    assert contents(blobs) == EMPTY
    # Exactly at the limit is accepted.
    assert blobs.put_stream(stream(1000), limit=1000).size == 1000


def test_a_failure_mid_stream_leaves_nothing(blobs: BlobStore) -> None:
    with pytest.raises(ConnectionResetError):
        blobs.put_stream(stream(SIZE, fail_after=3 * 1024 * 1024))
    assert contents(blobs) == EMPTY


def test_a_finished_write_is_invisible_until_committed(blobs: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    with blobs.staged([data]) as w:
        assert w.info is not None and w.info.sha256 == sha
        assert not blobs.exists(sha)
        assert contents(blobs)["staged"] == 1
    assert contents(blobs) == EMPTY  # left uncommitted: aborted
    with blobs.staged([data]) as w:
        w.commit()
    assert blobs.exists(sha) and contents(blobs)["staged"] == 0
    with pytest.raises(InvalidInput, match="write after committed"):
        w.write(b"more")


def test_concurrent_writes_of_the_same_content(blobs: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    sha = hashlib.sha256(data).hexdigest()
    start = threading.Barrier(6)
    infos: list[object] = []

    def put(seed: int) -> None:
        start.wait()
        rnd = random.Random(seed)
        pieces, at = [], 0
        while at < len(data):
            n = rnd.randint(1, 400_000)
            pieces.append(data[at : at + n])
            at += n
        infos.append(blobs.put_stream(pieces))

    threads = [threading.Thread(target=put, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(infos) == 6 and len(set(infos)) == 1
    held = contents(blobs)
    assert (held["blobs"], held["staged"]) == (1, 0)
    if isinstance(blobs, PgBlobStore):
        assert held["pieces"] == 4  # one copy's chunks: the others were dropped
    with blobs.open(sha) as f:
        assert f.read() == data


def test_delete_and_missing_blobs(blobs: BlobStore) -> None:
    info = blobs.put_stream([b"to be deleted" * 100_000])
    assert blobs.delete(info.sha256)
    assert not blobs.exists(info.sha256)
    assert not blobs.delete(info.sha256)
    assert contents(blobs) == EMPTY
    missing = "a" * 64
    with pytest.raises(NotFound, match=f"^blob: {missing} is not stored$"):
        blobs.open(missing)
    with pytest.raises(NotFound):
        list(blobs.iter_chunks(missing))
    assert not blobs.exists(missing)
    for bad in ("../" + "a" * 61, "A" * 64, "a" * 63, "g" * 64, ""):
        for call in (blobs.open, blobs.exists, blobs.delete):
            with pytest.raises(InvalidInput, match=r"^blob: bad sha256$"):
                call(bad)


def test_sweep_removes_stalled_writes_and_old_orphans(blobs: BlobStore) -> None:
    stalled = blobs.writer()
    stalled.write(os.urandom(blobs.block_size + 10))  # one block staged
    assert contents(blobs)["staged"] == 1
    assert blobs.sweep(older_than=3600).partials == 0  # still fresh
    age_staged(blobs, 7200)
    assert blobs.sweep(older_than=3600).partials == 1
    assert contents(blobs) == EMPTY
    # The writer comes back after its upload was swept: a clear error, nothing stored.
    stalled.write(os.urandom(blobs.block_size))
    with pytest.raises(StorageError, match="swept as stalled"):
        stalled.commit()
    assert blobs.sweep(older_than=0).partials in (0, 1)
    assert contents(blobs) == EMPTY

    kept = blobs.put_stream([b"referenced" * 1000])
    orphan = blobs.put_stream([b"orphan" * 1000])
    young = blobs.put_stream([b"young orphan" * 1000])
    for sha in (kept.sha256, orphan.sha256):
        age_blob(blobs, sha, 7200)
    swept = blobs.sweep(older_than=3600, referenced=lambda h: h == kept.sha256)
    assert (swept.partials, swept.orphans) == (0, 1)
    assert blobs.exists(kept.sha256) and blobs.exists(young.sha256)
    assert not blobs.exists(orphan.sha256)
    assert blobs.sweep(older_than=3600).orphans == 0  # no predicate, no orphan sweep


def age_pins(store: BlobStore, seconds: float) -> None:
    """Make every pin look as old as ``seconds`` (a crashed deposit's)."""
    if isinstance(store, FsBlobStore):
        past = time.time() - seconds
        for p in store.tmp.glob("pin-*"):
            os.utime(p, (past, past))
        return
    with _pg(store) as conn:
        conn.execute(
            "update blob_pins set pinned_at = now() - make_interval(secs => %s)", (seconds,)
        )


def publish(store: BlobStore, hold: BlobHold, data: bytes) -> str:
    w = store.writer()
    w.write(data)
    return hold.publish(w).sha256


def test_a_failed_deposit_discards_only_what_nothing_else_needs(blobs: BlobStore) -> None:
    data = os.urandom(300_000)
    nothing = lambda sha256: False  # noqa: E731
    first, second = blobs.hold(nothing), blobs.hold(nothing)
    sha = publish(blobs, first, data)
    assert publish(blobs, second, data) == sha
    assert first.published == [sha]
    # The second deposit still needs the file (it is pinned): kept.
    assert first.settle(failed=True) == 0
    assert blobs.verify(sha).size == len(data)
    assert not blobs.discard(sha, nothing)
    # Its last user fails too: removed, with its pins.
    assert second.settle(failed=True) == 1
    assert contents(blobs) == EMPTY
    # A committed entry refers to it: kept.
    hold = blobs.hold(lambda h: h == sha)
    publish(blobs, hold, data)
    assert hold.settle(failed=True) == 0 and blobs.exists(sha)
    assert blobs.discard(sha, nothing) and contents(blobs) == EMPTY
    # A deposit that succeeded only unpins.
    hold = blobs.hold(nothing)
    publish(blobs, hold, data)
    assert hold.settle(failed=False) == 0 and blobs.exists(sha)
    assert hold.settle(failed=True) == 0 and blobs.exists(sha)  # settled once
    assert contents(blobs)["staged"] == 0
    blobs.delete(sha)
    # Content kept inline is neither pinned nor published.
    hold = blobs.hold(nothing)
    w = blobs.writer(inline_max=1000)
    w.write(b"small")
    assert hold.publish(w).data == b"small" and hold.published == []


def test_a_crashed_deposits_pin_keeps_its_blob_until_the_sweep(blobs: BlobStore) -> None:
    crashed = blobs.hold(lambda h: False)
    sha = publish(blobs, crashed, os.urandom(200_000))  # never settled
    age_blob(blobs, sha, 7200)
    assert blobs.sweep(older_than=3600, referenced=lambda h: False).orphans == 0
    assert not blobs.discard(sha, lambda h: False)
    age_pins(blobs, 7200)
    swept = blobs.sweep(older_than=3600, referenced=lambda h: False)
    assert (swept.partials, swept.orphans) == (1, 1)
    assert contents(blobs) == EMPTY


def test_concurrent_deposits_of_one_file_never_lose_it_while_they_need_it(
    blobs: BlobStore,
) -> None:
    """Threads publish the same content, read it back while pinned, and fail,
    again and again: whoever discards, a deposit that needs the file finds it."""
    data = os.urandom(200_000)
    sha = hashlib.sha256(data).hexdigest()
    lost: list[int] = []
    start = threading.Barrier(4)

    def deposit(n: int) -> None:
        start.wait()
        for _ in range(25):
            hold = blobs.hold(lambda h: False)
            publish(blobs, hold, data)
            if not blobs.exists(sha) or blobs.verify(sha).sha256 != sha:
                lost.append(n)
            hold.settle(failed=True)

    threads = [threading.Thread(target=deposit, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lost == []
    assert contents(blobs) == EMPTY


def test_verify_catches_a_corrupted_blob(blobs: BlobStore) -> None:
    info = blobs.put_stream(stream(3 * 1024 * 1024, seed=5))
    corrupt(blobs, info.sha256)
    with pytest.raises(StorageError, match=f"^blob: {info.sha256} is corrupt"):
        blobs.verify(info.sha256)


# -- the ledger's blob store: choice, inline content, deposits ---------------------------


def test_the_ledger_uses_the_blob_store_of_its_database(ledger: Ledger, backend: str) -> None:
    kind = "fs" if backend == "sqlite" else "postgresql"
    assert ledger.blobs.kind == ledger.config.blobs == kind
    cfg = json.loads((ledger.config.home / "config.json").read_text())
    assert cfg["blobs"] == kind
    receipt = Services(ledger).deposits.deposit_file(
        OPERATOR, io.BytesIO(b"x" * 200_000), title="t"
    )
    assert ledger.blobs.exists(str(receipt.sha256))
    assert (ledger.config.blob_dir.exists()) == (kind == "fs")


@pytest.mark.postgres
def test_blob_store_choice_is_checked(tmp_path: Path, pg_schema: str) -> None:
    with pytest.raises(InvalidInput, match="needs a PostgreSQL database"):
        Ledger.init(tmp_path / "a", "ledger.test/log", blobs="postgresql")
    assert not (tmp_path / "a").exists()
    with pytest.raises(InvalidInput, match="blobs must be one of fs, postgresql"):
        Ledger.init(tmp_path / "a", "ledger.test/log", blobs="s3")
    with pytest.raises(ConfigError, match="unknown blob store 's3'"):
        open_blob_store("s3", tmp_path, "sqlite:///x")
    # On PostgreSQL, files may still be kept on the filesystem.
    with Ledger.init(tmp_path / "b", "ledger.test/log", pg_url(pg_schema), blobs="fs") as led:
        assert led.blobs.kind == "fs"
    home = tmp_path / "b"
    cfg = json.loads((home / "config.json").read_text())
    cfg["blobs"] = "tape"
    (home / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="blobs must be one of fs, postgresql"):
        Ledger.open(home)
    del cfg["blobs"]  # a home from before the choice: files on the filesystem
    (home / "config.json").write_text(json.dumps(cfg))
    with Ledger.open(home) as led:
        assert led.blobs.kind == "fs"


def test_init_blobs_option_on_the_command_line(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("evidence-ledger")
    proc = subprocess.run(
        [str(cli), "--home", str(tmp_path / "h"), "init", "--blobs", "postgresql"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == "error: init: --blobs postgresql needs a PostgreSQL database\n"
    proc = subprocess.run(
        [str(cli), "--home", str(tmp_path / "h"), "init", "--blobs", "fs"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "h" / "config.json").read_text())["blobs"] == "fs"


def test_deposit_file_streams_into_the_blob_store(ledger: Ledger) -> None:
    data = b"".join(stream(3 * 1024 * 1024 + 7, seed=3))
    receipt = Services(ledger).deposits.deposit_file(
        OPERATOR, io.BytesIO(data), title="recording", file_name="a.wav"
    )
    assert receipt.sha256 == hashlib.sha256(data).hexdigest()
    assert receipt.sm3 == hashlib.new("sm3", data).hexdigest()
    assert receipt.size == len(data)
    with ledger.blobs.open(receipt.sha256) as f:
        assert f.read() == data
    row = Services(ledger).evidence.get(OPERATOR, receipt.evidence_id)
    assert (row.kind, row.sha256, row.size) == ("file", receipt.sha256, len(data))


def test_refused_deposits_leave_no_blob(ledger: Ledger) -> None:
    home = ledger.config.home
    ledger.close()
    cfg = json.loads((home / "config.json").read_text())
    cfg["max_upload_bytes"] = 3_000_000
    (home / "config.json").write_text(json.dumps(cfg))
    with Ledger.open(home) as led:
        assert led.config.max_upload_bytes == 3_000_000
        deposits = Services(led).deposits
        with pytest.raises(TooLarge):
            deposits.deposit_file(OPERATOR, io.BytesIO(b"x" * 3_000_001))
        # A title refused after the whole file was read and hashed.
        with pytest.raises(InvalidInput, match="control characters"):
            deposits.deposit_file(OPERATOR, io.BytesIO(b"y" * 2_000_000), title="bad\x00title")
        assert led.store.size() == 0
        assert contents(led.blobs) == EMPTY
        assert deposits.deposit_file(OPERATOR, io.BytesIO(b"x" * 3_000_000)).index == 0


def test_small_content_is_stored_with_its_event(ledger: Ledger) -> None:
    """Inline blobs: a small file's bytes go into the database in the deposit's
    own transaction; reading them back goes through the same BlobStore calls."""
    data = b"small evidence \x00\xff" * 10
    w = ledger.blobs.writer(inline_max=1024)
    w.write(data)
    info = w.commit()
    assert info.data == data and info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.sm3 == hashlib.new("sm3", data).hexdigest()
    assert not ledger.blobs.exists(info.sha256)  # nowhere yet
    assert contents(ledger.blobs) == EMPTY
    draft = evidence_deposited(
        kind="file", sha256=info.sha256, sm3=info.sm3, size=info.size, content=info.data
    )
    again = evidence_deposited(kind="file", sha256=info.sha256, size=info.size, content=data)
    ledger.append([draft, again])  # the same content twice is stored once
    assert ledger.store.inline_blob(info.sha256) == data
    assert ledger.blobs.exists(info.sha256)
    with ledger.blobs.open(info.sha256) as f:
        assert f.read() == data
    assert b"".join(ledger.blobs.iter_chunks(info.sha256)) == data
    assert ledger.blobs.verify(info.sha256).sm3 == info.sm3
    assert not ledger.blobs.delete(info.sha256)  # inline content belongs to its event
    assert ledger.blobs.exists(info.sha256)


def test_inline_content_must_be_the_file_deposited(ledger: Ledger) -> None:
    data = b"x" * 100
    sha = hashlib.sha256(data).hexdigest()
    for kwargs in (
        {"kind": "file", "sha256": sha, "size": 100, "content": b"y" * 100},
        {"kind": "file", "sha256": sha, "size": 99, "content": data},
        {"kind": "hash", "sha256": sha, "size": 100, "content": data},
    ):
        with pytest.raises(InvalidInput):
            evidence_deposited(**kwargs)  # type: ignore[arg-type]
    assert ledger.store.inline_blob(sha) is None


def test_content_over_the_inline_limit_goes_to_the_backend(ledger: Ledger) -> None:
    data = os.urandom(5000)
    w = ledger.blobs.writer(inline_max=4096)
    w.write(data)
    info = w.commit()
    assert info.data is None and contents(ledger.blobs)["blobs"] == 1
    with ledger.blobs.open(info.sha256) as f:
        assert f.read() == data
    empty = ledger.blobs.writer().commit()  # no inline limit: even nothing is stored
    assert empty.data is None and ledger.blobs.exists(empty.sha256)
    assert contents(ledger.blobs)["blobs"] == 2


def test_refused_uploads_through_the_api_leave_no_blob(tmp_path: Path, store_url: str) -> None:
    """A file refused after it was streamed and hashed (a bad title, the size
    limit, a replay of an earlier request) is never published."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api_v1"))
    from v1_support import service

    big = os.urandom(300_000)
    with service(tmp_path / "home", store_url, max_upload_bytes=1_000_000) as svc:
        h = svc.auth("rights_holder")
        r = svc.client.post(
            "/v1/evidence", data={"title": "bad\x01title"}, files=[("file", ("a", big))], headers=h
        )
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "control characters" in r.json()["detail"]
        over = [("file", ("a", big)), ("file", ("b", os.urandom(800_000)))]
        assert svc.client.post("/v1/evidence", files=over, headers=h).status_code == 413
        assert contents(svc.ledger.blobs) == EMPTY
        key = {**h, "Idempotency-Key": "k1"}
        first = svc.client.post("/v1/evidence", files=[("file", ("a", big))], headers=key)
        assert first.status_code == 201, first.text
        held = contents(svc.ledger.blobs)
        again = svc.client.post("/v1/evidence", files=[("file", ("a", big))], headers=key)
        assert again.status_code == 200, again.text
        assert again.json()["receipts"] == first.json()["receipts"]
        assert contents(svc.ledger.blobs) == held and held["blobs"] == 1
        eid = first.json()["receipts"][0]["evidence_id"]
        got = svc.client.get(f"/v1/evidence/{eid}/content", headers=h)
        assert got.status_code == 200 and got.content == big


# -- audit of stored files, and the orphan sweep ------------------------------------------


def test_audit_rereads_every_stored_file_and_artefact(ledger: Ledger) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "certificates"))
    from test_certificates_ledger import _deposit_capture

    data = os.urandom(2 * 1024 * 1024)
    big = Services(ledger).deposits.deposit_file(OPERATOR, io.BytesIO(data), title="big")
    Services(ledger).deposits.deposit_file(OPERATOR, io.BytesIO(data), title="the same file again")
    eid, artefacts = _deposit_capture(ledger)
    ledger.append([evidence_deposited(kind="hash", sha256="ab" * 32)])  # no file to check
    report = audit_blobs(ledger.store, ledger.blobs)
    assert report.files == 1 + 1 + len(artefacts)  # the file (once), manifest, artefacts
    assert report.bytes > len(data) + sum(map(len, artefacts.values()))
    # A flipped byte in a file is named with its deposit.
    corrupt(ledger.blobs, str(big.sha256))
    with pytest.raises(AuditError, match=f"^evidence {big.evidence_id}: stored file: blob: ") as e:
        audit_blobs(ledger.store, ledger.blobs)
    assert e.value.index == big.index
    ledger.blobs.delete(str(big.sha256))
    with pytest.raises(AuditError, match="is not stored"):
        audit_blobs(ledger.store, ledger.blobs)
    ledger.blobs.put_stream([data])
    # A missing artefact of a capture is named too.
    ledger.blobs.delete(hashlib.sha256(artefacts["screenshot.png"]).hexdigest())
    with pytest.raises(AuditError, match=f"^evidence {eid}: artefact screenshot.png: "):
        audit_blobs(ledger.store, ledger.blobs)


def test_sweep_on_the_command_line_keeps_what_deposits_refer_to(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "certificates"))
    from test_certificates_ledger import _deposit_capture

    home = tmp_path / "home"
    with Ledger.init(home, "ledger.test/log") as led:
        kept = Services(led).deposits.deposit_file(OPERATOR, io.BytesIO(os.urandom(100_000)))
        _, artefacts = _deposit_capture(led)
        orphan = led.blobs.put_stream([b"nobody deposited this" * 1000])
        stalled = led.blobs.writer()
        stalled.write(os.urandom(led.blobs.block_size + 1))
    cli = Path(sys.executable).with_name("evidence-ledger")
    run = [str(cli), "--home", str(home)]
    out = subprocess.run([*run, "sweep"], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == {"partials": 0, "orphans": 0}  # everything is younger than 1 h
    out = subprocess.run(
        [*run, "sweep", "--older-than", "0"], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == {"partials": 1, "orphans": 1}
    with Ledger.open(home) as led:
        assert not led.blobs.exists(orphan.sha256)
        assert led.blobs.exists(str(kept.sha256))
        for data in artefacts.values():
            assert led.blobs.exists(hashlib.sha256(data).hexdigest())
    out = subprocess.run([*run, "audit"], capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["files"] == 2 + len(artefacts)
