"""Projections are derived from the log: dropping and replaying them is lossless."""

from __future__ import annotations

import hashlib
import io

import pytest
from ledger_helpers import hash_drafts, raw_db

from ledger.core import Ledger
from ledger.events import account_registered, account_revoked, key_registered, key_revoked
from ledger.projections import HANDLERS, PROJECTIONS, Update, handles, project
from ledger.services import OPERATOR, Services
from verifier.events import CATALOGUE, CertificateRevoked
from verifier.note import VerifierKey


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
    vkey = VerifierKey.from_public_key("notary", bytes(32)).to_text()
    ledger.append(
        [
            account_registered(
                role="notary", name="张公证员", token_sha256="ee" * 32, account_id=notary
            ),
            account_registered(role="rights_holder", name="Rights Holder Ltd"),
            key_registered(
                account_id=notary,
                vkey=vkey,
                purpose="certificate",
                valid_from="2026-01-01T00:00:00.000000Z",
            ),
        ]
    )
    ledger.append(hash_drafts(50))
    # Later events update earlier projection rows; replay must do the same.
    ledger.append(
        [
            account_revoked(account_id=notary),
            key_revoked(account_id=notary, vkey=vkey),
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


def test_every_event_type_has_one_projection_handler() -> None:
    """Adding an event type means one catalogue class and one handler."""
    assert set(HANDLERS) == set(CATALOGUE)
    with pytest.raises(ValueError, match="already has a handler"):
        handles(CertificateRevoked)(lambda e, i, t: [])


def test_replay_projects_nothing_for_bodies_the_catalogue_refuses() -> None:
    """A stored event whose body another producer shaped differently is skipped,
    never a failed rebuild."""
    t = "2026-01-01T00:00:00.000000Z"
    assert project("certificate.issued", {"n": 1}, {}, 7, t) == []
    assert project("certificate.revoked", {"certificate_id": "ab" * 32}, {"why": 1}, 7, t) == []
    assert project("custody.transferred", {}, {}, 7, t) == []
    ops = project("certificate.revoked", {"certificate_id": "ab" * 32}, {"reason": "r"}, 7, t)
    assert ops == [
        Update(
            "certificates",
            "certificate_id",
            "ab" * 32,
            {"revoked_idx": 7, "revoked_time": t, "revoked_reason": "r"},
            "revoked_idx",
        )
    ]
