"""``export`` re-read with the verifier's tile helpers; ``audit`` against direct edits."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cli_support import (
    ORIGIN,
    Home,
    assert_one_line_error,
    filled_home_at,
    init_home,
    receipts,
    sha,
)

from verifier.canonical import canonicalize
from verifier.checkpoint import open_checkpoint
from verifier.merkle import leaf_hash, root_from_leaf_hashes
from verifier.note import VerifierKey
from verifier.record import commitment, decode_record, verify_opening
from verifier.tiles import TILE_WIDTH, decode_bundle, parse_tile_path, split_hashes, tile_path

SIZE = 600  # tiles 0/000, 0/001 full, 0/002.p/88; 1/000.p/2; bundles 000, 001, 002.p/88


@pytest.fixture
def filled_home(tmp_path: Path) -> Home:
    """A ledger with 20 hash deposits, sealed."""
    return filled_home_at(tmp_path / "home")


def _deposit(home: Home, tmp_path: Path, n: int, start: int = 0) -> list[dict[str, object]]:
    f = tmp_path / f"hashes-{start}.txt"
    f.write_text("".join(f"{sha(i)}\n" for i in range(start, start + n)))
    r = home.run("deposit", "--hashes-from", str(f))
    assert r.exit_code == 0, r.stderr
    return receipts(r.stdout)


@pytest.fixture
def home600(tmp_path: Path) -> tuple[Home, list[dict[str, object]]]:
    h = init_home(tmp_path / "home")
    rs = _deposit(h, tmp_path, SIZE)
    assert h.run("seal").exit_code == 0
    return h, rs


def expected_tiles(leaf_hashes: list[bytes]) -> dict[str, bytes]:
    """Every hash tile of the tree, computed from leaf hashes with the verifier alone."""
    out: dict[str, bytes] = {}
    level = 0
    while (count := len(leaf_hashes) >> (8 * level)) > 0:
        span = TILE_WIDTH**level  # leaves under one hash of this level
        hashes = [
            root_from_leaf_hashes(leaf_hashes[i * span : (i + 1) * span]) for i in range(count)
        ]
        for index in range(0, count, TILE_WIDTH):
            chunk = hashes[index : index + TILE_WIDTH]
            out[tile_path(level, index // TILE_WIDTH, len(chunk))] = b"".join(chunk)
        level += 1
    return out


def read_export(out: Path, vkey: str) -> tuple[int, bytes, list[bytes], dict[str, bytes]]:
    """Verify the checkpoint, decode every bundle, collect every hash tile."""
    cp = open_checkpoint((out / "checkpoint").read_bytes(), [VerifierKey.from_text(vkey)], ORIGIN)
    size, root = cp.checkpoint.size, cp.checkpoint.root
    leaves: dict[int, bytes] = {}
    tiles: dict[str, bytes] = {}
    for f in sorted((out / "tile").rglob("*")):
        if f.is_dir():
            continue
        rel = f.relative_to(out).as_posix()
        level, index, width = parse_tile_path(rel)
        data = f.read_bytes()
        if level < 0:
            for j, leaf in enumerate(decode_bundle(data, width)):
                leaves[index * TILE_WIDTH + j] = leaf
        else:
            assert len(split_hashes(data)) == width
            tiles[rel] = data
    assert sorted(leaves) == list(range(size))
    return size, root, [leaves[i] for i in range(size)], tiles


def test_export_is_a_tlog_tiles_tree_that_verifies(
    home600: tuple[Home, list[dict[str, object]]], tmp_path: Path
) -> None:
    h, rs = home600
    # Entries deposited after the seal are not part of the export.
    _deposit(h, tmp_path, 5, start=SIZE)
    out = tmp_path / "export"
    r = h.run("export", str(out))
    assert r.exit_code == 0, r.stderr
    size, root, leaves, tiles = read_export(out, h.vkey)
    assert size == SIZE
    hashes = [leaf_hash(leaf) for leaf in leaves]
    assert root_from_leaf_hashes(hashes) == root
    assert [h.hex() for h in hashes] == [r["leaf_hash"] for r in rs]
    for i, leaf in enumerate(leaves):
        assert decode_record(leaf).index == i
    assert tiles == expected_tiles(hashes)
    assert set(tiles) == {"tile/0/000", "tile/0/001", "tile/0/002.p/88", "tile/1/000.p/2"}
    bundles = {p.relative_to(out).as_posix() for p in (out / "tile" / "entries").rglob("*")}
    assert {b for b in bundles if not (out / b).is_dir()} == {
        "tile/entries/000",
        "tile/entries/001",
        "tile/entries/002.p/88",
    }
    assert not (out / "private").exists()


def test_export_private_bodies_open_commitments(
    home600: tuple[Home, list[dict[str, object]]], tmp_path: Path
) -> None:
    h, rs = home600
    out = tmp_path / "export"
    r = h.run("export", "--private", str(out))
    assert r.exit_code == 0, r.stderr
    _, _, leaves, _ = read_export(out, h.vkey)
    opened = 0
    for f in sorted((out / "private").iterdir()):
        for line in f.read_text().splitlines():
            p = json.loads(line)
            rec = decode_record(leaves[p["index"]])
            salt = bytes.fromhex(p["salt"])
            body = canonicalize(p["body"])
            assert commitment(salt, body) == rec.commitment
            verify_opening(rec, salt, body)
            assert p["body"]["sha256"] == rs[p["index"]]["sha256"]
            opened += 1
    assert opened == SIZE


def test_export_of_a_grown_log_overwrites_partial_tiles(
    home600: tuple[Home, list[dict[str, object]]], tmp_path: Path
) -> None:
    h, _ = home600
    out = tmp_path / "export"
    assert h.run("export", str(out)).exit_code == 0
    _deposit(h, tmp_path, 100, start=SIZE)
    assert h.run("seal").exit_code == 0
    assert h.run("export", str(out)).exit_code == 0
    size, root, leaves, _ = read_export(out, h.vkey)
    assert size == SIZE + 100
    assert root_from_leaf_hashes([leaf_hash(x) for x in leaves]) == root
    assert (out / "tile/0/002.p/188").exists()


# -- audit against direct edits of the SQLite file ---------------------------
def _db(home: Home) -> sqlite3.Connection:
    conn = sqlite3.connect(home.path / "ledger.db", isolation_level=None)
    for (name,) in conn.execute("select name from sqlite_master where type = 'trigger'").fetchall():
        conn.execute(f'drop trigger "{name}"')
    return conn


def _flip_leaf_byte(conn: sqlite3.Connection, idx: int) -> None:
    """Change one hex digit of the evidence id inside the leaf: still canonical JSON."""
    (leaf,) = conn.execute("select leaf from events where idx = ?", (idx,)).fetchone()
    pos = leaf.index(b'"evidence_id":"') + len(b'"evidence_id":"')
    new = leaf[:pos] + (b"1" if leaf[pos : pos + 1] != b"1" else b"2") + leaf[pos + 1 :]
    decode_record(new)  # the edit is not caught by mere parsing
    conn.execute("update events set leaf = ? where idx = ?", (new, idx))


def _audit_fails(home: Home) -> str:
    r = home.proc("audit")
    assert r.returncode == 1, (r.stdout, r.stderr)
    return assert_one_line_error(r.stderr)


def test_audit_catches_an_edited_leaf_byte(filled_home: Home) -> None:
    with _db(filled_home) as conn:
        _flip_leaf_byte(conn, 7)
    msg = _audit_fails(filled_home)
    assert "entry 7" in msg


def test_audit_catches_edited_leaf_with_recomputed_leaf_hash(filled_home: Home) -> None:
    conn = _db(filled_home)
    _flip_leaf_byte(conn, 7)
    (leaf,) = conn.execute("select leaf from events where idx = 7").fetchone()
    conn.execute("update events set leaf_hash = ? where idx = 7", (leaf_hash(leaf),))
    conn.close()
    msg = _audit_fails(filled_home)
    # The chain breaks at the next entry (its prev no longer matches).
    assert "entry 8" in msg or "entry 7" in msg


def test_audit_catches_an_edited_last_entry_rehashed(filled_home: Home) -> None:
    """The last entry has no successor to break the chain: the signed root catches it."""
    conn = _db(filled_home)
    _flip_leaf_byte(conn, 19)
    (leaf,) = conn.execute("select leaf from events where idx = 19").fetchone()
    conn.execute("update events set leaf_hash = ? where idx = 19", (leaf_hash(leaf),))
    conn.close()
    _audit_fails(filled_home)


def test_audit_catches_an_edited_private_body(filled_home: Home) -> None:
    conn = _db(filled_home)
    (body,) = conn.execute("select body from private where idx = 3").fetchone()
    new = body.replace(sha(3).encode(), sha(333).encode())
    assert new != body
    conn.execute("update private set body = ? where idx = 3", (new,))
    conn.close()
    assert "entry 3" in _audit_fails(filled_home)


def test_audit_catches_an_edited_tile(filled_home: Home) -> None:
    conn = _db(filled_home)
    (hashes,) = conn.execute("select hashes from tiles where level = 0 and idx = 0").fetchone()
    conn.execute(
        "update tiles set hashes = ? where level = 0 and idx = 0",
        (hashes[:40] + bytes([hashes[40] ^ 1]) + hashes[41:],),
    )
    conn.close()
    assert "tile 0/0" in _audit_fails(filled_home)


def test_audit_catches_an_edited_checkpoint_root(filled_home: Home) -> None:
    conn = _db(filled_home)
    conn.execute("update checkpoints set root = ? where size = 20", (b"\x00" * 32,))
    conn.close()
    assert "checkpoint 20" in _audit_fails(filled_home)


def test_audit_catches_a_deleted_row(filled_home: Home) -> None:
    conn = _db(filled_home)
    conn.execute("delete from events where idx = 11")
    conn.execute("delete from private where idx = 11")
    conn.close()
    assert "entry 11" in _audit_fails(filled_home)


def test_audit_catches_a_deleted_private_body(filled_home: Home) -> None:
    conn = _db(filled_home)
    conn.execute("delete from private where idx = 4")
    conn.close()
    assert "entry 4" in _audit_fails(filled_home)


def test_append_only_triggers_refuse_edits(filled_home: Home) -> None:
    conn = sqlite3.connect(filled_home.path / "ledger.db", isolation_level=None)
    for sql in (
        "update events set leaf = x'00' where idx = 1",
        "delete from events where idx = 1",
        "update private set body = x'00' where idx = 1",
        "delete from checkpoints",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    conn.close()
    filled_home.assert_audits_clean()
