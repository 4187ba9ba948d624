"""``evidence-verify`` benchmarks (issue 3): package wall time, digest speed, log audit speed.

    python bench/verify_bench.py                 # 1,000,000 entries, 1 GiB file
    python bench/verify_bench.py --n 100000 --gib 0.25 --runs 5

Everything verified is real: a ledger of ``--n`` hash-only deposits plus a
small file and a ``--gib`` file, sealed, with a notary's certificates and
their packages, the trust file and a tlog-tiles export. Then, timing whole
processes (interpreter start included):

1. ``evidence-verify package`` of the small file's package, with the verifier
   installed alone from its wheel in a fresh virtualenv (what a judge runs;
   built in bench/out/verify-venv, or ``--venv``), and with the development
   install for comparison;
2. the big file's digests (SHA-256 + SM3) by ``evidence-verify certificate
   --evidence`` and inside ``evidence-verify package``, against ``sha256sum``
   on the same file in the same run (warm page cache, median of ``--runs``);
3. ``evidence-verify log`` of the export: entries/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import OUT, digests, fresh_home
from ledger.accounts import create_account
from ledger.certificates import issue_certificate, package_certificate, trust_export
from ledger.core import Ledger
from ledger.events import evidence_deposited
from ledger.export import export
from ledger.services import OPERATOR, Services

REPO = Path(__file__).resolve().parents[1]
DEV_VERIFY = Path(sys.executable).with_name("evidence-verify")


def _timed(args: list[str], runs: int, expect: int = 0) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(args, capture_output=True, check=False)
        times.append(time.perf_counter() - t)
        if r.returncode != expect:
            raise SystemExit(
                f"{' '.join(args)} exited {r.returncode}: {r.stdout[-400:]!r} {r.stderr!r}"
            )
    return times


def _ms(times: list[float]) -> str:
    return (
        f"median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms (n={len(times)})"
    )


def _write_random(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 24))
            f.write(chunk)
            left -= len(chunk)


def _paths(work: Path) -> dict[str, Path]:
    names = ("small_pkg", "big_pkg", "big_cert", "trust", "export")
    files = ("small.zip", "big.zip", "big-cert.json", "trust.json", "export")
    return {k: work / f for k, f in zip(names, files, strict=True)}


def build(n: int, big: Path, reuse: bool) -> dict[str, Path]:
    work = OUT / f"verify-{n}-files"
    if reuse and all(p.exists() for p in _paths(work).values()):
        print(f"reusing the log and files in {work}")
        return _paths(work)
    home = fresh_home(f"verify-{n}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    small = work / "contract.pdf"
    small.write_bytes(b"%PDF-1.7 a small contract\n" * 200)
    t = time.perf_counter()
    with Ledger.init(home, "bench.local/verify") as ledger:
        create_account(ledger, "notary", "Notary Bench")
        drafts = (evidence_deposited(kind="hash", sha256=h) for h in digests(0, n - 4))
        for _ in Services(ledger).deposits.bulk(drafts):
            pass
        with small.open("rb") as f:
            small_id = (
                Services(ledger)
                .deposits.deposit_file(OPERATOR, f, title="small", file_name=small.name)
                .evidence_id
            )
        with big.open("rb") as f:
            big_id = (
                Services(ledger)
                .deposits.deposit_file(OPERATOR, f, title="big", file_name=big.name)
                .evidence_id
            )
        ledger.seal()
        built = time.perf_counter() - t
        small_cert = issue_certificate(ledger, small_id, "Notary Bench")
        big_cert = issue_certificate(ledger, big_id, "Notary Bench")
        ledger.seal()
        package_certificate(ledger, small_cert.certificate_id, work / "small.zip")
        package_certificate(ledger, big_cert.certificate_id, work / "big.zip")
        (work / "big-cert.json").write_bytes(big_cert.data)
        (work / "trust.json").write_text(json.dumps(trust_export(ledger)), "utf-8")
        export(ledger.store, work / "export", ledger.latest_checkpoint())
        size = ledger.latest_checkpoint().size
    print(
        f"built a real log of {size:,} entries in {built:.0f} s (+ certificates, packages, export)"
    )
    return _paths(work)


def standalone_venv(path: Path) -> Path:
    """The verifier's wheel installed alone in a fresh virtualenv (built once)."""
    ev = path / "bin" / "evidence-verify"
    if ev.exists():
        return ev
    build_dir = OUT / "verify-wheel"
    shutil.rmtree(build_dir, ignore_errors=True)
    shutil.copytree(
        REPO / "verifier", build_dir / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(build_dir),
            str(build_dir / "src"),
        ],
        check=True,
    )
    (wheel,) = build_dir.glob("evidence_verify-*.whl")
    subprocess.run(
        [getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(path)], check=True
    )
    subprocess.run([str(path / "bin" / "pip"), "install", "-q", str(wheel)], check=True)
    return ev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="log entries")
    ap.add_argument("--gib", type=float, default=1.0, help="size of the big evidence file")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--venv", type=Path, default=OUT / "verify-venv")
    ap.add_argument("--reuse", action="store_true", help="reuse the log built by an earlier run")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    big = OUT / f"verify-{a.gib:g}gib.bin"
    _write_random(big, int(a.gib * (1 << 30)))
    p = build(a.n, big, a.reuse)
    ev = str(standalone_venv(a.venv))
    trust = ["--trust", str(p["trust"])]

    # 1. package wall time, interpreter start included.
    base = _timed([sys.executable, "-S", "-c", "pass"], a.runs)
    print(f"python start-up alone (-S): {_ms(base)}")
    for label, exe in (("standalone wheel", ev), ("development install", str(DEV_VERIFY))):
        _timed([exe, "package", str(p["small_pkg"]), *trust], 1)  # warm the page cache
        times = _timed([exe, "package", str(p["small_pkg"]), *trust], a.runs)
        print(f"1. evidence-verify package, small file, {a.n:,}-entry log [{label}]: {_ms(times)}")

    # 2. digest speed on the big file vs sha256sum, same file, same run.
    size_mb = big.stat().st_size / 1e6
    cert_args = [ev, "certificate", str(p["big_cert"]), "--evidence", str(big), *trust]
    pkg_args = [ev, "package", str(p["big_pkg"]), *trust]
    _timed(["sha256sum", str(big)], 1)
    sha, ours, pkg = [], [], []
    for _ in range(max(3, a.runs // 2)):
        sha += _timed(["sha256sum", str(big)], 1)
        ours += _timed(cert_args, 1)
        pkg += _timed(pkg_args, 1)
    s, o, k = statistics.median(sha), statistics.median(ours), statistics.median(pkg)
    print(f"2. sha256sum {big.name}: {s:.2f} s ({size_mb / s:,.0f} MB/s)")
    print(
        f"2. evidence-verify certificate --evidence (SHA-256 + SM3): {o:.2f} s "
        f"({size_mb / o:,.0f} MB/s) = {s / o:.2f}x sha256sum"
    )
    print(
        f"2. evidence-verify package (stored member, CRC-32 too): {k:.2f} s "
        f"({size_mb / k:,.0f} MB/s) = {s / k:.2f}x sha256sum"
    )

    # 3. log audit of the export.
    for workers in ("1", str(min(os.cpu_count() or 1, 8))):
        t = time.perf_counter()
        r = subprocess.run(
            [ev, "log", str(p["export"]), *trust, "--json", "--workers", workers],
            capture_output=True,
            check=True,
        )
        wall = time.perf_counter() - t
        doc = json.loads(r.stdout)
        print(
            f"3. evidence-verify log, {doc['entries_read']:,} entries, --workers {workers}: "
            f"{doc['entries_per_second']:,} entries/s in the audit, "
            f"{doc['entries_read'] / wall:,.0f} entries/s wall ({wall:.2f} s)"
        )


if __name__ == "__main__":
    main()
