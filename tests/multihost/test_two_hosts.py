"""Two API hosts from copies of one home, one PostgreSQL database, nothing else shared.

Each host is a real ``evidence-ledger serve`` process with its own home
directory (a copy of the first: config and keys). Whatever one host
stored, the other answers for, byte for byte: file content, proofs,
certificates and their packages (checked by ``evidence-verify``), capture
jobs and their evidence, the trust file, checkpoints and tiles.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pg_support import pg_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "capture"))
from capture_support import serve as serve_site

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BIN = Path(sys.executable).parent
ORIGIN = "multihost.test/log"


@dataclass
class Host:
    name: str
    home: Path
    base: str

    def get(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.base + path, headers=headers, timeout=60, **kw)

    def post(self, path: str, token: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.post(self.base + path, headers=headers, timeout=60, **kw)


def _el(home: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(BIN / "evidence-ledger"), "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serving(name: str, home: Path, logs: Path) -> Iterator[Host]:
    port = _free_port()
    host = Host(name, home, f"http://127.0.0.1:{port}")
    log = (logs / f"{name}.log").open("w+")
    proc = subprocess.Popen(
        [str(BIN / "evidence-ledger"), "--home", str(home), "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"{name} exited"
            try:
                if httpx.get(host.base + "/checkpoint", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.1)
        yield host
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        output = log.read()
        log.close()
        assert "Traceback" not in output, output


def _size(host: Host) -> int:
    return int(host.get("/checkpoint").text.split("\n")[1])


def _sealed(hosts: list[Host], index: int, timeout: float = 30) -> None:
    """Wait until every host serves a checkpoint that covers ``index``."""
    deadline = time.monotonic() + timeout
    while any(_size(h) <= index for h in hosts):
        assert time.monotonic() < deadline, f"entry {index} never sealed"
        time.sleep(0.1)


def _verify(pkg: Path, trust: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [str(BIN / "evidence-verify"), "package", str(pkg), "--trust", str(trust), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def _csrf(page: httpx.Response) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m, page.text[:300]
    return m[1]


def _interactive_across_hosts(a: Host, b: Host, token: str, url: str) -> None:
    with httpx.Client(base_url=a.base, timeout=60) as on_a:
        r = on_a.post("/login", data={"token": token, "csrf": _csrf(on_a.get("/login"))})
        assert r.status_code == 303, r.text
        csrf = _csrf(on_a.get("/console"))
        r = on_a.post("/console/live", data={"url": url, "title": "live", "csrf": csrf})
        assert r.status_code == 303, r.text
        with httpx.Client(base_url=b.base, timeout=60, cookies=on_a.cookies) as on_b:
            deadline = time.monotonic() + 60
            while (state := on_b.get("/console/live/state")).json()["status"] != "running":
                assert state.status_code == 200 and time.monotonic() < deadline, state.text
                time.sleep(0.2)
            frame = on_b.get("/console/live/frame", params={"after": 0})
            while frame.status_code == 204:
                assert time.monotonic() < deadline
                frame = on_b.get("/console/live/frame", params={"after": 0})
            assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"
            assert on_b.post("/console/live", data={"url": url, "csrf": csrf}).status_code == 409
            events = {"events": [{"action": "wheel", "dy": 200}, {"action": "key", "key": "Tab"}]}
            r = on_b.post("/console/live/input", json=events, headers={"X-CSRF-Token": csrf})
            assert r.status_code == 200 and r.json() == {"queued": 2}, r.text
            while on_a.get("/console/live/state").json()["inputs"] < 2:
                assert time.monotonic() < deadline, "the inputs were not performed on A"
                time.sleep(0.2)
            r = on_b.post("/console/live/finish", data={"csrf": csrf}, timeout=300)
            assert r.status_code == 303, r.text
            evidence_id = r.headers["location"].rsplit("/", 1)[-1]
            assert on_b.get("/console/live/state").status_code == 404
    got = b.get(f"/v1/evidence/{evidence_id}", token)
    assert got.status_code == 200 and got.json()["kind"] == "capture", got.text


def test_a_second_host_from_a_copy_of_the_home_answers_alike(
    tmp_path: Path, pg_schema: str
) -> None:
    # (1) one home, on PostgreSQL (blobs default to the database), with accounts
    home_a, home_b = tmp_path / "host-a", tmp_path / "host-b"
    _el(home_a, "init", "--origin", ORIGIN, "--database-url", pg_url(pg_schema))
    tokens = {}
    for role in ("rights_holder", "notary"):
        out = _el(home_a, "account", "create", "--role", role, "--name", f"{role} 1")
        tokens[role] = out.strip().splitlines()[-1]
    cfg_path = home_a / "config.json"
    cfg = json.loads(cfg_path.read_text())
    assert cfg["blobs"] == "postgresql"
    cfg["capture"]["allow"] = ["127.0.0.0/8"]  # the test site runs on loopback
    cfg_path.write_text(json.dumps(cfg))
    # (2) the second host's home is a plain copy: config and keys, nothing else
    shutil.copytree(home_a, home_b)
    assert sorted(p.name for p in home_b.iterdir()) == ["config.json", "keys"]
    rh, notary = tokens["rights_holder"], tokens["notary"]

    with (
        serve_site() as site,
        _serving("a", home_a, tmp_path) as a,
        _serving("b", home_b, tmp_path) as b,
    ):
        # (3) a 3 MB upload on A is served byte for byte by B
        data = os.urandom(3 * 1024 * 1024 + 17)
        r = a.post("/v1/evidence", rh, files=[("file", ("scan.pdf", data, "application/pdf"))])
        assert r.status_code == 201, r.text
        receipt = r.json()["receipts"][0]
        eid = receipt["evidence_id"]
        got = b.get(f"/v1/evidence/{eid}/content", rh)
        assert got.status_code == 200, got.text
        assert got.content == data
        assert got.headers["content-type"] == "application/pdf"
        assert hashlib.sha256(got.content).hexdigest() == receipt["sha256"]

        # (4) both hosts seal into one log: same checkpoint, proofs, tiles, trust
        _sealed([a, b], receipt["index"])
        size = _size(a)
        for path in (
            f"/v1/evidence/{eid}/proof?size={size}",
            f"/v1/evidence/{eid}",
            "/v1/trust",
            f"/tile/0/000.p/{size}",
        ):
            ra, rb = a.get(path, rh), b.get(path, rh)
            assert (ra.status_code, rb.status_code) == (200, 200), path
            assert ra.content == rb.content, path

        # (5) a certificate issued on B packages on A and evidence-verify accepts it
        r = b.post("/v1/certificates", notary, json={"evidence_id": eid})
        assert r.status_code == 201, r.text
        cert = r.json()
        assert a.get(f"/v1/certificates/{cert['certificate_id']}", rh).content == r.content
        pkg = a.get(f"/v1/certificates/{cert['certificate_id']}/package", rh)
        assert pkg.status_code == 200, pkg.text
        (tmp_path / "pkg.zip").write_bytes(pkg.content)
        with zipfile.ZipFile(tmp_path / "pkg.zip") as z:
            files = [n for n in z.namelist() if n.startswith("evidence/")]
            assert [z.read(n) for n in files] == [data]
        trust = tmp_path / "trust.json"
        trust.write_bytes(a.get("/v1/trust").content)
        assert _verify(tmp_path / "pkg.zip", trust)["valid"] is True
        status = a.get(f"/v1/certificates/{cert['certificate_id']}/status").json()
        assert status["status"] == "valid"

        # (6) a capture job started on A is followed on B, to its evidence
        r = a.post("/v1/captures", rh, json={"url": site.base + "/", "title": "page"})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        deadline = time.monotonic() + 120
        while True:
            job = b.get(f"/v1/captures/{job_id}", rh)
            assert job.status_code == 200, job.text
            if job.json()["status"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, job.json()
            time.sleep(0.2)
        done = job.json()
        assert done["status"] == "complete", done
        assert a.get(f"/v1/captures/{job_id}", rh).json() == done
        cid = done["evidence_id"]
        # Its artefacts were stored by A; B certifies it, and A's package holds them.
        _sealed([a, b], done["receipt"]["index"])
        r = b.post("/v1/certificates", notary, json={"evidence_id": cid})
        assert r.status_code == 201, r.text
        pkg = a.get(f"/v1/certificates/{r.json()['certificate_id']}/package", rh)
        assert pkg.status_code == 200
        (tmp_path / "capture.zip").write_bytes(pkg.content)
        report = _verify(tmp_path / "capture.zip", trust)
        assert report["valid"] is True
        assert sum(c["key"] == "capture_artefact" for c in report["checks"]) >= 5

        # (7) an interactive capture started on A is followed, driven and
        # finished from B (its browser runs on A; the database relays it)
        _interactive_across_hosts(a, b, rh, site.base + "/")

    # Nothing was kept on either host's disk: the database holds it all.
    for home in (home_a, home_b):
        assert not (home / "blobs").exists()
        assert not (home / "captures" / "jobs").exists()
