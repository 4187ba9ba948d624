"""Projections are derived from the log: dropping and replaying them is lossless."""

from __future__ import annotations

import hashlib
import io

from ledger_helpers import hash_drafts, raw_db

from ledger.core import Ledger
from ledger.events import account_registered, key_registered, make_draft
from ledger.projections import PROJECTIONS
from ledger.services import OPERATOR, Services


def test_rebuild_replays_identical_projections(ledger: Ledger) -> None:
    content = b"contract scan, page 1\n" * 1000
    file_receipt = Services(ledger).deposits.deposit_file(
        OPERATOR,
        io.BytesIO(content),
        title="合同扫描件",
        file_name="contract.pdf",
        media_type="application/pdf",
    )
    hash_receipt = Services(ledger).deposits.deposit_hash(
        OPERATOR, "ab" * 32, sm3="cd" * 32, title="hash only"
    )
    notary = "1" * 32
    vkey = "notary+1234abcd+AAAA"
    ledger.append(
        [
            account_registered(
                role="notary", name="张公证员", token_sha256="ee" * 32, account_id=notary
            ),
            account_registered(role="rights_holder", name="Rights Holder Ltd"),
            key_registered(account_id=notary, vkey=vkey, purpose="certificate", valid_from="x"),
        ]
    )
    ledger.append(hash_drafts(50))
    # Later events update earlier projection rows; replay must do the same.
    ledger.append(
        [
            make_draft("account.revoked", {"account_id": notary}, {"reason": "test"}, notary),
            make_draft("key.revoked", {"vkey": vkey}, {}, notary),
        ]
    )
    size = ledger.store.size()

    before = ledger.store.dump_projections()
    assert set(before) == set(PROJECTIONS)
    assert len(before["evidence"]) == 52
    assert len(before["accounts"]) == 2
    assert len(before["keys"]) == 1

    evidence = Services(ledger).evidence.get(OPERATOR, file_receipt.evidence_id)
    assert evidence.kind == "file"
    assert evidence.sha256 == hashlib.sha256(content).hexdigest()
    assert evidence.sm3 == hashlib.new("sm3", content).hexdigest()
    assert evidence.size == len(content)
    assert evidence.title == "合同扫描件"
    assert evidence.index == file_receipt.index
    assert Services(ledger).evidence.get(OPERATOR, hash_receipt.evidence_id).kind == "hash"
    accounts = ledger.store.query(
        "select name, revoked_idx from accounts where account_id = ?", (notary,)
    )
    assert accounts == [{"name": "张公证员", "revoked_idx": size - 2}]
    assert ledger.store.query("select revoked_idx from keys") == [{"revoked_idx": size - 1}]

    assert ledger.store.rebuild() == size
    assert ledger.store.dump_projections() == before
    # Projections damaged or lost outside the ledger come back from the log.
    with raw_db(ledger.config.database_url) as db:
        db.execute("delete from evidence where kind = 'hash'")
        db.execute("update accounts set name = 'mallory'")
        db.execute("drop table keys")
    assert ledger.store.rebuild() == size
    assert ledger.store.dump_projections() == before
    # Rebuilding twice, and after reopening, changes nothing either.
    assert ledger.store.rebuild() == size
    assert ledger.store.dump_projections() == before
    home = ledger.config.home
    ledger.close()
    with Ledger.open(home) as again:
        assert again.store.dump_projections() == before
        assert Services(again).stats()["projections"] == {"evidence": 52, "accounts": 2, "keys": 1}


def test_older_projection_schema_is_replayed_on_open(tmp_path) -> None:
    """A database made before a projection table or column existed is brought
    up to date on open by replaying the log (projections are derived data)."""
    import sqlite3

    from ledger.core import Ledger
    from ledger.events import evidence_deposited

    home = tmp_path / "old"
    with Ledger.init(home, origin="ledger.test/log") as led:
        led.append([evidence_deposited(kind="hash", sha256="ab" * 32, title="kept")])
        before = led.store.dump_projections()
    db = sqlite3.connect(home / "ledger.db")
    db.execute("drop table certificates")
    db.execute("delete from meta where key = 'projections'")
    db.commit()
    db.close()
    with Ledger.open(home) as led:
        assert led.store.dump_projections() == before
        assert led.store.query("select title from evidence")[0]["title"] == "kept"
