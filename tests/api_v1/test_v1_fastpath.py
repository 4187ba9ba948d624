"""api.fastpath: plain deposits and proofs skip FastAPI's machinery but not its rules.

Each case sends the same request twice: once down the fast path (a token the
worker has already authenticated, no query string) and once through the
FastAPI route (a query parameter with its default value forces it), and
compares what came back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from v1_support import Service, service

from ledger.services import OPERATOR, Services


@pytest.fixture
def svc(tmp_path: Path):
    with service(tmp_path / "home", max_upload_bytes=1 << 16) as s:
        # The first request of each account authenticates through the route
        # and fills the token cache; later ones may take the fast path.
        for role in ("rights_holder", "notary", "other"):
            assert s.client.get("/v1/evidence", headers=s.auth(role)).status_code == 200
        yield s


def served(svc: Service) -> int:
    return int(svc.client.app.state.fast_path_served)  # type: ignore[attr-defined]


def post(svc: Service, role: str, *, slow: bool, **kwargs: Any) -> Any:
    before = served(svc)
    url = "/v1/evidence?wait=durable" if slow else "/v1/evidence"
    headers = {**svc.auth(role), **kwargs.pop("headers", {})}
    r = svc.client.post(url, headers=headers, **kwargs)
    assert served(svc) == before + (0 if slow else 1), "request took the other path"
    return r


def without_entry(receipt: dict[str, Any]) -> dict[str, Any]:
    """A receipt minus what differs between two deposits of the same content."""
    return {
        k: v
        for k, v in receipt.items()
        if k not in {"evidence_id", "deposit_no", "index", "leaf_hash", "time"}
    }


def test_hash_deposit_receipts_match(svc: Service) -> None:
    body = {"sha256": hashlib.sha256(b"a").hexdigest(), "title": "同一份"}
    fast = post(svc, "rights_holder", slow=False, json=body)
    slow = post(svc, "rights_holder", slow=True, json=body)
    assert fast.status_code == slow.status_code == 201
    assert fast.headers["content-type"] == slow.headers["content-type"]
    (a,), (b,) = fast.json()["receipts"], slow.json()["receipts"]
    assert set(a) == set(b)
    assert without_entry(a) == without_entry(b)
    assert b["index"] == a["index"] + 1
    row = Services(svc.ledger).evidence.get(OPERATOR, a["evidence_id"])
    assert row.owner == svc.ids["rights_holder"] and row.title == "同一份"


def test_file_deposit_receipts_match(svc: Service) -> None:
    files = {"file": ("a.txt", b"content", "text/plain")}
    fast = post(svc, "rights_holder", slow=False, files=files, data={"title": "t"})
    slow = post(svc, "rights_holder", slow=True, files=files, data={"title": "t"})
    assert fast.status_code == slow.status_code == 201
    (a,), (b,) = fast.json()["receipts"], slow.json()["receipts"]
    assert without_entry(a) == without_entry(b)
    assert a["sha256"] == hashlib.sha256(b"content").hexdigest()
    assert svc.ledger.blobs.exists(a["sha256"])


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422),
        ({"json": {"sha256": "zz"}}, 422),
        ({"json": {"sha256": "ab" * 32, "surprise": 1}}, 422),
        ({"json": {"sha256": "ab" * 32, "title": "bell\x07"}}, 422),
        ({"content": b"sha256=ab", "headers": {"Content-Type": "text/plain"}}, 415),
        ({"files": {"other": ("a", b"x")}}, 400),
        ({"files": {"file": ("big", b"x" * 70_000)}}, 413),
    ],
)
def test_bad_deposits_get_the_same_problem(
    svc: Service, kwargs: dict[str, Any], status: int
) -> None:
    size = svc.ledger.store.size()
    fast = post(svc, "rights_holder", slow=False, **dict(kwargs))
    slow = post(svc, "rights_holder", slow=True, **dict(kwargs))
    assert fast.status_code == slow.status_code == status
    assert (
        fast.headers["content-type"] == slow.headers["content-type"] == ("application/problem+json")
    )
    assert fast.json() == slow.json()
    assert svc.ledger.store.size() == size  # nothing was deposited


def test_oversized_json_is_refused_before_either_path(svc: Service) -> None:
    """The body limit stands outside the fast path: neither path reads the body."""
    before = served(svc)
    answers = [
        svc.client.post(
            url,
            content=b"x" * 70_000,
            headers={**svc.auth("rights_holder"), "Content-Type": "application/json"},
        )
        for url in ("/v1/evidence", "/v1/evidence?wait=durable")
    ]
    assert served(svc) == before
    assert [r.status_code for r in answers] == [413, 413]
    assert answers[0].json() == answers[1].json()
    assert answers[0].headers["content-type"] == "application/problem+json"


def test_requests_the_fast_path_leaves_to_the_routes(svc: Service) -> None:
    body = {"json": {"sha256": "cd" * 32}}
    # A role that may not deposit: the route's 403, not a deposit.
    r = post(svc, "notary", slow=True, **body)
    assert r.status_code == 403
    # Tokens not yet authenticated by this worker go through the route (401 here).
    r = post(svc, "rights_holder", slow=True, headers={"Authorization": "Bearer nope"}, **body)
    assert r.status_code == 401
    before = served(svc)
    r = svc.client.post("/v1/evidence", json={"sha256": "cd" * 32})
    assert r.status_code == 401 and served(svc) == before
    # An Idempotency-Key is the route's business.
    r = post(svc, "rights_holder", slow=True, headers={"Idempotency-Key": "k1"}, **body)
    assert r.status_code == 201


def test_revoked_token_stops_at_the_cache_lifetime(svc: Service) -> None:
    from ledger.accounts import revoke_account

    revoke_account(svc.ledger, svc.ids["rights_holder"])
    cache = svc.client.app.state.token_cache  # type: ignore[attr-defined]
    cache._entries.clear()  # what the cache's lifetime (seconds) does on its own
    r = svc.client.post(
        "/v1/evidence", json={"sha256": "ef" * 32}, headers=svc.auth("rights_holder")
    )
    assert r.status_code == 401


def test_proofs_match_and_respect_ownership(tmp_path: Path) -> None:
    with service(tmp_path / "home", sealer=True) as svc:
        receipt = svc.deposit_hash(data=b"proof me")
        wait = svc.client.post(
            "/v1/evidence?wait=sealed&timeout=10",
            json={"sha256": hashlib.sha256(b"other").hexdigest()},
            headers=svc.auth("rights_holder"),
        )
        assert wait.status_code == 201
        size = wait.json()["receipts"][0]["proof"]["tree_size"]
        svc.ledger.seal()
        url = f"/v1/evidence/{receipt['evidence_id']}/proof"
        for role in ("rights_holder", "notary", "other"):
            svc.client.get("/v1/evidence", headers=svc.auth(role))  # cache the token
        before = served(svc)
        fast = svc.client.get(url, headers=svc.auth("rights_holder"))
        assert served(svc) == before + 1
        latest = fast.json()["tree_size"]
        assert latest >= size
        slow = svc.client.get(f"{url}?size={latest}", headers=svc.auth("rights_holder"))
        assert fast.status_code == slow.status_code == 200
        assert fast.json() == slow.json()
        text = svc.client.get(url, headers={**svc.auth("notary"), "Accept": "text/plain"})
        assert text.status_code == 200 and text.text.startswith("c2sp.org/tlog-proof@v1\n")
        # Another rights holder's proof request: 404, exactly as the route says.
        fast = svc.client.get(url, headers=svc.auth("other"))
        slow = svc.client.get(f"{url}?size={latest}", headers=svc.auth("other"))
        assert fast.status_code == slow.status_code == 404
        assert fast.json() == slow.json()
        assert served(svc) == before + 3


def test_a_proof_right_after_sealing_is_not_refused(svc: Service) -> None:
    """The latest checkpoint's size is reused for 50 ms; an entry beyond that
    reading makes the route read it again rather than answer 404."""
    svc.ledger.seal()
    receipt = svc.deposit_hash(data=b"fresh")
    assert receipt["status"] == "durable"  # the reading now predates the next seal
    svc.ledger.seal()
    r = svc.client.get(
        f"/v1/evidence/{receipt['evidence_id']}/proof", headers=svc.auth("rights_holder")
    )
    assert r.status_code == 200, r.text
    assert r.json()["tree_size"] == receipt["index"] + 1
