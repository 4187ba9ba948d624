"""Certificate requests over HTTP: a rights holder asks, a notary rejects or issues."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from v1_support import Service, service


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    with service(tmp_path / "home") as s:
        yield s


def _sealed_evidence(svc: Service, data: bytes = b"req") -> str:
    eid = str(svc.deposit_hash(data=data)["evidence_id"])
    svc.ledger.seal()
    return eid


def test_request_reject_then_issue(svc: Service) -> None:
    eid = _sealed_evidence(svc)
    r = svc.client.post(
        "/v1/certificate-requests",
        json={"evidence_id": eid, "note": "for the hearing"},
        headers=svc.auth("rights_holder"),
    )
    assert r.status_code == 201, r.text
    req = r.json()
    assert (req["status"], req["note"]) == ("requested", "for the hearing")
    # a second open request for the same evidence is a conflict
    r = svc.client.post(
        "/v1/certificate-requests", json={"evidence_id": eid}, headers=svc.auth("rights_holder")
    )
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    # the notary's queue
    queue = svc.client.get(
        "/v1/certificate-requests?status=requested", headers=svc.auth("notary")
    ).json()
    assert [x["request_id"] for x in queue["items"]] == [req["request_id"]]
    # another rights holder sees nothing of it
    assert svc.client.get("/v1/certificate-requests", headers=svc.auth("other")).json() == {
        "items": []
    }
    r = svc.client.get(f"/v1/certificate-requests/{req['request_id']}", headers=svc.auth("other"))
    assert r.status_code == 404
    # only a notary rejects
    url = f"/v1/certificate-requests/{req['request_id']}/reject"
    for role in ("rights_holder", "auditor", "admin"):
        assert svc.client.post(url, json={"reason": "x"}, headers=svc.auth(role)).status_code == 403
    r = svc.client.post(url, json={"reason": "blurry scan"}, headers=svc.auth("notary"))
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reason"]) == ("rejected", "blurry scan")
    assert (
        svc.client.post(url, json={"reason": "again"}, headers=svc.auth("notary")).status_code
        == 409
    )
    # ask again; the notary issues against the request, which closes it
    r = svc.client.post(
        "/v1/certificate-requests", json={"evidence_id": eid}, headers=svc.auth("rights_holder")
    )
    rid = r.json()["request_id"]
    r = svc.client.post(
        "/v1/certificates",
        json={"evidence_id": eid, "request_id": rid},
        headers=svc.auth("notary"),
    )
    assert r.status_code == 201, r.text
    cid = r.json()["certificate_id"]
    done = svc.client.get(f"/v1/certificate-requests/{rid}", headers=svc.auth("rights_holder"))
    assert (done.json()["status"], done.json()["certificate_id"]) == ("issued", cid)
    status = svc.client.get(f"/v1/certificates/{cid}/status").json()
    assert status["status"] == "valid" and status["deposit_no"].startswith("EL-")


def test_request_needs_sealed_own_evidence(svc: Service) -> None:
    eid = str(svc.deposit_hash(data=b"unsealed")["evidence_id"])
    r = svc.client.post(
        "/v1/certificate-requests", json={"evidence_id": eid}, headers=svc.auth("rights_holder")
    )
    assert r.status_code == 409  # not sealed yet
    svc.ledger.seal()
    r = svc.client.post(
        "/v1/certificate-requests", json={"evidence_id": eid}, headers=svc.auth("other")
    )
    assert r.status_code == 404  # not theirs
    r = svc.client.post(
        "/v1/certificate-requests", json={"evidence_id": eid}, headers=svc.auth("notary")
    )
    assert r.status_code == 403
    r = svc.client.post(
        "/v1/certificate-requests", json={"evidence_id": "zz"}, headers=svc.auth("rights_holder")
    )
    assert r.status_code == 422
