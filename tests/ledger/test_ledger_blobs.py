"""The blob store: streamed, hashed with SHA-256 and SM3, content-addressed,
limited in size, and leaving nothing behind when a write fails."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.blobs import BlobStore
from ledger.core import Ledger
from ledger.errors import InvalidInput, NotFound, TooLarge
from ledger.events import evidence_deposited
from ledger.services import OPERATOR, Services

SIZE = 5 * 1024 * 1024 + 12345


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


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_streamed_put_hashes_and_addresses_by_content(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    sha, sm3 = hashlib.sha256(), hashlib.new("sm3")
    for chunk in stream(SIZE):
        sha.update(chunk)
        sm3.update(chunk)

    info = blobs.put_stream(stream(SIZE))
    assert info.sha256 == sha.hexdigest()
    assert info.sm3 == sm3.hexdigest()
    assert info.size == SIZE
    path = tmp_path / "blobs" / info.sha256[:2] / info.sha256
    assert blobs.path_for(info.sha256) == path
    assert files_under(tmp_path / "blobs") == [path]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info.sha256
    assert blobs.exists(info.sha256)
    assert hashlib.sha256(b"".join(blobs.iter_chunks(info.sha256))).hexdigest() == info.sha256

    # The same content again lands on the same path, once.
    again = blobs.put_stream(stream(SIZE))
    assert again == info
    assert files_under(tmp_path / "blobs") == [path]


def test_streamed_put_uses_constant_memory(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    chunk = 64 * 1024
    tracemalloc.start()
    try:
        info = blobs.put_stream(b"\x5a" * chunk for _ in range(256))  # 16 MiB
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == 256 * chunk
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes for a 16 MiB stream"


def test_size_limit_raises_too_large_and_leaves_nothing(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    with pytest.raises(TooLarge, match="limit of 1048576 bytes"):
        blobs.put_stream(stream(SIZE), limit=1024 * 1024)
    assert files_under(tmp_path / "blobs") == []
    # Exactly at the limit is accepted.
    info = blobs.put_stream(stream(1000), limit=1000)
    assert info.size == 1000


def test_an_exception_mid_stream_leaves_nothing(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    with pytest.raises(ConnectionResetError):
        blobs.put_stream(stream(SIZE, fail_after=2 * 1024 * 1024))
    assert files_under(tmp_path / "blobs") == []


def test_bad_addresses_are_refused(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    for bad in ("../" + "a" * 61, "A" * 64, "a" * 63, "g" * 64):
        with pytest.raises(InvalidInput):
            blobs.path_for(bad)
    with pytest.raises(NotFound):
        blobs.open("a" * 64)


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


def test_deposit_file_over_the_configured_limit_appends_nothing(ledger: Ledger) -> None:
    home = ledger.config.home
    ledger.close()
    cfg = json.loads((home / "config.json").read_text())
    cfg["max_upload_bytes"] = 100_000
    (home / "config.json").write_text(json.dumps(cfg))
    with Ledger.open(home) as led:
        assert led.config.max_upload_bytes == 100_000
        with pytest.raises(TooLarge):
            Services(led).deposits.deposit_file(OPERATOR, io.BytesIO(b"x" * 100_001))
        assert led.store.size() == 0
        assert files_under(led.config.blob_dir) == []
        assert Services(led).deposits.deposit_file(OPERATOR, io.BytesIO(b"x" * 100_000)).index == 0


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
    assert not ledger.blobs.exists(info.sha256)  # nothing on disk, nothing in the db yet
    assert not any(p.is_file() for p in ledger.blobs.root.rglob("*"))
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


def test_content_over_the_inline_limit_goes_to_a_file(ledger: Ledger) -> None:
    data = os.urandom(5000)
    w = ledger.blobs.writer(inline_max=4096)
    w.write(data)
    info = w.commit()
    assert info.data is None
    assert ledger.blobs.path_for(info.sha256).read_bytes() == data
    empty = ledger.blobs.writer().commit()  # no inline limit: even nothing is a file
    assert empty.data is None and ledger.blobs.path_for(empty.sha256).read_bytes() == b""
