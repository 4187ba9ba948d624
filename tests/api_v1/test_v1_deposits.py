"""POST /v1/evidence: hash-only and file deposits, receipts, idempotency, limits."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from v1_support import Service, service

from ledger.core import Ledger
from verifier.merkle import leaf_hash, verify_inclusion
from verifier.record import decode_record


@pytest.fixture
def svc(tmp_path: Path):
    with service(tmp_path / "home", max_upload_bytes=1 << 20) as s:
        yield s


def test_hash_deposit_receipt_names_a_durable_entry(svc: Service) -> None:
    sha = hashlib.sha256(b"secret formula").hexdigest()
    sm3 = hashlib.new("sm3", b"secret formula").hexdigest()
    r = svc.client.post(
        "/v1/evidence",
        json={"sha256": sha.upper(), "sm3": sm3, "title": "配方"},
        headers=svc.auth("rights_holder"),
    )
    assert r.status_code == 201, r.text
    (rec,) = r.json()["receipts"]
    assert rec["sha256"] == sha and rec["sm3"] == sm3 and rec["kind"] == "hash"
    assert rec["status"] == "durable" and rec["deposit_no"].startswith("EL-")
    # The receipt's leaf hash is the stored leaf's, and the leaf names the evidence.
    (_, _, _, leaf, stored) = svc.ledger.store.entries(rec["index"], rec["index"] + 1)[0]
    assert leaf_hash(leaf).hex() == rec["leaf_hash"] == stored.hex()
    assert decode_record(leaf).body == {"evidence_id": rec["evidence_id"], "kind": "hash"}
    # Nothing about the content is public: the title and digest are in the private body.
    assert sha.encode() not in leaf and "配方".encode() not in leaf


def test_multipart_upload_of_several_files(svc: Service) -> None:
    files = [("file", ("a.txt", b"alpha", "text/plain")), ("file", ("b.bin", b"\x00" * 5000, None))]
    r = svc.client.post(
        "/v1/evidence",
        files=files,
        data={"title": "两个文件", "description": "d"},
        headers=svc.auth("rights_holder"),
    )
    assert r.status_code == 201, r.text
    a, b = r.json()["receipts"]
    assert (a["file_name"], a["size"], a["kind"]) == ("a.txt", 5, "file")
    assert a["sha256"] == hashlib.sha256(b"alpha").hexdigest()
    assert a["sm3"] == hashlib.new("sm3", b"alpha").hexdigest()
    assert b["size"] == 5000 and b["index"] == a["index"] + 1
    got = svc.client.get(
        f"/v1/evidence/{a['evidence_id']}/content", headers=svc.auth("rights_holder")
    )
    assert got.content == b"alpha" and got.headers["content-type"].startswith("text/plain")
    assert svc.ledger.blobs.exists(b["sha256"])


def test_idempotency_key_replays_and_conflicts(svc: Service) -> None:
    h = {**svc.auth("rights_holder"), "Idempotency-Key": "order-42"}
    body = {"sha256": "ab" * 32, "title": "t"}
    before = svc.ledger.store.size()
    first = svc.client.post("/v1/evidence", json=body, headers=h)
    again = svc.client.post("/v1/evidence", json=body, headers=h)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["receipts"][0]["evidence_id"] == again.json()["receipts"][0]["evidence_id"]
    other = svc.client.post("/v1/evidence", json={**body, "title": "u"}, headers=h)
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    # The same key belongs to each account separately.
    mine = svc.client.post(
        "/v1/evidence", json=body, headers={**svc.auth("other"), "Idempotency-Key": "order-42"}
    )
    assert mine.status_code == 201
    assert svc.ledger.store.size() == before + 2  # one per account, none for replays


def test_concurrent_retries_with_one_key_deposit_once(svc: Service) -> None:
    h = {**svc.auth("rights_holder"), "Idempotency-Key": "race"}
    results: list[int] = []
    before = svc.ledger.store.size()

    def post() -> None:
        r = svc.client.post("/v1/evidence", json={"sha256": "cd" * 32}, headers=h)
        results.append(r.status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count(201) == 1 and set(results) <= {200, 201}
    assert svc.ledger.store.size() == before + 1


def test_wait_sealed_returns_a_proof_that_verifies(tmp_path: Path) -> None:
    with service(tmp_path / "h") as svc:
        stop = threading.Event()

        def sealer() -> None:
            while not stop.wait(0.05):
                svc.ledger.seal()

        t = threading.Thread(target=sealer)
        t.start()
        try:
            r = svc.client.post(
                "/v1/evidence?wait=sealed&timeout=10",
                json={"sha256": "ef" * 32},
                headers=svc.auth("rights_holder"),
            )
        finally:
            stop.set()
            t.join()
        assert r.status_code == 201, r.text
        (rec,) = r.json()["receipts"]
        assert rec["status"] == "sealed"
        p = rec["proof"]
        import base64

        verify_inclusion(
            bytes.fromhex(rec["leaf_hash"]),
            rec["index"],
            p["tree_size"],
            [base64.b64decode(x) for x in p["hashes"]],
            base64.b64decode(p["checkpoint"]["root"]),
        )


def test_wait_sealed_times_out_with_202_and_a_durable_receipt(svc: Service) -> None:
    r = svc.client.post(
        "/v1/evidence?wait=sealed&timeout=0.1",
        json={"sha256": "ef" * 32},
        headers=svc.auth("rights_holder"),
    )
    assert r.status_code == 202
    assert r.json()["receipts"][0]["status"] == "durable"


def test_oversize_upload_is_413_and_leaves_nothing(svc: Service) -> None:
    before = svc.ledger.store.size()
    big = b"z" * ((1 << 20) + 10)
    r = svc.client.post(
        "/v1/evidence", files=[("file", ("big.bin", big, None))], headers=svc.auth("rights_holder")
    )
    assert r.status_code == 413, r.text
    assert r.json()["status"] == 413
    assert svc.ledger.store.size() == before
    assert not svc.ledger.blobs.exists(hashlib.sha256(big).hexdigest())
    tmp = svc.ledger.blobs.root / "tmp"
    assert not tmp.exists() or not list(tmp.iterdir())


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"json": {"sha256": "xyz"}}, 422),
        ({"json": {"sha256": "ab" * 32, "extra": 1}}, 422),
        ({"json": {"sha256": "ab" * 32, "title": "t" * 1001}}, 422),
        ({"json": ["not", "an", "object"]}, 422),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422),
        ({"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}, 422),
        ({"content": b"x" * 70000, "headers": {"Content-Type": "application/json"}}, 413),
        ({"content": b"plain", "headers": {"Content-Type": "text/plain"}}, 415),
        ({"content": b"--b\r\n", "headers": {"Content-Type": "multipart/form-data"}}, 415),
        (
            {"content": b"garbage", "headers": {"Content-Type": "multipart/form-data; boundary=b"}},
            400,
        ),
        ({"data": {"title": "no file"}, "files": [("other", ("a", b"a", None))]}, 400),
        ({"data": {"title": "only title"}}, 415),  # form-urlencoded, not multipart
    ],
)
def test_malformed_deposits_are_4xx_problems(svc: Service, kwargs: dict, status: int) -> None:
    headers = {**svc.auth("rights_holder"), **kwargs.pop("headers", {})}
    before = svc.ledger.store.size()
    r = svc.client.post("/v1/evidence", headers=headers, **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == status
    assert svc.ledger.store.size() == before


def test_bad_idempotency_key_is_422(svc: Service) -> None:
    h = {**svc.auth("rights_holder"), "Idempotency-Key": "x" * 201}
    r = svc.client.post("/v1/evidence", json={"sha256": "ab" * 32}, headers=h)
    assert r.status_code == 422


def test_small_uploads_are_stored_with_their_event(svc: Service) -> None:
    """Files up to api.upload.INLINE_MAX live in the database, larger ones on
    disk; either way the content route and a reopened ledger return them."""
    from api.upload import INLINE_MAX

    small, large = os.urandom(4096), os.urandom(INLINE_MAX + 1)
    r = svc.client.post(
        "/v1/evidence",
        files=[("file", ("s.bin", small, None)), ("file", ("l.bin", large, None))],
        headers=svc.auth("rights_holder"),
    )
    assert r.status_code == 201, r.text
    rs, rl = r.json()["receipts"]
    assert svc.ledger.store.inline_blob(rs["sha256"]) == small
    assert not svc.ledger.blobs.path_for(rs["sha256"]).exists()
    assert svc.ledger.store.inline_blob(rl["sha256"]) is None
    assert svc.ledger.blobs.path_for(rl["sha256"]).read_bytes() == large
    for rec, data in ((rs, small), (rl, large)):
        got = svc.client.get(
            f"/v1/evidence/{rec['evidence_id']}/content", headers=svc.auth("rights_holder")
        )
        assert got.status_code == 200 and got.content == data
    with Ledger.open(svc.ledger.config.home) as again, again.blobs.open(rs["sha256"]) as f:
        assert f.read() == small
