"""The whole flow through the HTTP API: capture -> evidence -> certificate ->
package -> ``evidence-verify`` valid; and the job pool's limits and errors.

The certificate and package steps use the ledger's library functions (the
same ones the notary's routes and CLI call); ``evidence-verify`` runs as the
installed console script a court would run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from capture_support import Pki, make_pki, serve

from ledger.capture import CaptureFailed, CaptureOptions
from ledger.capture.jobs import HOST, CaptureJob, CapturePool, JobStore, QueueFull
from ledger.certificates import issue_certificate, package_certificate, trust_export
from ledger.config import CaptureConfig
from ledger.storage import create_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api_v1"))
from v1_support import Service, service

EV = Path(sys.executable).with_name("evidence-verify")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _wait(
    svc: Service, job_id: str, role: str = "rights_holder", limit: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        r = svc.client.get(f"/v1/captures/{job_id}", headers=svc.auth(role))
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["status"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def _verify(pkg: Path, trust: Path) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [str(EV), "package", str(pkg), "--trust", str(trust), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _patch_member(pkg: Path, out: Path, name: str, data: bytes) -> None:
    """Replace a stored member's bytes by ``data`` of the same length, with a
    consistent CRC-32, so only the digest checks can notice."""
    raw = bytearray(pkg.read_bytes())
    with zipfile.ZipFile(pkg) as z:
        info = z.getinfo(name)
    assert len(data) == info.file_size
    start = info.header_offset
    n, m = struct.unpack_from("<HH", raw, start + 26)
    body = start + 30 + n + m
    raw[body : body + len(data)] = data
    crc = struct.pack("<I", zlib.crc32(data))
    raw[start + 14 : start + 18] = crc
    pos = raw.find(name.encode(), body + len(data))
    while raw[pos - 46 : pos - 42] != b"PK\x01\x02":
        pos = raw.find(name.encode(), pos + 1)
    raw[pos - 46 + 16 : pos - 46 + 20] = crc
    out.write_bytes(bytes(raw))


def test_capture_to_verified_evidence_package(tmp_path: Path, pki: Pki) -> None:
    cfg = CaptureConfig(allow=("127.0.0.0/8",), ca_file=str(pki.ca_pem))
    with serve(pki) as site, service(tmp_path / "home", capture=cfg) as svc:
        # (1) the rights holder asks for a capture: 202 and a job to follow
        r = svc.client.post(
            "/v1/captures",
            json={"url": site.base + "/", "title": "侵权页面", "options": {"wait": "networkidle"}},
            headers=svc.auth("rights_holder"),
        )
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == f"/v1/captures/{job['job_id']}"
        assert job["status"] in ("queued", "running") and "evidence_id" not in job
        # (2) the job ends with evidence and its receipt
        done = _wait(svc, job["job_id"])
        assert done["status"] == "complete", done
        eid = done["evidence_id"]
        receipt = done["receipt"]
        assert receipt["evidence_id"] == eid and receipt["capture_status"] == "complete"
        assert receipt["final_url"] == site.base + "/page.html"
        assert _wait(svc, job["job_id"], role="notary")["evidence_id"] == eid
        ev = svc.client.get(f"/v1/evidence/{eid}", headers=svc.auth("rights_holder")).json()
        assert (ev["kind"], ev["title"], ev["sha256"]) == ("capture", "侵权页面", receipt["sha256"])
        # (3) sealed, certified by the notary, packaged
        svc.ledger.seal()
        proof = svc.client.get(f"/v1/evidence/{eid}/proof", headers=svc.auth("rights_holder"))
        assert proof.status_code == 200
        issued = issue_certificate(svc.ledger, eid, "notary-1")
        pkg = package_certificate(svc.ledger, issued.certificate_id, tmp_path / "pkg.zip")
        trust = tmp_path / "trust.json"
        trust.write_text(json.dumps(trust_export(svc.ledger)))
    # (4) a court verifies it offline: every artefact against the manifest, the
    # manifest against the certificate, the certificate against the trust file
    code, report = _verify(pkg, trust)
    assert code == 0, report
    assert report["valid"] is True
    checks = {(c["key"], c.get("subject") or ""): c for c in report["checks"]}
    assert checks[("evidence_file", "evidence/capture-manifest.json")]["status"] == "passed"
    assert checks[("capture_manifest", "")]["status"] == "passed"
    with zipfile.ZipFile(pkg) as z:
        names = z.namelist()
        manifest = json.loads(z.read("evidence/capture-manifest.json"))
    artefacts = [f"capture/{a['path']}" for a in manifest["artefacts"]]
    assert names[3] == "certificate.pdf"
    assert names[5:] == artefacts and len(artefacts) == 6
    for name in artefacts:
        assert checks[("capture_artefact", name)]["status"] == "passed", name

    # A screenshot altered inside the package (CRC kept consistent) is caught
    # by its digest against the manifest.
    with zipfile.ZipFile(pkg) as z:
        png = bytearray(z.read("capture/screenshot-viewport.png"))
    png[-20] ^= 0x01
    _patch_member(pkg, tmp_path / "bad-artefact.zip", "capture/screenshot-viewport.png", bytes(png))
    code, report = _verify(tmp_path / "bad-artefact.zip", trust)
    assert code == 1 and report["valid"] is False
    failed = [(c["key"], c.get("subject")) for c in report["checks"] if c["status"] == "failed"]
    assert failed == [("capture_artefact", "capture/screenshot-viewport.png")]

    # An altered manifest no longer matches the certificate.
    with zipfile.ZipFile(pkg) as z:
        raw = z.read("evidence/capture-manifest.json")
    forged = raw.replace(b'"status":"complete"', b'"status":"complate"')
    assert forged != raw
    _patch_member(pkg, tmp_path / "bad-manifest.zip", "evidence/capture-manifest.json", forged)
    code, report = _verify(tmp_path / "bad-manifest.zip", trust)
    assert code == 1 and report["valid"] is False
    failed_keys = {c["key"] for c in report["checks"] if c["status"] == "failed"}
    assert "evidence_file" in failed_keys


def test_queue_full_answers_429(tmp_path: Path, pki: Pki) -> None:
    cfg = CaptureConfig(allow=("127.0.0.0/8",), concurrency=1, queue_max=1)
    with serve() as site, service(tmp_path / "home", capture=cfg) as svc:
        h = svc.auth("rights_holder")
        body = {"url": site.base + "/hang", "options": {"timeout": 2}}
        first = svc.client.post("/v1/captures", json=body, headers=h)
        second = svc.client.post("/v1/captures", json=body, headers=h)
        third = svc.client.post("/v1/captures", json=body, headers=h)
        assert (first.status_code, second.status_code, third.status_code) == (202, 202, 429)
        assert third.headers["content-type"] == "application/problem+json"
        assert third.headers["retry-after"] == "10"
        assert "queue is full" in third.json()["detail"]
        for r in (first, second):
            job = _wait(svc, r.json()["job_id"])
            assert job["status"] == "timeout" and "never loaded" in job["detail"]
            assert "evidence_id" not in job and "receipt" not in job
        # Slots are free again once the jobs have ended.
        again = svc.client.post("/v1/captures", json=body, headers=h)
        assert again.status_code == 202
        _wait(svc, again.json()["job_id"])
        items = svc.client.get("/v1/evidence", headers=svc.auth("notary")).json()["items"]
        assert items == []


def test_access_and_bad_input(tmp_path: Path) -> None:
    with serve() as site, service(tmp_path / "home") as svc:
        url = {"url": site.base + "/page.html"}
        assert svc.client.post("/v1/captures", json=url).status_code == 401
        r = svc.client.post("/v1/captures", json=url, headers=svc.auth("notary"))
        assert r.status_code == 403
        for bad, code in [
            ({"url": "ftp://example.com/"}, 422),
            ({"url": "http://x.test/", "extra": 1}, 422),
            ({"url": "http://x.test/", "options": {"wait": "forever"}}, 422),
            ({"url": "http://x.test/", "options": {"viewport_width": 10}}, 422),
            ({"url": "http://x.test/", "options": {"user_agent_note": "a\nb"}}, 422),
            ({"url": "http://x.test/", "options": {"delay_ms": 100}}, 400),
        ]:
            r = svc.client.post("/v1/captures", json=bad, headers=svc.auth("rights_holder"))
            assert r.status_code == code, (bad, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        r = svc.client.post(
            "/v1/captures",
            content=b"{not json",
            headers={**svc.auth("rights_holder"), "content-type": "application/json"},
        )
        assert r.status_code == 422
        # The default configuration refuses loopback: the job says so, no evidence.
        r = svc.client.post("/v1/captures", json=url, headers=svc.auth("rights_holder"))
        job = _wait(svc, r.json()["job_id"])
        assert job["status"] == "refused" and "loopback" in job["detail"]
        assert site.hits == []
        # Another rights holder cannot see the job; unknown ids are 404 too.
        for jid, role in [(job["job_id"], "other"), ("0" * 32, "rights_holder"), ("../x", "admin")]:
            r = svc.client.get(f"/v1/captures/{jid}", headers=svc.auth(role))
            assert r.status_code == 404, jid
            assert r.headers["content-type"] == "application/problem+json"
        assert (
            svc.client.get(f"/v1/captures/{job['job_id']}", headers=svc.auth("auditor")).status_code
            == 200
        )


def test_unreadable_job_record_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    with service(tmp_path / "home") as svc:
        r = svc.client.post(
            "/v1/captures",
            json={"url": "http://127.0.0.1:1/"},
            headers=svc.auth("rights_holder"),
        )
        job = _wait(svc, r.json()["job_id"])
        assert job["status"] == "refused"
        with sqlite3.connect(svc.ledger.store.path) as db:  # type: ignore[attr-defined]
            db.execute(
                "update capture_jobs set record = '{truncated' where job_id = ?", (job["job_id"],)
            )
        r = svc.client.get(f"/v1/captures/{job['job_id']}", headers=svc.auth("rights_holder"))
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        assert "unreadable" in r.json()["detail"]


def test_openapi_documents_the_capture_routes(tmp_path: Path) -> None:
    with service(tmp_path / "home") as svc:
        spec = svc.client.get("/openapi.json").json()
    post = spec["paths"]["/v1/captures"]["post"]
    assert {"202", "429", "422"} <= set(post["responses"])
    assert "get" in spec["paths"]["/v1/captures/{job_id}"]


# -- the pool and the job store ---------------------------------------------------------


@pytest.fixture
def job_store(store_url: str) -> Iterator[JobStore]:
    """Job records in a fresh ledger database, on each backend."""
    store = create_store(store_url)
    try:
        yield JobStore(store)
    finally:
        store.close()


def test_pool_records_every_outcome_and_interrupts_queued_jobs(job_store: JobStore) -> None:
    gate = threading.Event()
    calls: list[str] = []

    def run(job: CaptureJob, options: CaptureOptions) -> dict[str, Any]:
        calls.append(job.url)
        gate.wait(10)
        if job.url.endswith("/fail"):
            raise CaptureFailed("http_error", "answered 404")
        return {"evidence_id": "e" * 32, "capture_id": job.job_id, "capture_status": "complete"}

    store = job_store
    pool = CapturePool(store, run, concurrency=1, queue_max=2)
    a = pool.submit("http://a.test/fail", CaptureOptions(), "owner", None)
    b = pool.submit("http://b.test/", CaptureOptions(), "owner", None)
    c = pool.submit("http://c.test/", CaptureOptions(), "owner", None)
    with pytest.raises(QueueFull):
        pool.submit("http://d.test/", CaptureOptions(), "owner", None)
    while not calls:
        time.sleep(0.01)
    stopper = threading.Thread(target=pool.shutdown)
    stopper.start()  # the running job finishes, the queued ones are interrupted
    time.sleep(0.2)
    gate.set()
    stopper.join(10)
    assert calls == ["http://a.test/fail"]
    ja, jb, jc = (store.load(j.job_id) for j in (a, b, c))
    assert ja is not None and (ja.status, ja.detail) == ("http_error", "answered 404")
    assert ja.started_at and ja.finished_at and ja.evidence_id is None
    for j in (jb, jc):
        assert j is not None and j.status == "interrupted" and "submit it again" in (j.detail or "")


def _running(pid: int, host: str = HOST) -> CaptureJob:
    return CaptureJob(
        job_id="a" * 32,
        owner=None,
        url="http://x.test/",
        options={},
        title=None,
        status="running",
        created_at="2026-01-01T00:00:00.000000Z",
        pid=pid,
        host=host,
    )


def test_job_of_a_dead_process_reads_as_interrupted(job_store: JobStore) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    store = job_store
    store.save(_running(int(proc.stdout)))
    got = store.load("a" * 32)
    assert got is not None and got.status == "interrupted"
    store.save(_running(os.getpid()))
    assert store.load("a" * 32).status == "running"  # type: ignore[union-attr]
    # On another host the pid means nothing: only the heartbeat tells.
    store.save(_running(int(proc.stdout), host="elsewhere"))
    assert store.load("a" * 32).status == "running"  # type: ignore[union-attr]
    assert store.load("../../etc/passwd") is None
    assert store.load("b" * 32) is None


def test_a_job_whose_heartbeat_stopped_reads_as_interrupted(job_store: JobStore) -> None:
    """Any host judges a job by its heartbeat, by the database's clock: the
    pool that holds a job renews it; when the pool's host dies, it stops."""
    store = JobStore(job_store.store, stale_after=1.0)
    store.save(_running(12345, host="a-host-that-died"))
    assert store.load("a" * 32).status == "running"  # type: ignore[union-attr]
    time.sleep(1.3)
    got = store.load("a" * 32)
    assert got is not None and got.status == "interrupted"
    assert "submit it again" in (got.detail or "")

    gate = threading.Event()

    def run(job: CaptureJob, options: CaptureOptions) -> dict[str, Any]:
        gate.wait(10)
        return {"evidence_id": "e" * 32, "capture_id": job.job_id, "capture_status": "complete"}

    pool = CapturePool(store, run, concurrency=1, queue_max=1, heartbeat=0.2)
    try:
        held = pool.submit("http://a.test/", CaptureOptions(), "owner", None)
        queued = pool.submit("http://b.test/", CaptureOptions(), "owner", None)
        time.sleep(1.6)  # longer than stale_after: only the heartbeat keeps them alive
        assert store.load(held.job_id).status == "running"  # type: ignore[union-attr]
        assert store.load(queued.job_id).status == "queued"  # type: ignore[union-attr]
        gate.set()
        deadline = time.monotonic() + 10
        while store.load(queued.job_id).status != "complete":  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        gate.set()
        pool.shutdown()
    time.sleep(1.3)  # finished jobs need no heartbeat
    assert store.load(held.job_id).status == "complete"  # type: ignore[union-attr]


