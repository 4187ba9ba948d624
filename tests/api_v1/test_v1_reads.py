"""Reading evidence: listings, filters, pagination, content, proofs."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from v1_support import Service, service

from verifier.merkle import verify_consistency, verify_inclusion
from verifier.tlogproof import parse_tlog_proof


@pytest.fixture
def svc(tmp_path: Path):
    with service(tmp_path / "home") as s:
        for i in range(7):
            s.deposit_hash(data=f"doc-{i}".encode())
        s.deposit_hash("other", data=b"someone else's")
        s.ledger.seal()
        yield s


def test_listing_shows_only_own_deposits_with_pagination(svc: Service) -> None:
    seen, cursor = [], 0
    while True:
        r = svc.client.get(
            f"/v1/evidence?limit=3&cursor={cursor}", headers=svc.auth("rights_holder")
        )
        assert r.status_code == 200
        page = r.json()
        seen += [e["title"] for e in page["items"]]
        if page.get("next_cursor") is None:
            break
        cursor = page["next_cursor"]
    assert seen == [f"doc-{i}" for i in range(7)]
    everyone = svc.client.get("/v1/evidence", headers=svc.auth("auditor")).json()["items"]
    assert len(everyone) == 8
    assert all(e["sealed"] for e in everyone)


def test_listing_filters(svc: Service) -> None:
    h = svc.auth("rights_holder")
    by_title = svc.client.get("/v1/evidence?title=DOC-3", headers=h).json()["items"]
    assert [e["title"] for e in by_title] == ["doc-3"]
    sha = hashlib.sha256(b"doc-5").hexdigest()
    by_digest = svc.client.get(f"/v1/evidence?sha256={sha.upper()}", headers=h).json()["items"]
    assert [e["title"] for e in by_digest] == ["doc-5"]
    assert svc.client.get("/v1/evidence?title=%25", headers=h).json()["items"] == []
    first = by_title[0]["time"]
    later = svc.client.get(f"/v1/evidence?since={first}", headers=h).json()["items"]
    assert {e["title"] for e in later} >= {"doc-3", "doc-6"}
    assert svc.client.get("/v1/evidence?until=2000-01-01", headers=h).json()["items"] == []
    assert svc.client.get("/v1/evidence?kind=file", headers=h).json()["items"] == []
    for bad in ("limit=0", "limit=1001", "cursor=-1", "sha256=xyz", "kind=pdf"):
        r = svc.client.get(f"/v1/evidence?{bad}", headers=h)
        assert r.status_code == 422, bad
        assert r.headers["content-type"] == "application/problem+json"


def test_another_accounts_evidence_is_404(svc: Service) -> None:
    theirs = svc.client.get("/v1/evidence", headers=svc.auth("other")).json()["items"][0]
    for suffix in ("", "/proof", "/content"):
        r = svc.client.get(
            f"/v1/evidence/{theirs['evidence_id']}{suffix}", headers=svc.auth("rights_holder")
        )
        assert r.status_code == 404, suffix
    assert (
        svc.client.get(
            f"/v1/evidence/{theirs['evidence_id']}", headers=svc.auth("notary")
        ).status_code
        == 200
    )
    assert svc.client.get("/v1/evidence/nope", headers=svc.auth("admin")).status_code == 404


def test_hash_only_evidence_has_no_content(svc: Service) -> None:
    e = svc.client.get("/v1/evidence", headers=svc.auth("rights_holder")).json()["items"][0]
    r = svc.client.get(
        f"/v1/evidence/{e['evidence_id']}/content", headers=svc.auth("rights_holder")
    )
    assert r.status_code == 404
    assert "hash" in r.json()["detail"]


def test_proofs_verify_in_json_and_tlog_proof_text(svc: Service) -> None:
    h = svc.auth("rights_holder")
    e = svc.client.get("/v1/evidence", headers=h).json()["items"][4]
    p = svc.client.get(f"/v1/evidence/{e['evidence_id']}/proof", headers=h).json()
    root = base64.b64decode(p["checkpoint"]["root"])
    hashes = [base64.b64decode(x) for x in p["hashes"]]
    verify_inclusion(bytes.fromhex(p["leaf_hash"]), e["index"], p["tree_size"], hashes, root)
    text = svc.client.get(
        f"/v1/evidence/{e['evidence_id']}/proof", headers={**h, "Accept": "text/plain"}
    )
    assert text.headers["content-type"].startswith("text/plain")
    tp = parse_tlog_proof(text.text)
    assert tp.index == e["index"]
    assert list(tp.hashes) == hashes
    assert tp.checkpoint == p["checkpoint"]["note"]
    # A proof to an older checkpoint that does not contain the entry is a 404.
    r = svc.client.get(f"/v1/evidence/{e['evidence_id']}/proof?size=1", headers=h)
    assert r.status_code == 404


def test_consistency_proofs_are_public_and_verify(svc: Service) -> None:
    sizes = [cp.size for cp in svc.ledger.store.checkpoints()]
    old, new = sizes[0], sizes[-1]
    r = svc.client.get(f"/v1/proofs/consistency?old={old}&new={new}")
    assert r.status_code == 200
    c = r.json()
    verify_consistency(
        old,
        new,
        [base64.b64decode(x) for x in c["hashes"]],
        base64.b64decode(c["old"]["root"]),
        base64.b64decode(c["new"]["root"]),
    )
    assert svc.client.get(f"/v1/proofs/consistency?old={new}&new={old}").status_code == 404
    assert svc.client.get("/v1/proofs/consistency?old=1&new=999").status_code == 404
    assert svc.client.get("/v1/proofs/consistency?old=a&new=2").status_code == 422


def test_cli_deposit_on_behalf_of_a_rights_holder_is_theirs(tmp_path: Path) -> None:
    """`evidence-ledger deposit --owner NAME` puts the evidence in that account's list."""
    from click.testing import CliRunner

    from ledger.cli import cli

    with service(tmp_path / "home") as s:
        s.ledger.close()
        home = str(tmp_path / "home")
        runner = CliRunner()
        ok = runner.invoke(
            cli, ["--home", home, "deposit", "--sha256", "ab" * 32, "--owner", "rights_holder-1"]
        )
        assert ok.exit_code == 0, ok.output
        bad = runner.invoke(
            cli, ["--home", home, "deposit", "--sha256", "cd" * 32, "--owner", "notary-1"]
        )
        assert bad.exit_code != 0
        assert "error: account: no active rights_holder account" in bad.output
        from ledger.core import Ledger

        with Ledger.open(tmp_path / "home") as led:
            rows = led.store.query("select owner, sha256 from evidence")
        assert rows == [{"owner": s.ids["rights_holder"], "sha256": "ab" * 32}]
