"""``GET /v1/certificates/{id}/pdf``: the same visibility as the certificate, a PDF
that ``evidence-verify pdf`` accepts with the public trust file, problems as RFC 9457."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api_v1"))

from v1_support import Service, service

from verifier.pdf import verify_pdf
from verifier.trust import load_trust


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service(tmp_path_factory.mktemp("api") / "home") as s:
        r = s.client.post(
            "/v1/evidence",
            files=[("file", ("design.txt", b"the original design", "text/plain"))],
            data={"title": "设计稿"},
            headers=s.auth("rights_holder"),
        )
        assert r.status_code == 201, r.text
        eid = r.json()["receipts"][0]["evidence_id"]
        s.ledger.seal()
        r = s.client.post("/v1/certificates", json={"evidence_id": eid}, headers=s.auth("notary"))
        assert r.status_code == 201, r.text
        s.cid = json.loads(r.content)["certificate_id"]  # type: ignore[attr-defined]
        yield s


def test_readers_get_a_pdf_that_verifies(svc: Service) -> None:
    cid = svc.cid  # type: ignore[attr-defined]
    trust = load_trust(svc.client.get("/v1/trust").content)
    for role in ("rights_holder", "notary", "auditor", "admin"):
        r = svc.client.get(f"/v1/certificates/{cid}/pdf", headers=svc.auth(role))
        assert r.status_code == 200, (role, r.text)
        assert r.headers["content-type"] == "application/pdf"
        assert f'filename="certificate-{cid[:16]}.pdf"' in r.headers["content-disposition"]
        report = verify_pdf(r.content, trust)
        bad = {c.key: c.reason for c in report.failed}
        assert set(bad) <= {"evidence_file"}, bad  # the file itself is not given here


def test_others_get_the_same_problems_as_for_the_certificate(svc: Service) -> None:
    cid = svc.cid  # type: ignore[attr-defined]
    for path in (f"/v1/certificates/{cid}", f"/v1/certificates/{cid}/pdf"):
        other = svc.client.get(path, headers=svc.auth("other"))
        assert other.status_code == 404
        assert other.headers["content-type"] == "application/problem+json"
        assert svc.client.get(path).status_code == 401
    r = svc.client.get("/v1/certificates/" + "ab" * 32 + "/pdf", headers=svc.auth("admin"))
    assert r.status_code == 404 and r.json()["status"] == 404


def test_the_route_is_documented(svc: Service) -> None:
    spec = svc.client.get("/openapi.json").json()
    op = spec["paths"]["/v1/certificates/{certificate_id}/pdf"]["get"]
    assert "application/pdf" in op["responses"]["200"]["content"]
