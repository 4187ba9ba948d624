"""Scheduled and batched captures: jobs wait in the database with a due time,
a worker claims each once (on any host) when it comes, through the service,
``POST /v1/captures`` (``start_at``, ``urls``) and ``capture URL... --start-at``."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from capture_support import serve
from click.testing import CliRunner

from ledger.capture import CaptureOptions
from ledger.capture.jobs import CaptureJob, CapturePool, JobStore
from ledger.cli import cli
from ledger.config import CaptureConfig
from ledger.storage import create_store, open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api_v1"))
from v1_support import service


def _at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def stores(store_url: str) -> Iterator[tuple[JobStore, JobStore]]:
    """Two job stores on one fresh database: two hosts' views of it."""
    a = create_store(store_url)
    b = open_store(store_url)
    try:
        yield JobStore(a), JobStore(b)
    finally:
        a.close()
        b.close()


def _record(i: int) -> CaptureJob:
    return CaptureJob(
        job_id=f"{i:032x}",
        owner="o" * 32,
        url=f"http://{i}.test/",
        options=CaptureOptions().to_json(),
        title=None,
        status="scheduled",
        created_at="2026-01-01T00:00:00.000000Z",
    )


def test_due_jobs_are_claimed_once_across_hosts(stores: tuple[JobStore, JobStore]) -> None:
    a, b = stores
    now = time.time()
    for i in range(12):
        a.save(_record(i), due=now - 100 + i)
    a.save(_record(99), due=now + 3600)  # not yet
    got: list[list[CaptureJob]] = [[], []]

    def claim(k: int, store: JobStore) -> None:
        for _ in range(8):
            got[k] += store.claim_due(2)

    threads = [threading.Thread(target=claim, args=(k, s)) for k, s in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ids = [j.job_id for j in got[0] + got[1]]
    assert sorted(ids) == [f"{i:032x}" for i in range(12)]  # each exactly once
    assert a.claim_due(10) == [] and b.claim_due(10) == []
    waiting = a.load(f"{99:032x}")
    assert waiting is not None and waiting.status == "scheduled"  # not stale, not claimed


def test_the_pool_runs_due_jobs_as_slots_free(stores: tuple[JobStore, JobStore]) -> None:
    store = stores[0]
    ran: list[str] = []
    gate = threading.Event()

    def run(job: CaptureJob, options: CaptureOptions) -> dict[str, Any]:
        ran.append(job.url)
        gate.wait(10)
        return {"evidence_id": "e" * 32, "capture_id": job.job_id, "capture_status": "complete"}

    pool = CapturePool(store, run, concurrency=1, queue_max=1)
    try:
        later = pool.schedule(
            ["http://later.test/"], CaptureOptions(), "o", None, time.time() + 3600, "x"
        )
        now = pool.schedule(
            [f"http://{i}.test/" for i in range(3)],
            CaptureOptions(),
            "o",
            None,
            time.time() - 1,
            None,
        )
        assert pool.run_due() == 2  # two slots: one running, one queued
        assert pool.run_due() == 0
        gate.set()
        deadline = time.monotonic() + 20
        while len(ran) < 3:
            pool.run_due()
            assert time.monotonic() < deadline, ran
            time.sleep(0.05)
    finally:
        pool.shutdown()
    assert sorted(ran) == [f"http://{i}.test/" for i in range(3)]
    for job in now:
        done = store.load(job.job_id)
        assert done is not None and done.status == "complete" and done.started_at
    waiting = store.load(later[0].job_id)
    assert waiting is not None and waiting.status == "scheduled" and waiting.start_at == "x"


def test_bad_schedules_are_400_or_422(tmp_path: Path) -> None:
    with service(tmp_path / "home") as svc:
        auth = svc.auth("rights_holder")
        secret = [{"action": "type", "selector": "#p", "text": "hunter2", "secret": True}]
        for body, code in [
            ({"url": "http://x.test/", "start_at": _at(-60)}, 400),
            ({"url": "http://x.test/", "start_at": _at(40 * 86400)}, 400),
            ({"url": "http://x.test/", "start_at": "2026-03-01T09:00:00"}, 400),
            ({"url": "http://x.test/", "start_at": "next monday"}, 400),
            ({"urls": ["http://x.test/", "http://x.test/"]}, 400),
            ({"urls": [f"http://{i}.test/" for i in range(21)]}, 422),
            ({"urls": []}, 422),
            ({"url": "http://x.test/", "urls": ["http://y.test/"]}, 422),
            ({"title": "no url"}, 422),
            ({"urls": ["ftp://x.test/"]}, 422),
            (
                {"url": "http://x.test/", "start_at": _at(60), "options": {"steps": secret}},
                400,
            ),
        ]:
            r = svc.client.post("/v1/captures", json=body, headers=auth)
            assert r.status_code == code, (body, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        r = svc.client.post(
            "/v1/captures",
            json={"urls": ["http://x.test/"], "start_at": _at(60)},
            headers=svc.auth("notary"),
        )
        assert r.status_code == 403


def test_a_scheduled_batch_is_captured_when_its_time_comes(tmp_path: Path) -> None:
    cfg = CaptureConfig(allow=("127.0.0.0/8",))
    with serve() as site, service(tmp_path / "home", capture=cfg) as svc:
        urls = [site.base + "/page.html", site.base + "/"]
        start = _at(3)
        r = svc.client.post(
            "/v1/captures",
            json={"urls": urls, "start_at": start, "title": "定时取证"},
            headers=svc.auth("rights_holder"),
        )
        assert r.status_code == 202, r.text
        jobs = r.json()["jobs"]
        assert [j["url"] for j in jobs] == urls
        assert {j["status"] for j in jobs} == {"scheduled"}
        assert all(j["start_at"].startswith(start[:19]) for j in jobs)
        assert site.hits == []  # nothing before its time
        done = []
        deadline = time.monotonic() + 120
        for job in jobs:
            while True:
                got = svc.client.get(
                    f"/v1/captures/{job['job_id']}", headers=svc.auth("rights_holder")
                )
                state = got.json()
                if state["status"] not in ("scheduled", "queued", "running"):
                    break
                assert time.monotonic() < deadline, state
                time.sleep(0.2)
            done.append(state)
        assert [d["status"] for d in done] == ["complete", "complete"], done
        started = min(datetime.fromisoformat(d["started_at"].replace("Z", "+00:00")) for d in done)
        assert started >= datetime.fromisoformat(start.replace("Z", "+00:00"))
        for d in done:
            ev = svc.client.get(
                f"/v1/evidence/{d['evidence_id']}", headers=svc.auth("rights_holder")
            )
            assert ev.json()["title"] == "定时取证"
        # A single URL may be scheduled too; another rights holder cannot see it.
        one = svc.client.post(
            "/v1/captures",
            json={"url": urls[0], "start_at": _at(3600)},
            headers=svc.auth("rights_holder"),
        )
        assert one.status_code == 202 and one.json()["status"] == "scheduled"
        assert one.headers["location"] == f"/v1/captures/{one.json()['job_id']}"
        other = svc.client.get(one.headers["location"], headers=svc.auth("other"))
        assert other.status_code == 404


def test_cli_schedules_with_start_at(tmp_path: Path) -> None:
    from ledger.core import Ledger

    home = tmp_path / "home"
    Ledger.init(home, origin="cli.test/log").close()
    runner = CliRunner()
    r = runner.invoke(
        cli,
        [
            "--home",
            str(home),
            "capture",
            "http://a.test/",
            "http://b.test/",
            "--start-at",
            _at(600),
        ],
    )
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 2 and all('"status": "scheduled"' in line for line in lines)
    for args, code in [
        (["http://a.test/", "--start-at", _at(600), "--out", str(tmp_path / "o")], 2),
        (["http://a.test/", "--start-at", "soon"], 2),
        (["http://a.test/", "--start-at", _at(-5)], 2),
    ]:
        r = runner.invoke(cli, ["--home", str(home), "capture", *args])
        assert r.exit_code == code, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1
