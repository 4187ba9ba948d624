"""Audit of static tlog-tiles exports (verifier.logaudit), honest and tampered.

Exports are written by ``verifier_helpers.write_export`` (whole lists, one
``root_from_leaf_hashes`` per tile), independently of the streaming audit.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from verifier_helpers import (
    ORIGIN,
    checkpoint_text,
    make_entries,
    private_key,
    sign_note,
    verifier_key,
    write_export,
    write_tiles,
)

from verifier import logaudit
from verifier.canonical import canonicalize
from verifier.checkpoint import Checkpoint
from verifier.errors import MalformedError
from verifier.logaudit import FAILED, PASSED, SKIPPED, LogAudit, audit_log
from verifier.merkle import EMPTY_ROOT, leaf_hash
from verifier.tiles import decode_bundle, encode_bundle, tile_path

KEY = private_key("logaudit test log")
VKEY = verifier_key(ORIGIN, KEY)
N = 600  # two full bundles and a partial one of 88; level-1 tile 000.p/2


def statuses(report: LogAudit) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def detail(report: LogAudit, name: str) -> str:
    return next(c.detail for c in report.checks if c.name == name)


def failed(report: LogAudit) -> set[str]:
    return {c.name for c in report.checks if c.status == FAILED}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    entries = make_entries(N)
    root = tmp_path_factory.mktemp("pristine") / "export"
    write_export(root, entries, KEY)
    return root, entries


@pytest.fixture
def export(pristine: tuple[Path, list[bytes]], tmp_path: Path) -> Path:
    """A fresh copy of the honest export, for a test to tamper with."""
    return Path(shutil.copytree(pristine[0], tmp_path / "export"))


@pytest.fixture
def entries(pristine: tuple[Path, list[bytes]]) -> list[bytes]:
    return pristine[1]


def rewrite(root: Path, entries: list[bytes], key: Any = KEY, origin: str = ORIGIN) -> None:
    """Rewrite a whole export as a dishonest log would: tiles and a signed checkpoint."""
    shutil.rmtree(root)
    write_export(root, entries, key, origin)


# ---------------------------------------------------------------- honest exports


def test_honest_export_is_valid(export: Path) -> None:
    report = audit_log(export, VKEY)
    assert report.valid, report.checks
    assert [c.name for c in report.checks] == [
        "checkpoint signature",
        "entry bundles",
        "canonical entries",
        "entry indexes",
        "hash chain",
        "hash tiles",
        "tree root",
    ]
    assert report.size == report.entries_read == N
    assert report.origin == ORIGIN
    assert detail(report, "hash tiles") == "4 hash tiles match the entries"  # 3 level-0, 1 level-1
    assert detail(report, "checkpoint signature").startswith(f"signed by {ORIGIN}+")


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 512, 513])
def test_sizes_around_tile_boundaries(tmp_path: Path, n: int) -> None:
    write_export(tmp_path, make_entries(n), KEY)
    report = audit_log(tmp_path, VKEY)
    assert report.valid, report.checks
    assert report.entries_read == n
    if n == 0:
        assert report.root == EMPTY_ROOT


def test_to_json(export: Path) -> None:
    doc = audit_log(export, VKEY).to_json()
    assert doc["valid"] is True
    assert doc["size"] == N
    assert [c["number"] for c in doc["checks"]] == list(range(1, 8))
    assert {c["status"] for c in doc["checks"]} == {PASSED}


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """65,536 + 300 entries: a full level-2 hash (tile/2/000.p/1) and every
    partial level; more than enough bundles for the worker pool."""
    root = tmp_path_factory.mktemp("large") / "export"
    write_export(root, make_entries(65_536 + 300), KEY)
    return root


def test_large_export_with_three_tile_levels(large: Path) -> None:
    assert (large / "tile/2/000.p/1").is_file()
    assert (large / "tile/1/000").is_file()
    assert (large / "tile/1/001.p/1").is_file()
    report = audit_log(large, VKEY)
    assert report.valid, report.checks
    # 258 level-0 (257 full, 001/001.p/44), 2 level-1 (000, 001.p/1), 1 level-2.
    assert detail(report, "hash tiles") == "261 hash tiles match the entries"


def test_workers_give_the_same_report(large: Path, tmp_path: Path) -> None:
    tampered = Path(shutil.copytree(large, tmp_path / "export"))
    # Make one entry non-canonical in each of two chunks of the worker pool
    # (bundles 100 and 200): failures, counts and first details must merge in
    # log order, exactly as in one process.
    for b, i in ((100, 3), (200, 7)):
        path = tampered / tile_path(-1, b)
        bundle = decode_bundle(path.read_bytes(), 256)
        bundle[i] = bundle[i].replace(b',"index"', b', "index"')
        path.write_bytes(encode_bundle(bundle))
    serial = audit_log(tampered, VKEY, workers=1)
    parallel = audit_log(tampered, VKEY, workers=2)
    assert serial.checks == parallel.checks
    assert detail(serial, "canonical entries").startswith("entry 25603: ")
    assert detail(serial, "canonical entries").endswith("(and 1 more)")
    assert detail(serial, "hash chain").startswith("entry 25604: ")
    assert detail(serial, "hash chain").endswith("(and 1 more)")


@pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork", reason="needs workers forked from the test"
)
def test_a_dying_worker_is_redone_in_process(large: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = logaudit._check_entry_chunk
    parent = os.getpid()

    def dying(directory: str, first: int, last: int, size: int) -> Any:
        if os.getpid() != parent and first == 32:
            os._exit(1)  # as if killed: the pool breaks
        return original(directory, first, last, size)

    dying.__module__, dying.__qualname__ = original.__module__, original.__qualname__
    monkeypatch.setattr(logaudit, "_check_entry_chunk", dying)
    report = audit_log(large, VKEY, workers=2)
    assert report.valid, report.checks


# ---------------------------------------------------------------- tampering


def test_edited_entry(export: Path, entries: list[bytes]) -> None:
    # Change one character of entry 300 in place (same length): its leaf hash
    # changes, so entry 301's prev, tile/0/001, tile/1/000.p/2 and the root break.
    bundle = export / tile_path(-1, 1)
    data = bundle.read_bytes()
    edited = data.replace(b'"n":300,', b'"n":301,')
    assert edited != data
    bundle.write_bytes(edited)
    report = audit_log(export, VKEY)
    assert failed(report) == {"hash chain", "hash tiles", "tree root"}
    assert detail(report, "hash chain").startswith(
        "entry 301: prev is '" + leaf_hash(entries[300]).hex()
    )
    assert "not the leaf hash of entry 300" in detail(report, "hash chain")
    assert detail(report, "hash tiles").startswith("tile/0/001: hash 44 differs")
    assert "(and 1 more)" in detail(report, "hash tiles")


def test_edited_entry_with_recomputed_tiles(export: Path, entries: list[bytes]) -> None:
    # The attacker rewrites the tiles too, but cannot sign a new checkpoint.
    forged = list(entries)
    forged[300] = forged[300].replace(b'"n":300,', b'"n":301,')
    shutil.rmtree(export / "tile")
    write_tiles(export, forged)
    report = audit_log(export, VKEY)
    assert failed(report) == {"hash chain", "tree root"}
    assert "recomputed root" in detail(report, "tree root")


def test_rewritten_history_signed_by_another_key(export: Path) -> None:
    forged = make_entries(N, lambda i, r: r["body"].update(note="forged") if i == 7 else None)
    rewrite(export, forged, key=private_key("attacker"))
    report = audit_log(export, VKEY)
    assert failed(report) == {"checkpoint signature"}
    assert detail(report, "checkpoint signature") == "note: no signature by a trusted key"


def test_checkpoint_of_another_origin(export: Path, entries: list[bytes]) -> None:
    rewrite(export, entries, origin="other.test/log")
    report = audit_log(export, VKEY)
    assert failed(report) == {"checkpoint signature"}
    assert "origin 'other.test/log' is not the log key's name" in detail(
        report, "checkpoint signature"
    )


def test_edited_hash_tile(export: Path) -> None:
    tile = export / "tile/1/000.p/2"
    data = bytearray(tile.read_bytes())
    data[33] ^= 0x80
    tile.write_bytes(bytes(data))
    report = audit_log(export, VKEY)
    assert failed(report) == {"hash tiles"}
    assert detail(report, "hash tiles") == "tile/1/000.p/2: hash 1 differs from the recomputed one"


def test_truncated_hash_tile(export: Path) -> None:
    tile = export / "tile/0/000"
    tile.write_bytes(tile.read_bytes()[:-32])
    report = audit_log(export, VKEY)
    assert detail(report, "hash tiles") == "tile/0/000: 8160 bytes, expected 8192"


def test_missing_hash_tile(export: Path) -> None:
    (export / "tile/0/002.p/88").unlink()
    report = audit_log(export, VKEY)
    assert failed(report) == {"hash tiles"}
    assert detail(report, "hash tiles") == "tile/0/002.p/88: missing"


def test_broken_chain(export: Path) -> None:
    # The log itself wrote a wrong prev at entry 10, and signed the result.
    def mutate(i: int, record: dict[str, Any]) -> None:
        if i == 10:
            record["prev"] = "ab" * 32

    rewrite(export, make_entries(N, mutate))
    report = audit_log(export, VKEY)
    assert failed(report) == {"hash chain"}
    assert detail(report, "hash chain") == (
        f"entry 10: prev is {'ab' * 32!r}, not the leaf hash of entry 9"
    )


def test_first_entry_must_chain_from_zeros(export: Path) -> None:
    def mutate(i: int, record: dict[str, Any]) -> None:
        if i == 0:
            record["prev"] = "1" * 64

    rewrite(export, make_entries(N, mutate))
    report = audit_log(export, VKEY)
    assert failed(report) == {"hash chain"}
    assert "64 zeros (first entry)" in detail(report, "hash chain")


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        (lambda r: r.update(index=6), "6"),
        (lambda r: r.update(index="5"), "'5'"),
        (lambda r: r.update(index=True), "True"),
        (lambda r: r.__delitem__("index"), "None"),
    ],
)
def test_wrong_index(export: Path, change: Any, shown: str) -> None:
    rewrite(export, make_entries(N, lambda i, r: change(r) if i == 5 else None))
    report = audit_log(export, VKEY)
    assert failed(report) == {"entry indexes"}
    assert detail(report, "entry indexes") == f"entry 5: index is {shown}"


@pytest.mark.parametrize(
    ("leaf", "message"),
    [
        (lambda r: canonicalize(r).replace(b",", b", ", 1), "not in RFC 8785 canonical form"),
        (lambda r: canonicalize(r) + b"\n", "not in RFC 8785 canonical form"),
        (lambda r: canonicalize(r)[:-1] + b',"v":1}', "duplicate member 'v'"),
        (lambda r: b"[1,2]", "not a JSON object"),
        (lambda r: b"\xff\xfe", "not valid UTF-8"),
        (lambda r: b"", "json:"),
    ],
)
def test_non_canonical_entries(export: Path, leaf: Any, message: str) -> None:
    rewrite(export, make_entries(N, lambda i, r: leaf(r) if i == 42 else None))
    report = audit_log(export, VKEY)
    assert "canonical entries" in failed(report)
    assert detail(report, "canonical entries").startswith("entry 42: ")
    assert message in detail(report, "canonical entries")
    # A non-canonical entry that still parses keeps its index and chain checked.
    if message == "not in RFC 8785 canonical form":
        assert failed(report) == {"canonical entries"}


def test_failures_are_counted(export: Path) -> None:
    rewrite(export, make_entries(N, lambda i, r: r.update(index=0) if i % 100 == 1 else None))
    report = audit_log(export, VKEY)
    assert detail(report, "entry indexes") == "entry 1: index is 0 (and 5 more)"


def test_missing_bundle(export: Path) -> None:
    (export / "tile/entries/001").unlink()
    report = audit_log(export, VKEY)
    assert statuses(report) == {
        "checkpoint signature": PASSED,
        "entry bundles": FAILED,
        "canonical entries": SKIPPED,
        "entry indexes": SKIPPED,
        "hash chain": SKIPPED,
        "hash tiles": SKIPPED,
        "tree root": SKIPPED,
    }
    assert detail(report, "entry bundles") == "tile/entries/001: missing"
    assert report.entries_read == 256
    assert not report.valid


def test_truncated_bundle(export: Path) -> None:
    bundle = export / "tile/entries/002.p/88"
    bundle.write_bytes(bundle.read_bytes()[:-5])
    report = audit_log(export, VKEY)
    assert detail(report, "entry bundles") == "tile/entries/002.p/88: bundle: truncated entry"


def test_bundle_with_an_extra_entry(export: Path, entries: list[bytes]) -> None:
    bundle = export / "tile/entries/002.p/88"
    bundle.write_bytes(encode_bundle([*entries[512:], b"{}"]))
    report = audit_log(export, VKEY)
    assert detail(report, "entry bundles") == (
        "tile/entries/002.p/88: bundle: 89 entries, expected 88"
    )


def test_entries_beyond_the_checkpoint_are_ignored(export: Path, entries: list[bytes]) -> None:
    # A log may write tiles before it publishes the checkpoint that covers them.
    write_tiles(export, [*entries, *make_entries(N + 50)[N:]])
    report = audit_log(export, VKEY)
    assert report.valid, report.checks


def test_stale_partial_tiles_must_be_prefixes(export: Path, entries: list[bytes]) -> None:
    # An older, smaller export left partial tiles beside the full ones.
    write_tiles(export, entries[:300])  # writes tile/0/001.p/44, tile/entries/001.p/44
    assert audit_log(export, VKEY).valid
    stale = export / "tile/0/001.p/44"
    data = bytearray(stale.read_bytes())
    data[0] ^= 1
    stale.write_bytes(bytes(data))
    bundle = export / "tile/entries/001.p/44"
    bundle.write_bytes(encode_bundle(make_entries(44)))
    report = audit_log(export, VKEY)
    assert failed(report) == {"hash tiles", "entry bundles"}
    assert detail(report, "hash tiles") == (
        "tile/0/001.p/44: partial tile is not a prefix of the full tile"
    )
    assert detail(report, "entry bundles") == (
        "tile/entries/001.p/44: partial tile is not a prefix of the full tile"
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_checkpoint_claiming_a_huge_tree(export: Path, entries: list[bytes], workers: int) -> None:
    # A signed checkpoint may claim any size: the audit reads what exists,
    # reports the first missing bundle and neither hangs nor queues 2**40 tasks.
    body = Checkpoint(ORIGIN, 2**40, leaf_hash(b"x")).to_text()
    (export / "checkpoint").write_text(sign_note(body, (ORIGIN, KEY)))
    report = audit_log(export, VKEY, workers=workers)
    assert detail(report, "entry bundles") == "tile/entries/002: missing"
    assert report.entries_read == 512
    assert statuses(report)["tree root"] == SKIPPED


def test_oversized_files_are_not_read_whole(export: Path) -> None:
    (export / "tile/0/000").write_bytes(b"\x00" * 100_000)
    report = audit_log(export, VKEY)
    assert detail(report, "hash tiles") == "tile/0/000: more than 8192 bytes"
    (export / "checkpoint").write_bytes(b"x" * (2 << 20))
    with pytest.raises(MalformedError, match="is larger than"):
        audit_log(export, VKEY)


# ---------------------------------------------------------------- --from


def old_checkpoint(entries: list[bytes], size: int, key: Any = KEY) -> bytes:
    return checkpoint_text(entries, key, size=size).encode()


@pytest.mark.parametrize("size", [0, 1, 255, 256, 300, N])
def test_old_checkpoint_is_a_prefix(export: Path, entries: list[bytes], size: int) -> None:
    report = audit_log(export, VKEY, old_checkpoint(entries, size))
    assert report.valid, report.checks
    assert [c.name for c in report.checks][1:3] == ["old checkpoint signature", "no rollback"]
    assert report.checks[-1].name == "old tree is a prefix"
    assert report.old_size == size


def test_rollback(export: Path, entries: list[bytes]) -> None:
    longer = [*entries, *make_entries(N + 10)[N:]]
    report = audit_log(export, VKEY, old_checkpoint(longer, N + 10))
    assert failed(report) == {"no rollback"}
    assert detail(report, "no rollback") == (
        f"old checkpoint has size {N + 10}, the export only {N}: the log was rolled back"
    )
    assert statuses(report)["old tree is a prefix"] == SKIPPED


def test_rewritten_history_since_the_old_checkpoint(export: Path, entries: list[bytes]) -> None:
    # The log signed a checkpoint of size 300, then rewrote entry 100 and
    # re-signed everything: each checkpoint is valid alone, together they
    # prove the rewrite.
    old = old_checkpoint(entries, 300)
    rewrite(export, make_entries(N, lambda i, r: r["body"].update(n=-1) if i == 100 else None))
    report = audit_log(export, VKEY, old)
    assert failed(report) == {"old tree is a prefix"}
    assert "the log was rewritten" in detail(report, "old tree is a prefix")


def test_old_checkpoint_signed_by_another_key(export: Path, entries: list[bytes]) -> None:
    report = audit_log(export, VKEY, old_checkpoint(entries, 300, key=private_key("x")))
    assert failed(report) == {"old checkpoint signature"}


def test_old_empty_checkpoint_with_a_wrong_root(export: Path) -> None:
    body = Checkpoint(ORIGIN, 0, leaf_hash(b"x")).to_text()
    report = audit_log(export, VKEY, sign_note(body, (ORIGIN, KEY)).encode())
    assert failed(report) == {"old tree is a prefix"}


# ---------------------------------------------------------------- unreadable input


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(MalformedError, match="is not a directory"):
        audit_log(tmp_path / "nope", VKEY)


def test_missing_checkpoint(export: Path) -> None:
    (export / "checkpoint").unlink()
    with pytest.raises(MalformedError, match="cannot read checkpoint"):
        audit_log(export, VKEY)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"not a note", "checkpoint: note: does not end in a newline"),
        (b"a\nb\n\n\xe2\x80\x94 a AAAAAAAAAA==\n", "checkpoint: checkpoint: body needs"),
    ],
)
def test_malformed_checkpoint(export: Path, text: bytes, message: str) -> None:
    (export / "checkpoint").write_bytes(text)
    with pytest.raises(MalformedError, match=message):
        audit_log(export, VKEY)


def test_malformed_old_checkpoint(export: Path) -> None:
    with pytest.raises(MalformedError, match="old checkpoint: note:"):
        audit_log(export, VKEY, b"garbage")
