"""Role x route table: every route admits exactly the roles it should.

No token is 401, a valid token with the wrong role is 403, an allowed role
gets the route's own answer (2xx, or 404 for another account's evidence).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from v1_support import ROLES, Service, service

ALL = set(ROLES)
PUBLIC = {*ROLES, None}


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service(tmp_path_factory.mktemp("roles") / "home") as s:
        s.deposit_hash(data=b"owned")
        s.ledger.seal()
        yield s


def _evidence_id(svc: Service) -> str:
    items = svc.client.get("/v1/evidence", headers=svc.auth("rights_holder")).json()["items"]
    return str(items[0]["evidence_id"])


# (method, path template, allowed roles, json body)
ROUTES = [
    ("POST", "/v1/evidence", {"rights_holder"}, {"sha256": "12" * 32}),
    ("GET", "/v1/evidence", ALL, None),
    ("GET", "/v1/evidence/{eid}", ALL, None),
    ("GET", "/v1/evidence/{eid}/proof", ALL, None),
    ("GET", "/v1/proofs/consistency?old=0&new={size}", PUBLIC, None),
    ("GET", "/checkpoint", PUBLIC, None),
    ("GET", "/v1/certificates/{cid}", ALL, None),
    ("GET", "/v1/certificates/{cid}/package", ALL, None),
    ("GET", "/v1/certificates/{cid}/status", PUBLIC, None),
    ("GET", "/v1/trust", PUBLIC, None),
    ("POST", "/v1/certificates", {"notary"}, "issue"),
    ("POST", "/v1/certificates/{cid}/revoke", {"notary", "admin"}, "revoke"),
]


def _certificate_id(svc: Service) -> str:
    """A fresh certificate (revocation consumes one)."""
    r = svc.client.post(
        "/v1/certificates", json={"evidence_id": _evidence_id(svc)}, headers=svc.auth("notary")
    )
    assert r.status_code == 201, r.text
    return str(r.json()["certificate_id"])


@pytest.mark.parametrize(("method", "path", "allowed", "body"), ROUTES)
@pytest.mark.parametrize("role", [*ROLES, None])
def test_role_table(svc: Service, method: str, path: str, allowed: set, body, role) -> None:
    eid = _evidence_id(svc)
    cid = _certificate_id(svc) if "{cid}" in path else ""
    if body == "issue":
        body = {"evidence_id": eid}
    elif body == "revoke":
        body = {"reason": "role table"}
    url = path.format(eid=eid, cid=cid, size=svc.ledger.published_size())
    r = svc.client.request(method, url, json=body, headers=svc.auth(role))
    if role in allowed:
        assert r.status_code < 300, (role, url, r.text)
    elif role is None:
        assert r.status_code == 401, (role, url, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    else:
        assert r.status_code == 403, (role, url, r.text)
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "header",
    ["Bearer nope", "Bearer elt_" + "0" * 43, "Basic dXNlcjpwYXNz", "Bearer", "elt_x"],
)
def test_bad_tokens_are_401(svc: Service, header: str) -> None:
    r = svc.client.get("/v1/evidence", headers={"Authorization": header})
    assert r.status_code == 401
    assert r.json()["status"] == 401


def test_another_rights_holder_gets_404_not_403(svc: Service) -> None:
    eid = _evidence_id(svc)
    for suffix in ("", "/proof", "/content"):
        r = svc.client.get(f"/v1/evidence/{eid}{suffix}", headers=svc.auth("other"))
        assert r.status_code == 404, suffix
