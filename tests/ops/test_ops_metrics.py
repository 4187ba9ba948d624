"""/metrics of a real two-worker server match what the test did."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
import pytest
from ops_support import fast_seal, free_port, metric, serve

from ledger.accounts import create_account
from ledger.core import Ledger

pytestmark = pytest.mark.slow

HASHES, FILES = 12, 4


def _home(tmp_path: Path) -> tuple[Path, str]:
    home = tmp_path / "home"
    with Ledger.init(home, "metrics.test/log") as ledger:
        token = create_account(ledger, "rights_holder", "alice").token
    fast_seal(home)
    return home, token


def _deposit(base: str, token: str) -> tuple[list[str], int]:
    """HASHES hash-only and FILES file deposits, each on a new connection (both
    workers take some); their evidence ids and the files' bytes."""
    h = {"Authorization": f"Bearer {token}"}
    ids, size = [], 0
    for i in range(HASHES):
        body = {"sha256": hashlib.sha256(f"m{i}".encode()).hexdigest(), "title": f"t{i}"}
        r = httpx.post(base + "/v1/evidence", json=body, headers=h)
        assert r.status_code == 201, r.text
        ids.append(r.json()["receipts"][0]["evidence_id"])
    for i in range(FILES):
        data = f"file {i} ".encode() * (200 + i)
        size += len(data)
        r = httpx.post(base + "/v1/evidence", files=[("file", (f"f{i}.txt", data))], headers=h)
        assert r.status_code == 201, r.text
        ids.append(r.json()["receipts"][0]["evidence_id"])
    return ids, size


def _settled(base: str, expected_size: int) -> str:
    """The metrics once the sealer has integrated every entry."""
    deadline = time.monotonic() + 20
    while True:
        text = httpx.get(base + "/metrics").text
        if metric(text, "evidence_ledger_tree_size") == expected_size:
            return text
        assert time.monotonic() < deadline, text
        time.sleep(0.1)


def test_metrics_count_what_two_workers_did(tmp_path: Path) -> None:
    home, token = _home(tmp_path)
    with serve(home, "--workers", "2") as srv:
        ids, size = _deposit(srv.base, token)
        h = {"Authorization": f"Bearer {token}"}
        for eid in ids[:3]:  # one route template for every id
            assert httpx.get(f"{srv.base}/v1/evidence/{eid}", headers=h).status_code == 200
        log_size = HASHES + FILES + 1  # and the account
        pids = set()
        for _ in range(6):  # any worker answers the same
            r = httpx.get(srv.base + "/metrics")
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/plain")
            pids.add(r.headers["x-request-id"])
        text = _settled(srv.base, log_size)
        assert metric(text, "evidence_ledger_deposits_total", kind="hash") == HASHES
        assert metric(text, "evidence_ledger_deposits_total", kind="file") == FILES
        assert metric(text, "evidence_ledger_log_entries") == log_size
        checkpoint = httpx.get(srv.base + "/checkpoint").text
        assert int(checkpoint.splitlines()[1]) == log_size
        assert metric(text, "evidence_ledger_unpublished_entries") == 0
        assert metric(text, "evidence_ledger_blob_bytes_total") == size
        assert metric(text, "evidence_ledger_capture_jobs", status="queued") == 0
        posts = metric(
            text,
            "evidence_ledger_http_request_duration_seconds_count",
            route="/v1/evidence",
            method="POST",
            status="201",
        )
        assert posts == HASHES + FILES
        reads = metric(
            text,
            "evidence_ledger_http_request_duration_seconds_count",
            route="/v1/evidence/{evidence_id}",
            method="GET",
            status="200",
        )
        assert reads == 3
        assert all(eid not in text for eid in ids)  # templates, never raw paths
        seals = metric(text, "evidence_ledger_seal_duration_seconds_count")
        assert seals is not None and seals >= 1
        assert metric(text, "evidence_ledger_witness_failures_total") is None  # no witnesses


def test_metrics_off_or_on_another_address(tmp_path: Path) -> None:
    home, token = _home(tmp_path)
    with serve(home, "--metrics", "off") as srv:
        assert httpx.get(srv.base + "/metrics").status_code == 404
        _deposit(srv.base, token)
        assert httpx.get(srv.base + "/readyz").status_code == 200
    port = free_port()
    with serve(home, "--workers", "2", "--metrics", f"127.0.0.1:{port}") as srv:
        assert httpx.get(srv.base + "/metrics").status_code == 404
        _deposit(srv.base, token)
        text = _settled(f"http://127.0.0.1:{port}", 2 * (HASHES + FILES) + 1)
        # Deposits of this run only: the earlier run's counters were not kept.
        assert metric(text, "evidence_ledger_deposits_total", kind="hash") == HASHES
        assert metric(text, "evidence_ledger_deposits_total", kind="file") == FILES


def test_requests_the_fast_path_answers_are_timed_and_get_request_ids(
    ledger: Ledger,
) -> None:
    """The fast path is the innermost middleware: request ids and metrics see it."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    token = create_account(ledger, "rights_holder", "fast").token
    app = create_app(ledger)
    h = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        ids = set()
        for i in range(6):
            body = {"sha256": hashlib.sha256(f"fast {i}".encode()).hexdigest()}
            r = client.post("/v1/evidence", json=body, headers=h)
            assert r.status_code == 201, r.text
            ids.add(r.headers["x-request-id"])
        assert app.state.fast_path_served >= 4  # all but the first, which cached the token
        assert len(ids) == 6
        text = client.get("/metrics").text
    count = metric(
        text,
        "evidence_ledger_http_request_duration_seconds_count",
        route="/v1/evidence",
        method="POST",
        status="201",
    )
    assert count == 6
    assert metric(text, "evidence_ledger_deposits_total", kind="hash") == 6
