"""Blob store throughput through the HTTP API: one large upload and its download.

    python bench/blob_throughput.py                      # 1 GiB, every setup below
    python bench/blob_throughput.py --gib 0.25 --setups pg-postgresql

For each setup a fresh ledger is served by ``evidence-ledger serve`` (one
worker, no access log); the client streams one file of ``--gib`` GiB
(generated on the fly, every MiB different) as a multipart upload to
``POST /v1/evidence``, then downloads it from ``/v1/evidence/{id}/content``
and checks its SHA-256. Printed per direction: MB/s (10^6 bytes) and the
server's peak resident memory above its level before the transfer, sampled
every 50 ms, and the server's CPU time (target: >= 100 MB/s and <= 64 MiB
with PostgreSQL blobs). On a shared host the CPU time is the steadier figure.

Setups: ``pg-postgresql`` (ledger and blobs in PostgreSQL), ``pg-fs``
(ledger in PostgreSQL, blobs on the filesystem), ``sqlite-fs`` (the
embedded default).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import drop_pg, fresh_home, pg_url, wait_serving
from ledger.accounts import create_account
from ledger.core import Ledger

BIN = Path(sys.executable).with_name("evidence-ledger")
SETUPS = ("pg-postgresql", "pg-fs", "sqlite-fs")
MIB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its direct children."""
    pids = [pid]
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().split()[3]) == pid:
                    pids.append(int(p.name))
            except (OSError, ValueError):
                pass
    total = 0
    for q in pids:
        try:
            m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{q}/status").read_text())
            total += int(m.group(1)) * 1024 if m else 0
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakRss:
    """Samples a server's resident memory while a transfer runs, and counts
    the CPU time it spends (its own: the database's is not counted)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.base = rss_bytes(pid)
        self.peak = self.base
        self.cpu = cpu_seconds(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))
        self.cpu = cpu_seconds(self.pid) - self.cpu

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / MIB


def start(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN), "--home", str(home), "serve", "--port", str(port), "--no-access-log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_serving(proc, base)
    return proc, base


def body(size: int, digest: hashlib._Hash) -> Iterator[bytes]:
    block = os.urandom(MIB)
    yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
    sent = 0
    n = 0
    while sent < size:
        piece = (n.to_bytes(8, "big") + block[8:])[: size - sent]
        digest.update(piece)
        yield piece
        sent += len(piece)
        n += 1
    yield b"\r\n--B--\r\n"


def run(setup: str, size: int) -> dict[str, float]:
    db, blobs = setup.split("-")
    home = fresh_home(f"blobs-{setup}")
    url = pg_url("blobs") if db == "pg" else None
    try:
        with Ledger.init(home, "bench.local/blobs", url, blobs) as ledger:
            token = create_account(ledger, "rights_holder", "bench").token
        proc, base = start(home)
        auth = {"Authorization": f"Bearer {token}"}
        try:
            with httpx.Client(base_url=base, headers=auth, timeout=900) as client:
                # Warm up the routes (imports, connections) before measuring memory.
                warm = client.post("/v1/evidence", files={"file": ("w", os.urandom(2 * MIB))})
                assert warm.status_code == 201, warm.text
                sent = hashlib.sha256()
                with PeakRss(proc.pid) as up:
                    t = time.perf_counter()
                    r = client.post(
                        "/v1/evidence",
                        content=body(size, sent),
                        headers={"Content-Type": "multipart/form-data; boundary=B"},
                    )
                    t_up = time.perf_counter() - t
                assert r.status_code == 201, r.text
                receipt = r.json()["receipts"][0]
                assert receipt["sha256"] == sent.hexdigest()
                assert receipt["size"] == size
                got = hashlib.sha256()
                n = 0
                with PeakRss(proc.pid) as down:
                    t = time.perf_counter()
                    with client.stream(
                        "GET", f"/v1/evidence/{receipt['evidence_id']}/content"
                    ) as resp:
                        assert resp.status_code == 200
                        for chunk in resp.iter_raw(MIB):
                            got.update(chunk)
                            n += len(chunk)
                    t_down = time.perf_counter() - t
                assert (got.hexdigest(), n) == (receipt["sha256"], size)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    finally:
        if url:
            drop_pg(url)
    return {
        "up_mbps": size / t_up / 1e6,
        "up_rss_mib": up.growth_mib,
        "up_cpu": up.cpu,
        "down_cpu": down.cpu,
        "down_mbps": size / t_down / 1e6,
        "down_rss_mib": down.growth_mib,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=1.0, help="size of the file, in GiB")
    ap.add_argument(
        "--setups", default=",".join(SETUPS), help="comma-separated, of: " + ", ".join(SETUPS)
    )
    a = ap.parse_args()
    size = int(a.gib * (1 << 30))
    for setup in a.setups.split(","):
        if setup not in SETUPS:
            raise SystemExit(f"unknown setup {setup!r}")
        r = run(setup, size)
        print(
            f"{setup:14} {a.gib:g} GiB  upload {r['up_mbps']:6,.0f} MB/s "
            f"(server RSS +{r['up_rss_mib']:.0f} MiB, CPU {r['up_cpu']:.1f} s)  "
            f"download {r['down_mbps']:6,.0f} MB/s "
            f"(server RSS +{r['down_rss_mib']:.0f} MiB, CPU {r['down_cpu']:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
