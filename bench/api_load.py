"""Load on the real service: uvicorn workers on loopback, wrk as the client.

    python bench/api_load.py --backend sqlite     [--workers 2 --connections 64 --seconds 20]
    python bench/api_load.py --backend postgresql
    python bench/api_load.py --only upload1g      # one 1 GiB upload: MB/s and server RSS growth
    python bench/api_load.py --only proofs --entries 1000000

Scenarios: durable hash-only deposits (JSON), 4 KiB multipart uploads, one
1 GiB streamed upload, and inclusion-proof requests. Each prints requests/s
and wrk's latency percentiles (after --warmup seconds of unmeasured load).
wrk (Debian package) is installed if missing.
The service runs without the access log unless --access-log is given.
    python bench/api_load.py --only hash --ops-overhead   # metrics + JSON logs vs off
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import digests, drop_pg, fresh_home, pg_url, wait_serving
from ledger.accounts import create_account
from ledger.core import Ledger
from ledger.events import evidence_deposited
from ledger.services import Services

BIN = Path(sys.executable).parent / "evidence-ledger"

HASH_LUA = r"""
local token = os.getenv("TOKEN")
local n = 0
local tid = 0
setup = function(thread) thread:set("tid", tid); tid = tid + 1 end
request = function()
  n = n + 1
  local hex = string.format("%08x%08x", tid, n) .. string.rep("0", 48)
  local body = '{"sha256":"' .. hex .. '"}'
  return wrk.format("POST", "/v1/evidence",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
"""

UPLOAD_LUA = r"""
local token = os.getenv("TOKEN")
local n = 0
local tid = 0
setup = function(thread) thread:set("tid", tid); tid = tid + 1 end
local filler = string.rep("x", 4096 - 24)
request = function()
  n = n + 1
  local content = string.format("%08x%016x", tid, n) .. filler
  local body = "--BoUnDaRy\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n"
    .. "Content-Type: application/octet-stream\r\n\r\n" .. content .. "\r\n--BoUnDaRy--\r\n"
  return wrk.format("POST", "/v1/evidence",
    {["Content-Type"] = "multipart/form-data; boundary=BoUnDaRy",
     ["Authorization"] = "Bearer " .. token}, body)
end
"""

PROOF_LUA = r"""
local token = os.getenv("TOKEN")
local ids = {}
for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
math.randomseed(os.time())
request = function()
  local id = ids[math.random(#ids)]
  local headers = {["Authorization"] = "Bearer " .. token}
  return wrk.format("GET", "/v1/evidence/" .. id .. "/proof", headers)
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    home: Path, workers: int, access_log: bool, extra: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = "--access-log" if access_log else "--no-access-log"
    proc = subprocess.Popen(
        [
            str(BIN),
            "--home",
            str(home),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            log,
            *(extra or []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_serving(proc, base)
    return proc, base


def wrk(base: str, script: str, env: dict[str, str], conns: int, seconds: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(
        [ensure_wrk(), "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", f.name, base],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    ).stdout
    os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {}
    for pct, value, unit in re.findall(r"\s(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)", out):
        lat[pct] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": lat.get("50", float("nan")),
        "p99_ms": lat.get("99", float("nan")),
        "non2xx": float(errors.group(1)) if errors else 0.0,
    }


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (the uvicorn workers)."""
    total = 0
    pids = [pid]
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().split()[3]) == pid:
                    pids.append(int(p.name))
            except (OSError, ValueError):
                pass
    for q in pids:
        try:
            m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{q}/status").read_text())
            total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total


def upload_1g(base: str, token: str, pid: int) -> None:
    import httpx

    size = 1 << 30
    block = os.urandom(1 << 20)

    def body():  # type: ignore[no-untyped-def]
        yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        for _ in range(size // len(block)):
            yield block
        yield b"\r\n--B--\r\n"

    before = rss_kib(pid)
    t = time.perf_counter()
    r = httpx.post(
        base + "/v1/evidence",
        content=body(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "multipart/form-data; boundary=B",
        },
        timeout=600,
    )
    elapsed = time.perf_counter() - t
    after = rss_kib(pid)
    assert r.status_code == 201, r.text
    print(
        f"upload 1 GiB: {size / elapsed / 1e6:,.0f} MB/s ({elapsed:.1f} s, SHA-256 + SM3); "
        f"server RSS {before / 1024:.0f} -> {after / 1024:.0f} MiB "
        f"(growth {(after - before) / 1024:.0f} MiB)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument(
        "--warmup", type=int, default=3, help="seconds of unmeasured load before each scenario"
    )
    ap.add_argument("--entries", type=int, default=1_000_000, help="log size for --only proofs")
    ap.add_argument("--only", choices=["hash", "upload4k", "upload1g", "proofs"])
    ap.add_argument(
        "--access-log",
        action="store_true",
        help="serve with the per-request access log (off by default, as behind a proxy)",
    )
    ap.add_argument(
        "--ops-overhead",
        action="store_true",
        help="run each scenario with metrics off and no access log, then with metrics on "
        "and JSON access logs, --rounds times, and print both side by side",
    )
    ap.add_argument("--rounds", type=int, default=2, help="with --ops-overhead")
    a = ap.parse_args()
    if a.ops_overhead:
        ops_overhead(a)
        return
    home = fresh_home(f"api-{a.backend}")
    url = pg_url("api") if a.backend == "postgresql" else None
    try:
        with Ledger.init(home, "bench.local/api", url) as ledger:
            token = create_account(ledger, "rights_holder", "bench").token
            ledger.config.max_upload_bytes  # noqa: B018 - the default 4 GiB covers 1 GiB
        env = {"TOKEN": token}
        runs = [a.only] if a.only else ["hash", "upload4k", "upload1g", "proofs"]
        if "proofs" in runs:
            prepare_proofs(home, token, a.entries)
        proc, base = start(home, a.workers, a.access_log)
        try:
            for name in runs:
                if name == "upload1g":
                    upload_1g(base, token, proc.pid)
                    continue
                script = {"hash": HASH_LUA, "upload4k": UPLOAD_LUA, "proofs": PROOF_LUA}[name]
                extra = {"IDS": str(home / "ids.txt")} if name == "proofs" else {}
                if a.warmup:  # fresh workers: cold SQLite caches, first seal, token cache
                    wrk(base, script, {**env, **extra}, a.connections, a.warmup)
                r = wrk(base, script, {**env, **extra}, a.connections, a.seconds)
                print(
                    f"{name}[{a.backend}, {a.workers} workers, {a.connections} conns"
                    f"{', access log' if a.access_log else ''}]: "
                    f"{r['rps']:,.0f} req/s  p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms"
                    f"  non-2xx {int(r['non2xx'])}"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    finally:
        if url:
            drop_pg(url)


OPS_CONFIGS = {
    "metrics off, no access log": (False, ["--metrics", "off"]),
    "metrics on, no access log": (False, ["--metrics", "main"]),
    "metrics on, JSON access log": (True, ["--metrics", "main", "--log-format", "json"]),
}


def ops_overhead(a: argparse.Namespace) -> None:
    """The cost of /metrics recording and JSON access logs on one scenario."""
    if a.only in (None, "upload1g"):
        raise SystemExit("--ops-overhead needs --only hash, upload4k or proofs")
    home = fresh_home(f"api-ops-{a.backend}")
    url = pg_url("api-ops") if a.backend == "postgresql" else None
    results: dict[str, list[float]] = {name: [] for name in OPS_CONFIGS}
    try:
        with Ledger.init(home, "bench.local/api", url) as ledger:
            token = create_account(ledger, "rights_holder", "bench").token
        env = {"TOKEN": token}
        if a.only == "proofs":
            prepare_proofs(home, token, a.entries)
            env["IDS"] = str(home / "ids.txt")
        script = {"hash": HASH_LUA, "upload4k": UPLOAD_LUA, "proofs": PROOF_LUA}[a.only]
        for round_ in range(a.rounds):
            for name, (access, extra) in OPS_CONFIGS.items():
                proc, base = start(home, a.workers, access, extra)
                try:
                    if a.warmup:
                        wrk(base, script, env, a.connections, a.warmup)
                    r = wrk(base, script, env, a.connections, a.seconds)
                finally:
                    proc.terminate()
                    proc.wait(timeout=60)
                results[name].append(r["rps"])
                print(
                    f"round {round_ + 1} {a.only}[{name}]: {r['rps']:,.0f} req/s "
                    f"p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms non-2xx {int(r['non2xx'])}"
                )
    finally:
        if url:
            drop_pg(url)
    means = {name: sum(v) / len(v) for name, v in results.items()}
    base_rps = next(iter(means.values()))
    print(
        f"{a.only}[{a.backend}, {a.workers} workers, {a.connections} conns, "
        f"{a.rounds} rounds, mean]: "
        + " | ".join(
            f"{name} {rps:,.0f} req/s ({(rps / base_rps - 1) * 100:+.1f}%)"
            for name, rps in means.items()
        )
    )


def prepare_proofs(home: Path, token: str, n: int) -> None:
    """Fill the log to ``n`` entries owned by the bench account; keep 10,000 ids."""
    from ledger.accounts import authenticate

    with Ledger.open(home) as ledger:
        owner = authenticate(ledger, token)
        assert owner is not None
        drafts = (
            evidence_deposited(kind="hash", sha256=h, owner=owner.account_id) for h in digests(0, n)
        )
        ids = []
        for i, r in enumerate(Services(ledger).deposits.bulk(drafts)):
            if i % max(1, n // 10_000) == 0:
                ids.append(r.evidence_id)
        ledger.seal()
        (home / "ids.txt").write_text("\n".join(ids) + "\n")
    print(json.dumps({"proof_log_entries": n, "sampled_ids": len(ids)}))


if __name__ == "__main__":
    main()
