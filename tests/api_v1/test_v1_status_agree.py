"""One fold, three answers: ``evidence-verify log``, the status route and
``POST /v1/verify`` agree on a log with revocations (a double one included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from unchecked import unchecked
from v1_support import Service, service

from ledger.events import certificate_revoked
from ledger.export import export
from verifier.cli import main as evidence_verify


def _issue(svc: Service, data: bytes) -> dict[str, object]:
    eid = svc.deposit_hash(data=data)["evidence_id"]
    svc.ledger.seal()
    r = svc.client.post("/v1/certificates", json={"evidence_id": eid}, headers=svc.auth("notary"))
    assert r.status_code == 201, r.text
    return dict(json.loads(r.content))


def test_cli_status_route_and_verify_agree(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with service(tmp_path / "home", store_url) as svc:
        valid, once, twice = (_issue(svc, d) for d in (b"valid", b"revoked once", b"revoked twice"))
        r = svc.client.post(
            f"/v1/certificates/{once['certificate_id']}/revoke",
            json={"reason": "wrong file"},
            headers=svc.auth("notary"),
        )
        assert r.status_code == 200, r.text
        # Two revocations of one certificate (a log written without the
        # append-time check, by an older producer or a forger): the first counts.
        with unchecked("certificate.revoked"):
            first, _ = svc.ledger.append(
                [
                    certificate_revoked(
                        certificate_id=str(twice["certificate_id"]), reason=w, by=None
                    )
                    for w in ("first", "second")
                ]
            )
        svc.ledger.seal()
        export(svc.ledger.store, tmp_path / "export", svc.ledger.latest_checkpoint())
        trust = tmp_path / "trust.json"
        trust.write_bytes(svc.client.get("/v1/trust").content)

        route: dict[str, dict[str, object]] = {}
        online: dict[str, str] = {}
        paths = []
        for cert in (valid, once, twice):
            cid = str(cert["certificate_id"])
            route[cid] = svc.client.get(f"/v1/certificates/{cid}/status").json()
            path = tmp_path / f"{cid}.json"
            path.write_bytes(
                svc.client.get(f"/v1/certificates/{cid}", headers=svc.auth("notary")).content
            )
            paths.append(path)
            report = svc.client.post(
                "/v1/verify", files=[("certificate", ("c.json", path.read_bytes(), None))]
            ).json()
            (check,) = [c for c in report["checks"] if c["key"] == "revocation"]
            online[cid] = check["status"]

    capsys.readouterr()
    argv = ["log", str(tmp_path / "export"), "--trust", str(trust), "--json", "--workers", "1"]
    for path in paths:
        argv += ["--certificate", str(path)]
    code = evidence_verify(argv)
    doc = json.loads(capsys.readouterr().out)
    offline_revoked = {str(r["certificate_id"]): r for r in doc["revoked"]}
    offline = {c["subject"]: c["status"] for c in doc["checks"] if c["key"] == "revocation"}
    issued_ok = [c["status"] for c in doc["checks"] if c["key"] == "issuance_logged"]
    assert issued_ok == ["passed"] * 3
    assert code == 1  # two certificates are revoked

    assert route[str(twice["certificate_id"])]["revoked_index"] == first.index
    for cid, status in route.items():
        revoked = status["status"] == "revoked"
        assert offline[cid[:16]] == online[cid] == ("failed" if revoked else "passed")
        if revoked:
            assert offline_revoked[cid]["index"] == status["revoked_index"]
            assert offline_revoked[cid]["time"] == status["revoked_time"]
        else:
            assert cid not in offline_revoked
    assert [s["status"] for s in route.values()] == ["valid", "revoked", "revoked"]
