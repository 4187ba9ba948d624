"""Helpers shared by the benchmarks: fresh ledgers, PostgreSQL schemas, percentiles,
waiting for a served ledger, process memory."""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

PG_BASE = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
OUT = Path(__file__).resolve().parent / "out"


def fresh_home(name: str) -> Path:
    home = OUT / name
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    return home


def pg_url(tag: str) -> str:
    """A new empty schema in the bench database, as a URL selecting it."""
    import psycopg

    schema = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"create schema {schema}")
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


def drop_pg(url: str) -> None:
    import psycopg

    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {schema} cascade")


def digests(start: int, n: int) -> Iterator[str]:
    for i in range(start, start + n):
        yield hashlib.sha256(i.to_bytes(8, "big")).hexdigest()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def summary(values: list[float]) -> str:
    us = [v * 1e6 for v in values]
    return (
        f"p50 {pct(us, 50):.0f} us  p99 {pct(us, 99):.0f} us  "
        f"mean {statistics.fmean(us):.0f} us  (n={len(us)})"
    )


def wait_serving(proc: subprocess.Popen[bytes], base: str, tries: int = 300) -> None:
    """Wait until the server at ``base`` answers ``/checkpoint``; kill it and
    exit if it never does."""
    import httpx

    for _ in range(tries):
        try:
            if httpx.get(base + "/checkpoint", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def pss_kib(pid: int) -> int:
    """Proportional set size of a process in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
