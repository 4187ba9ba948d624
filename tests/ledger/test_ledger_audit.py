"""Audit catches rows edited directly in the database, behind the ledger's back.

Each case bypasses the append-only triggers (dropped on SQLite, skipped with
``session_replication_role = replica`` on PostgreSQL), edits one thing, and
expects :class:`AuditError` naming the first bad index and what failed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from ledger_helpers import RawDb, hash_drafts, raw_db

from ledger.audit import audit
from ledger.core import Ledger
from ledger.errors import AuditError
from ledger.events import account_registered
from verifier.merkle import HASH_SIZE, leaf_hash

SIZE = 700  # checkpoints at 0, 300, 600, 700; tiles 0/0, 0/1 full, 0/2, 1/0 partial
BAD = 300  # the first entry of the second batch, in tile 0/1 at offset 44


@pytest.fixture
def sealed(ledger: Ledger) -> Ledger:
    ledger.append(hash_drafts(BAD))
    ledger.append([account_registered(role="notary", name="N. Otary")])
    ledger.append(hash_drafts(SIZE - BAD - 1))
    ledger.seal(batch_max=300)
    assert [cp.size for cp in ledger.store.checkpoints()] == [0, 300, 600, 700]
    report = audit(ledger.store, ledger.verifier_key, ledger.config.origin)
    assert (report.entries, report.checkpoints, report.tiles) == (SIZE, 4, 4)
    return ledger


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def edit_leaf_byte(db: RawDb) -> None:
    # A byte inside the commitment: still canonical JSON, different leaf.
    (leaf,) = db.execute("select leaf from events where idx = ?", (BAD,))[0]
    at = leaf.index(b'"commitment":"') + 20
    edited = leaf[:at] + (b"0" if leaf[at : at + 1] != b"0" else b"1") + leaf[at + 1 :]
    db.execute("update events set leaf = ? where idx = ?", (edited, BAD))


def edit_leaf_json(db: RawDb) -> None:
    (leaf,) = db.execute("select leaf from events where idx = ?", (BAD,))[0]
    db.execute("update events set leaf = ? where idx = ?", (flip(leaf, 0), BAD))


def edit_leaf_hash(db: RawDb) -> None:
    (h,) = db.execute("select leaf_hash from events where idx = ?", (BAD,))[0]
    db.execute("update events set leaf_hash = ? where idx = ?", (flip(h, 31), BAD))


def edit_leaf_and_hash(db: RawDb) -> None:
    # A consistent rewrite of one entry (leaf and its hash): the chain breaks.
    (leaf,) = db.execute("select leaf from events where idx = ?", (BAD,))[0]
    rec = json.loads(leaf)
    assert rec["type"] == "account.registered"
    rec["body"]["role"] = "admin"
    edited = json.dumps(rec, separators=(",", ":"), sort_keys=True).encode()
    db.execute(
        "update events set leaf = ?, leaf_hash = ? where idx = ?",
        (edited, leaf_hash(edited), BAD),
    )


def edit_private_body(db: RawDb) -> None:
    (body,) = db.execute("select body from private where idx = ?", (BAD,))[0]
    edited = body.replace(b"N. Otary", b"N. Other")
    assert edited != body
    db.execute("update private set body = ? where idx = ?", (edited, BAD))


def edit_private_salt(db: RawDb) -> None:
    (salt,) = db.execute("select salt from private where idx = ?", (BAD,))[0]
    db.execute("update private set salt = ? where idx = ?", (flip(salt, 0), BAD))


def edit_tile_hash(db: RawDb) -> None:
    (hashes,) = db.execute("select hashes from tiles where level = 0 and idx = 1")[0]
    edited = flip(hashes, (BAD - 256) * HASH_SIZE + 5)
    db.execute("update tiles set hashes = ? where level = 0 and idx = 1", (edited,))


def edit_partial_tile_hash(db: RawDb) -> None:
    # Entry 650 sits in the partial tile 0/2 (width 700 - 512 = 188).
    (hashes,) = db.execute("select hashes from tiles where level = 0 and idx = 2")[0]
    assert len(hashes) == 188 * HASH_SIZE
    edited = flip(hashes, (650 - 512) * HASH_SIZE)
    db.execute("update tiles set hashes = ? where level = 0 and idx = 2", (edited,))


def edit_tile_inner(db: RawDb) -> None:
    # Height-2 node number 11 of tile 0/1 covers entries 256 + 44 .. 256 + 47.
    (inner,) = db.execute(f"select {db.inner} from tiles where level = 0 and idx = 1")[0]
    edited = flip(inner, (128 + 11) * HASH_SIZE + 3)
    db.execute(f"update tiles set {db.inner} = ? where level = 0 and idx = 1", (edited,))


def remove_checkpoint_signature(db: RawDb) -> None:
    (note,) = db.execute("select note from checkpoints where size = 600")[0]
    text = note[: note.rindex("\n\n") + 2]
    db.execute("update checkpoints set note = ? where size = 600", (text,))


def edit_checkpoint_note(db: RawDb) -> None:
    (note,) = db.execute("select note from checkpoints where size = 600")[0]
    lines = note.split("\n")
    lines[1] = "601"
    db.execute("update checkpoints set note = ? where size = 600", ("\n".join(lines),))


def edit_checkpoint_root(db: RawDb) -> None:
    (root,) = db.execute("select root from checkpoints where size = 600")[0]
    db.execute("update checkpoints set root = ? where size = 600", (flip(root, 0),))


def delete_event(db: RawDb) -> None:
    db.execute("delete from events where idx = ?", (BAD,))


# (tampering, expected index or None, pattern the message must match)
CASES: dict[str, tuple[Callable[[RawDb], None], int | None, str]] = {
    "leaf byte": (edit_leaf_byte, BAD, r"entry 300: stored leaf hash does not match"),
    "leaf json": (edit_leaf_json, BAD, r"entry 300: record: not valid JSON"),
    "leaf hash": (edit_leaf_hash, BAD, r"entry 300: stored leaf hash does not match"),
    "leaf and hash": (edit_leaf_and_hash, BAD + 1, r"entry 301: hash chain broken"),
    "private body": (edit_private_body, BAD, r"entry 300: private body does not open"),
    "private salt": (edit_private_salt, BAD, r"entry 300: private body does not open"),
    "tile hash": (edit_tile_hash, BAD, r"tile 0/1: stored hashes do not match .* 300"),
    "partial tile hash": (edit_partial_tile_hash, 650, r"tile 0/2: stored hashes .* 650"),
    "tile inner node": (edit_tile_inner, BAD, r"tile 0/1: stored hashes do not match .* 300"),
    "checkpoint signature": (remove_checkpoint_signature, None, r"checkpoint 600: note:"),
    "checkpoint note": (edit_checkpoint_note, None, r"checkpoint 600: .*signature"),
    "checkpoint root": (edit_checkpoint_root, None, r"checkpoint 600: signed text does not match"),
    "deleted entry": (delete_event, BAD, r"missing"),
}


@pytest.mark.parametrize("case", CASES)
def test_audit_catches_tampering_in_the_database(sealed: Ledger, case: str) -> None:
    tamper, index, message = CASES[case]
    with raw_db(sealed.config.database_url, bypass_triggers=True) as db:
        tamper(db)
    with pytest.raises(AuditError) as info:
        audit(sealed.store, sealed.verifier_key, sealed.config.origin)
    err = info.value
    assert re.search(message, str(err)), str(err)
    assert "\n" not in str(err)
    assert err.index == index, str(err)


def test_audit_catches_tampering_in_a_reopened_sqlite_file(tmp_path) -> None:
    """The whole way an operator would do it: close, edit the file, reopen, audit."""
    home = tmp_path / "home"
    with Ledger.init(home, origin="ledger.test/log") as led:
        led.append(hash_drafts(10))
        led.seal()
    with raw_db("sqlite:///" + str(home / "ledger.db"), bypass_triggers=True) as db:
        edit_leaf_hash_at(db, 7)
    with Ledger.open(home) as led, pytest.raises(AuditError, match="entry 7") as info:
        audit(led.store, led.verifier_key, led.config.origin)
    assert info.value.index == 7


def edit_leaf_hash_at(db: RawDb, idx: int) -> None:
    (h,) = db.execute("select leaf_hash from events where idx = ?", (idx,))[0]
    db.execute("update events set leaf_hash = ? where idx = ?", (flip(h, 0), idx))


PARALLEL_CASES = ["leaf byte", "leaf hash", "private body", "deleted entry"]


@pytest.mark.parametrize("case", PARALLEL_CASES)
def test_parallel_audit_finds_the_same_first_failure(sealed: Ledger, case: str) -> None:
    """Worker processes check chunks; entry 300 starts a chunk of 100, so the
    chain check across chunk boundaries is exercised too."""
    clean = audit(sealed.store, sealed.verifier_key, sealed.config.origin, workers=2, chunk=100)
    assert (clean.entries, clean.tiles) == (SIZE, 4)
    tamper, index, message = CASES[case]
    with raw_db(sealed.config.database_url, bypass_triggers=True) as db:
        tamper(db)
    with pytest.raises(AuditError) as info:
        audit(sealed.store, sealed.verifier_key, sealed.config.origin, workers=2, chunk=100)
    assert re.search(message, str(err := info.value)), str(err)
    assert err.index == index, str(err)


def test_parallel_audit_catches_a_chain_broken_at_a_chunk_boundary(sealed: Ledger) -> None:
    """Entry 400 starts a chunk: rewrite its prev (and its stored hash to match).
    The worker checking 400..499 must still name 400, not 401."""
    with raw_db(sealed.config.database_url, bypass_triggers=True) as db:
        (leaf,) = db.execute("select leaf from events where idx = ?", (400,))[0]
        at = leaf.index(b'"prev":"') + 8
        edited = leaf[:at] + (b"0" if leaf[at : at + 1] != b"0" else b"1") + leaf[at + 1 :]
        db.execute("update events set leaf = ? where idx = ?", (edited, 400))
        db.execute("update events set leaf_hash = ? where idx = ?", (leaf_hash(edited), 400))
    for workers in (0, 2):
        with pytest.raises(AuditError, match="entry 400: hash chain broken") as info:
            audit(
                sealed.store, sealed.verifier_key, sealed.config.origin, workers=workers, chunk=100
            )
        assert info.value.index == 400
