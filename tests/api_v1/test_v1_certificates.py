"""在线出证 and 在线验真 over HTTP: issue, read, package, revoke, status, verify."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from v1_support import Service, service

from verifier.package import verify_package
from verifier.trust import load_trust


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    with service(tmp_path / "home") as s:
        r = s.client.post(
            "/v1/evidence",
            files=[("file", ("design.txt", b"the original design", "text/plain"))],
            data={"title": "设计稿"},
            headers=s.auth("rights_holder"),
        )
        assert r.status_code == 201
        s.evidence_id = r.json()["receipts"][0]["evidence_id"]  # type: ignore[attr-defined]
        s.ledger.seal()
        yield s


def issue(svc: Service, statement: str | None = "经核查属实 / verified") -> dict:
    body = {"evidence_id": svc.evidence_id, "statement": statement}  # type: ignore[attr-defined]
    r = svc.client.post("/v1/certificates", json=body, headers=svc.auth("notary"))
    assert r.status_code == 201, r.text
    return json.loads(r.content)


def test_issue_read_package_and_verify_offline(svc: Service, tmp_path: Path) -> None:
    cert = issue(svc)
    cid = cert["certificate_id"]
    assert cert["format"] == "evidence-certificate/v1"
    for role in ("rights_holder", "notary", "auditor", "admin"):
        r = svc.client.get(f"/v1/certificates/{cid}", headers=svc.auth(role))
        assert r.status_code == 200, role
        assert json.loads(r.content) == cert
    # Another rights holder cannot see it, nor its package.
    assert svc.client.get(f"/v1/certificates/{cid}", headers=svc.auth("other")).status_code == 404
    r = svc.client.get(f"/v1/certificates/{cid}/package", headers=svc.auth("other"))
    assert r.status_code == 404
    pkg = svc.client.get(f"/v1/certificates/{cid}/package", headers=svc.auth("rights_holder"))
    assert pkg.status_code == 200
    assert pkg.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(pkg.content)).namelist()
    assert "certificate.json" in names and "proof.txt" in names
    path = tmp_path / "pkg.zip"
    path.write_bytes(pkg.content)
    trust = load_trust(svc.client.get("/v1/trust").content)
    report = verify_package(path, trust)
    assert report.valid, [c for c in report.checks if not c.ok]


def test_only_notaries_issue_and_unsealed_evidence_is_409(tmp_path: Path) -> None:
    with service(tmp_path / "h") as svc:
        eid = svc.deposit_hash(data=b"not sealed yet")["evidence_id"]
        for role in ("rights_holder", "auditor", "admin"):
            r = svc.client.post(
                "/v1/certificates", json={"evidence_id": eid}, headers=svc.auth(role)
            )
            assert r.status_code == 403, role
        r = svc.client.post(
            "/v1/certificates", json={"evidence_id": eid}, headers=svc.auth("notary")
        )
        assert r.status_code == 409
        assert "seal" in r.json()["detail"]
        r = svc.client.post(
            "/v1/certificates", json={"evidence_id": "abc123"}, headers=svc.auth("notary")
        )
        assert r.status_code == 404


def test_revoke_then_status_says_revoked_and_verify_reports_it(svc: Service) -> None:
    cid = issue(svc)["certificate_id"]
    assert svc.client.get(f"/v1/certificates/{cid}/status").json()["status"] == "valid"
    r = svc.client.post(
        f"/v1/certificates/{cid}/revoke", json={"reason": "x"}, headers=svc.auth("rights_holder")
    )
    assert r.status_code == 403
    r = svc.client.post(
        f"/v1/certificates/{cid}/revoke", json={"reason": "wrong file"}, headers=svc.auth("notary")
    )
    assert r.status_code == 200, r.text
    index = r.json()["index"]
    status = svc.client.get(f"/v1/certificates/{cid}/status").json()
    assert (status["status"], status["revoked_index"]) == ("revoked", index)
    again = svc.client.post(
        f"/v1/certificates/{cid}/revoke", json={"reason": "again"}, headers=svc.auth("notary")
    )
    assert again.status_code == 409  # already revoked: a conflict with the log
    pkg = svc.client.get(f"/v1/certificates/{cid}/package", headers=svc.auth("notary")).content
    report = svc.client.post("/v1/verify", files=[("package", ("p.zip", pkg, None))]).json()
    assert report["valid"] is False
    failed = [c for c in report["checks"] if c["status"] != "passed"]
    assert any("revoc" in json.dumps(c) for c in failed), failed


def test_public_verify_of_certificate_and_evidence(svc: Service) -> None:
    cert = issue(svc)
    raw = svc.client.get(
        f"/v1/certificates/{cert['certificate_id']}", headers=svc.auth("notary")
    ).content
    ok = svc.client.post(
        "/v1/verify?lang=zh",
        files=[
            ("certificate", ("c.json", raw, "application/json")),
            ("evidence", ("design.txt", b"the original design", None)),
        ],
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["valid"] is True
    assert ok.json()["lang"] == "zh"
    bad = svc.client.post(
        "/v1/verify",
        files=[
            ("certificate", ("c.json", raw, "application/json")),
            ("evidence", ("design.txt", b"the original desigN", None)),
        ],
    ).json()
    assert bad["valid"] is False
    digest = hashlib.sha256(b"the original desigN").hexdigest()
    assert digest not in json.dumps(cert)


@pytest.mark.parametrize(
    "files",
    [
        [("certificate", ("c.json", b"{not json", None))],
        [("certificate", ("c.json", b"\xff\xfe", None))],
        [("package", ("p.zip", b"PK\x03\x04 not really a zip", None))],
        [("evidence", ("e.txt", b"only evidence", None))],
        [("bogus", ("x", b"x", None))],
    ],
)
def test_malformed_verify_input_is_4xx(svc: Service, files: list) -> None:
    r = svc.client.post("/v1/verify", files=files)
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_verify_is_rate_limited(svc: Service) -> None:
    codes = [
        svc.client.post("/v1/verify", files=[("evidence", ("e", b"e", None))]).status_code
        for _ in range(15)
    ]
    assert 429 in codes
    r = svc.client.post("/v1/verify", files=[("evidence", ("e", b"e", None))])
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1


def test_trust_file_is_public_and_names_the_notary(svc: Service) -> None:
    issue(svc)
    t = svc.client.get("/v1/trust").json()
    assert t["format"] == "evidence-trust/v1"
    assert t["logs"][0]["origin"] == "api.test/log"
    assert any(n["name"] for n in t["notaries"])


def test_unknown_certificate_is_404_everywhere(svc: Service) -> None:
    for path in ("", "/package", "/status"):
        h = svc.auth("notary") if path != "/status" else {}
        assert svc.client.get(f"/v1/certificates/{'0' * 64}{path}", headers=h).status_code == 404
    r = svc.client.post(
        f"/v1/certificates/{'0' * 64}/revoke", json={"reason": "r"}, headers=svc.auth("notary")
    )
    assert r.status_code == 404


def test_private_artefacts_only_for_the_owning_rights_holder(svc: Service, tmp_path: Path) -> None:
    cid = issue(svc)["certificate_id"]
    url = f"/v1/certificates/{cid}/package?include_private=true"
    owner = svc.client.get(url, headers=svc.auth("rights_holder"))
    assert owner.status_code == 200 and owner.headers["content-type"] == "application/zip"
    for role in ("notary", "auditor", "admin"):  # they see the evidence, not its secrets
        r = svc.client.get(url, headers=svc.auth(role))
        assert r.status_code == 403, role
        assert r.headers["content-type"] == "application/problem+json"
        assert "only for the rights holder" in r.json()["detail"]
    assert svc.client.get(url, headers=svc.auth("other")).status_code == 404
    # The command line acts as the operator.
    from click.testing import CliRunner

    from ledger.cli import cli

    out = tmp_path / "own.zip"
    home = str(svc.ledger.config.home)
    args = ["--home", home, "certificate", "package", cid, str(out), "--include-private"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "certificate.json" in zipfile.ZipFile(out).namelist()