def test_recorded_capture_through_the_api(tmp_path: Path) -> None:
    cfg = CaptureConfig(allow=("127.0.0.0/8",), max_duration=20)
    secret = "api-secret-7781"
    steps = [
        {"action": "click", "selector": "#buy"},
        {"action": "type", "selector": "#code", "text": secret, "secret": True},
        {"action": "press", "key": "Enter"},
    ]
    with serve() as site, service(tmp_path / "home", capture=cfg) as svc:
        r = svc.client.post(
            "/v1/captures",
            json={
                "url": site.base + "/clock.html",
                "options": {"video": True, "duration": 1, "steps": steps, "step_timeout": 5},
            },
            headers=svc.auth("rights_holder"),
        )
        assert r.status_code == 202, r.text
        assert secret not in r.text
        job = r.json()
        assert job["options"]["steps"][1] == {
            "action": "type",
            "selector": "#code",
            "text": None,
            "secret": True,
        }
        done = _wait(svc, job["job_id"], limit=180)
        assert done["status"] == "complete", done
        names = {a["name"] for a in done["receipt"]["artefacts"]}
        assert {"video", "step_1", "step_2", "step_3", "warc_secret"} <= names
        assert done["receipt"]["final_url"] == site.base + "/welcome.html"
        # The secret went to the site, and nowhere into the job's record or answer.
        assert any(secret.encode() in body for _, body in site.posts)
        rows = svc.ledger.store.query(
            "select * from capture_jobs where job_id = ?", (job["job_id"],)
        )
        assert rows and secret not in repr(rows)
        got = svc.client.get(f"/v1/captures/{job['job_id']}", headers=svc.auth("rights_holder"))
        assert secret not in got.text
        # Bad recording options are problems, before any job starts.
        for options, code, text in [
            ({"steps": [{"action": "click"}]}, 400, "steps[0] (click): missing selector"),
            ({"steps": [{"action": "wait", "seconds": 99}]}, 400, "at most 60"),
            ({"duration": 5}, 400, "duration needs video"),
            ({"video": True, "duration": 21}, 400, "duration 21 s, the limit is 20 s"),
            ({"video": True, "duration": 3601}, 422, ""),
            ({"steps": [{"action": "press", "key": "Tab"}] * 201}, 422, ""),
            ({"steps": [{"action": "press", "key": "Tab"}] * 51}, 400, "51 steps, the limit is 50"),
            ({"step_timeout": 0}, 422, ""),
        ]:
            r = svc.client.post(
                "/v1/captures",
                json={"url": site.base + "/clock.html", "options": options},
                headers=svc.auth("rights_holder"),
            )
            assert r.status_code == code, (options, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert text in r.json()["detail"], r.text
