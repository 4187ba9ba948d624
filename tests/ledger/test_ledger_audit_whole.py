"""The audit misses nothing: checkpoint and publication sequences, stored
files, projections, and values of the wrong SQL type.

Each case edits the database (or the blob store) the way an operator with a
database shell could, behind the ledger's back, and expects the whole audit
(``audit_ledger``, what ``evidence-ledger audit`` runs) to fail naming what is
wrong. Every case runs on SQLite (filesystem blobs) and PostgreSQL (blobs in
the database).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from ledger_helpers import RawDb, raw_db

from ledger.audit import audit_ledger
from ledger.blobs import FsBlobStore
from ledger.core import Ledger
from ledger.errors import AuditError
from ledger.events import account_registered, evidence_deposited
from ledger.services import OPERATOR, Services
from ledger.storage.migrations import LATEST

EL = Path(sys.executable).with_name("evidence-ledger")


@dataclass(frozen=True)
class Filled:
    """A sealed ledger with accounts, owned deposits, a stored and an inline file."""

    ledger: Ledger
    alice: str
    owned: str
    """An evidence id owned by alice."""
    big_sha256: str
    small_sha256: str
    sizes: list[int]
    """Checkpoint sizes."""


@pytest.fixture
def filled(ledger: Ledger) -> Filled:
    alice = account_registered(role="rights_holder", name="Alice")
    ledger.append([alice, account_registered(role="notary", name="N. Otary")])
    owned = evidence_deposited(kind="hash", sha256="ab" * 32, title="mine", owner=alice.ref)
    ledger.append([owned])
    big = Services(ledger).deposits.deposit_file(
        OPERATOR, io.BytesIO(os.urandom(1 << 17)), title="a stored file", file_name="big.bin"
    )
    data = b"small inline evidence"
    w = ledger.blobs.writer(inline_max=1024)
    w.write(data)
    info = w.commit()
    ledger.append(
        [
            evidence_deposited(
                kind="file", sha256=info.sha256, sm3=info.sm3, size=info.size, content=info.data
            )
        ]
    )
    ledger.append([evidence_deposited(kind="hash", sha256=f"{i:064x}") for i in range(5)])
    ledger.seal(batch_max=3)
    sizes = [cp.size for cp in ledger.store.checkpoints()]
    assert sizes == [0, 3, 6, 9, 10]
    clean = audit_ledger(ledger)
    assert clean["ok"] and clean["checkpoints"] == 5 and clean["publications"] == 5
    assert clean["files"] == 2 and clean["projection_rows"] == 2 + 8
    return Filled(ledger, alice.ref, owned.ref, str(big.sha256), info.sha256, sizes)


def fails(f: Filled, pattern: str, index: int | None = None) -> AuditError:
    with pytest.raises(AuditError) as info:
        audit_ledger(f.ledger)
    err = info.value
    assert re.search(pattern, str(err)), str(err)
    assert "\n" not in str(err)
    if index is not None:
        assert err.index == index, str(err)
    return err


def tamper(f: Filled, edit: Callable[[RawDb], None]) -> None:
    with raw_db(f.ledger.config.database_url, bypass_triggers=True) as db:
        edit(db)


# -- the sequence of checkpoints and publications ------------------------------


def test_a_deleted_latest_checkpoint_is_named(filled: Filled) -> None:
    tamper(filled, lambda db: db.execute("delete from checkpoints where size = 10"))
    fails(filled, r"^checkpoints: the latest checkpoint recorded is of size 10, .* stored is 9")


def test_a_latest_checkpoint_removed_with_its_records_leaves_its_tiles(filled: Filled) -> None:
    """The careful version: checkpoint, publication and the meta records all
    rolled back to size 9. The tiles, written with the checkpoint, still
    cover 10 entries."""

    def rollback(db: RawDb) -> None:
        for table, key in (
            ("checkpoints", "checkpoints_head"),
            ("publications", "publications_head"),
        ):
            (prev,) = db.execute(f"select prev from {table} where size = 10")[0]
            db.execute(f"delete from {table} where size = 10")
            (value,) = db.execute("select value from meta where key = ?", (key,))[0]
            assert value.startswith("10 ")
            # The link of row 9 is what row 10 stored as its prev.
            db.execute("update meta set value = ? where key = ?", (f"9 {prev}", key))

    tamper(filled, rollback)
    fails(filled, r"^tile 0/0: holds 10 hashes, the latest checkpoint \(9 entries\)", 9)


def test_a_deleted_middle_checkpoint_is_named(filled: Filled) -> None:
    tamper(filled, lambda db: db.execute("delete from checkpoints where size = 3"))
    fails(filled, r"^checkpoint 6: not linked to checkpoint 0 .* removed")


def test_a_deleted_middle_checkpoint_and_its_publication(filled: Filled) -> None:
    def delete(db: RawDb) -> None:
        db.execute("delete from checkpoints where size = 6")
        db.execute("delete from publications where size = 6")

    tamper(filled, delete)
    fails(filled, r"^checkpoint 9: not linked to checkpoint 3 ")


def test_an_orphan_publication_is_named(filled: Filled) -> None:
    """The checkpoint removed and the chain of checkpoints rewritten to hide it:
    the publication left behind is an orphan (a join would have hidden it)."""
    from ledger.storage.base import checkpoint_link

    def delete_and_relink(db: RawDb) -> None:
        db.execute("delete from checkpoints where size = 6")
        rows = db.execute("select size, root, note, time from checkpoints order by size")
        prev = "0" * 64
        for size, root, note, t in rows:
            db.execute("update checkpoints set prev = ? where size = ?", (prev, size))
            prev = checkpoint_link(prev, size, bytes(root), note, t)
        db.execute("update meta set value = ? where key = 'checkpoints_head'", (f"10 {prev}",))

    tamper(filled, delete_and_relink)
    fails(filled, r"^publication 6: no sealed checkpoint of that size")


def test_a_deleted_middle_publication_is_named(filled: Filled) -> None:
    tamper(filled, lambda db: db.execute("delete from publications where size = 3"))
    fails(filled, r"^publication 6: not linked to publication 0 ")


def test_a_deleted_latest_publication_is_named(filled: Filled) -> None:
    tamper(filled, lambda db: db.execute("delete from publications where size = 10"))
    fails(filled, r"^publications: the latest publication recorded is of size 10")


def test_a_removed_timestamp_token_breaks_the_publication_chain(filled: Filled) -> None:
    tamper(
        filled, lambda db: db.execute("update publications set token = ? where size = 6", (b"x",))
    )
    fails(filled, r"^publication 9: not linked to publication 6 ")


# -- stored files ----------------------------------------------------------------


def test_edited_bytes_of_a_stored_file(filled: Filled) -> None:
    blobs = filled.ledger.blobs
    if isinstance(blobs, FsBlobStore):
        path = blobs.path_for(filled.big_sha256)
        raw = bytearray(path.read_bytes())
        raw[100] ^= 1
        path.write_bytes(bytes(raw))
    else:
        tamper(
            filled,
            lambda db: db.execute(
                "update blob_chunks set data = set_byte(data, 6, get_byte(data, 6) # 1) "
                "where upload_id = (select upload_id from blobs where sha256 = ?)",
                (filled.big_sha256,),
            ),
        )
    fails(filled, rf"^evidence \w+: stored file: blob: {filled.big_sha256} is corrupt", 3)


def test_edited_bytes_of_an_inline_file(filled: Filled) -> None:
    tamper(
        filled,
        lambda db: db.execute(
            "update blob_data set data = ? where sha256 = ?",
            (b"small inline evidencf", filled.small_sha256),
        ),
    )
    fails(filled, rf"^evidence \w+: stored file: blob: {filled.small_sha256} is corrupt", 4)


# -- projections -------------------------------------------------------------------


def test_an_account_given_another_role(filled: Filled) -> None:
    tamper(
        filled,
        lambda db: db.execute(
            "update accounts set role = 'admin' where account_id = ?", (filled.alice,)
        ),
    )
    fails(
        filled,
        rf"^accounts: account_id '{filled.alice}' \(entry 0\): column role: "
        r"expected 'rights_holder', found 'admin'$",
        0,
    )


def test_an_account_revoked_or_unrevoked_behind_the_log(filled: Filled) -> None:
    tamper(filled, lambda db: db.execute("update accounts set revoked_idx = 7 where idx = 1"))
    fails(
        filled,
        r"^accounts: account_id '\w+' \(entry 1\): column revoked_idx: expected None, found 7$",
        1,
    )


def test_evidence_given_another_owner(filled: Filled) -> None:
    tamper(
        filled,
        lambda db: db.execute(
            "update evidence set owner = 'mallory' where evidence_id = ?", (filled.owned,)
        ),
    )
    fails(
        filled,
        rf"^evidence: evidence_id '{filled.owned}' \(entry 2\): column owner: "
        rf"expected '{filled.alice}', found 'mallory'$",
        2,
    )


def test_a_projection_row_added_or_removed(filled: Filled) -> None:
    tamper(filled, lambda db: db.execute("delete from evidence where idx = 6"))
    fails(filled, r"^evidence: evidence_id '\w+' \(entry 6\): missing, the log creates it$", 6)
    filled.ledger.store.rebuild()
    audit_ledger(filled.ledger)
    tamper(
        filled,
        lambda db: db.execute(
            "insert into accounts values ('forged', 3, 't', 'admin', 'Eve', 'ab', null)"
        ),
    )
    fails(
        filled,
        r"^accounts: account_id 'forged' \(entry 3\): stored, but the log does not create it$",
        3,
    )


def test_a_title_with_control_characters_is_shown_escaped(filled: Filled) -> None:
    tamper(
        filled,
        lambda db: db.execute(
            "update evidence set title = ? where evidence_id = ?",
            ("mine\nVALID\u202e", filled.owned),
        ),
    )
    err = fails(filled, r"column title: expected 'mine', found 'mine\\nVALID\\u202e'$", 2)
    assert "\u202e" not in str(err)


# -- values of another SQL type ------------------------------------------------------


def _retype_private_body(db: RawDb) -> None:
    if db.kind == "sqlite":
        db.execute("update private set body = cast(body as text) where idx = 3")
    else:
        db.execute("alter table private alter column body type text using encode(body, 'escape')")


def test_a_private_body_of_another_sql_type_is_named(filled: Filled) -> None:
    tamper(filled, _retype_private_body)
    fails(filled, r"^entry [03]: private body is stored as text, not as bytes$")


def test_the_command_line_names_it_without_a_traceback(filled: Filled) -> None:
    filled.ledger.close()
    tamper(filled, _retype_private_body)
    r = subprocess.run(
        [str(EL), "--home", str(filled.ledger.config.home), "audit", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert re.fullmatch(
        r"error: entry [03]: private body is stored as text, not as bytes\n", r.stderr
    )


# -- the migration links existing rows -------------------------------------------------


def test_migration_links_the_rows_of_an_older_database(filled: Filled) -> None:
    """A database of schema version 6 (no prev columns, no heads) is linked when
    opened; from then on a deleted checkpoint is named."""
    led = filled.ledger
    home, url = led.config.home, led.config.database_url
    led.close()

    def downgrade(db: RawDb) -> None:
        for table in ("checkpoints", "publications"):
            db.execute(f"alter table {table} drop column prev")
        db.execute("delete from meta where key in ('checkpoints_head', 'publications_head')")
        db.execute("update meta set value = '6' where key = 'schema_version'")

    with raw_db(url, bypass_triggers=True) as db:
        downgrade(db)
    with Ledger.open(home) as again:
        assert again.store.get_meta("schema_version") == str(LATEST)
        assert audit_ledger(again)["checkpoints"] == 5
        with raw_db(url, bypass_triggers=True) as db:
            db.execute("delete from checkpoints where size = 6")
            assert json.dumps(db.execute("select count(*) from checkpoints")) == "[[4]]"
        with pytest.raises(AuditError, match=r"^checkpoint 9: not linked to checkpoint 3 "):
            audit_ledger(again)
