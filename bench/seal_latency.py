"""Seal latency: deposit to published (cosigned, timestamped) checkpoint.

Three local witnesses (``evidence-ledger witness serve``, one process each),
a local RFC 3161 TSA (``openssl ts -reply`` behind loopback HTTP, the test
helper ``tests/anchoring/tsa_server.py``) and a SQLite ledger anchored k of 3
with that TSA. The ledger runs its background sealer in this process while an
open-loop generator submits hash-only deposits at a steady rate; a watcher
polls the latest published checkpoint. Latency of a deposit = the moment a
published checkpoint covers it minus the moment it was submitted.

    python bench/seal_latency.py                      # 1,000/s for 30 s, quorum 2
    python bench/seal_latency.py --rate 1000 --seconds 60 --interval 0.25
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "anchoring"))

from pki import issue_tsa, make_ca  # tests/anchoring/pki.py: openssl-made CA and TSA

from api.app import BackgroundSealer
from bench.common import fresh_home, pct
from ledger.config import load_config, save_config, with_seal
from ledger.core import Ledger
from ledger.events import evidence_deposited
from verifier.cosignature import WitnessPolicy, open_cosigned_checkpoint
from verifier.note import VerifierKey, parse_note
from verifier.timestamp import load_roots, verify_timestamp

ROOT = Path(__file__).resolve().parents[1]
EL = str(Path(sys.executable).with_name("evidence-ledger"))
ORIGIN = "bench.local/seal-latency"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def el(home: Path, *args: str) -> str:
    r = subprocess.run([EL, "--home", str(home), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"evidence-ledger {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout.strip()


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on {port} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=1000.0, help="deposits per second")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured duration")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds not measured")
    ap.add_argument("--quorum", type=int, default=2, help="cosignatures needed (of 3)")
    ap.add_argument(
        "--interval", type=float, default=None, help="sealer interval (default: the ledger's)"
    )
    a = ap.parse_args()

    base = fresh_home("seal-latency")
    base.mkdir(parents=True)
    procs: list[subprocess.Popen[bytes]] = []
    home = base / "ledger"
    log_vkey = el(home, "init", "--origin", ORIGIN)
    try:
        # Three witnesses, each in its own process, following the log.
        for i in range(3):
            wh = base / f"witness{i}"
            wkey = el(wh, "witness", "init", "--name", f"w{i}.bench.local/witness")
            el(wh, "witness", "follow", log_vkey)
            port = free_port()
            out = (base / f"witness{i}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [EL, "--home", str(wh), "witness", "serve", "--port", str(port)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
            wait_port(port, procs[-1])
            el(home, "witnesses", "add", "--url", f"http://127.0.0.1:{port}", "--vkey", wkey)
        el(home, "witnesses", "quorum", str(a.quorum))
        # The TSA: a CA and TSA certificate from openssl, openssl ts -reply over HTTP.
        ca = make_ca(base / "ca")
        tsa = issue_tsa(ca, base / "tsa")
        port = free_port()
        out = (base / "tsa.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    *(sys.executable, str(ROOT / "tests/anchoring/tsa_server.py")),
                    *("--config", str(tsa.config), "--port", str(port)),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        )
        wait_port(port, procs[-1])
        el(home, "tsa", "set", f"http://127.0.0.1:{port}/", "--roots", str(ca.cert))
        if a.interval is not None:
            save_config(with_seal(load_config(home), interval=a.interval))
        run(home, a, ca.cert)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def run(home: Path, a: argparse.Namespace, ca_cert: Path) -> None:
    ledger = Ledger.open(home)
    interval = ledger.config.seal.interval
    # One generator thread submits in order and the sequencer is FIFO, so deposit i
    # gets index base + i; the callbacks check it (a mismatch aborts the run).
    base = ledger.store.size()
    total = int(a.rate * (a.seconds + a.warmup))
    submitted = [0.0] * total
    misplaced: list[int] = []
    latencies: list[float] = []
    sealed_latencies: list[float] = []
    rounds: list[float] = []
    published_sizes: list[int] = []
    stop = threading.Event()

    anchor = ledger.anchor.anchor  # time each anchoring round (network + checks)

    def timed(*args: object, **kw: object) -> object:
        t0 = time.perf_counter()
        try:
            return anchor(*args, **kw)  # type: ignore[arg-type]
        finally:
            rounds.append(time.perf_counter() - t0)

    ledger.anchor.anchor = timed  # type: ignore[method-assign]

    def generate() -> None:
        t0 = time.perf_counter()
        for i in range(total):
            due = t0 + i / a.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            draft = evidence_deposited(kind="hash", sha256=f"{i:064x}")
            submitted[i] = time.perf_counter()
            fut = ledger.sequencer.submit([draft])

            def done(f: object, i: int = i) -> None:
                (appended,) = f.result()  # type: ignore[attr-defined]
                if appended.index != base + i:
                    misplaced.append(i)

            fut.add_done_callback(done)

    def watch() -> None:
        seen = sealed_seen = ledger.latest_checkpoint().size
        while not stop.is_set():
            sealed = ledger.store.latest_checkpoint()
            pub = ledger.store.latest_publication()
            now = time.perf_counter()
            if sealed is not None and sealed.size > sealed_seen:
                for idx in range(sealed_seen, sealed.size):
                    sealed_latencies.append(now - submitted[idx - base])
                sealed_seen = sealed.size
            if pub is not None and pub.size > seen:
                for idx in range(seen, pub.size):
                    latencies.append(now - submitted[idx - base])
                published_sizes.append(pub.size)
                seen = pub.size
            time.sleep(0.002)

    sealer = BackgroundSealer(ledger)
    watcher = threading.Thread(target=watch, daemon=True)
    gen = threading.Thread(target=generate)
    started = time.perf_counter()
    sealer.start()
    watcher.start()
    gen.start()
    gen.join()
    generated = time.perf_counter() - started
    deadline = time.monotonic() + 30
    while ledger.latest_checkpoint().size < base + total and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    watcher.join()
    sealer.stop()

    if misplaced:
        raise SystemExit(f"{len(misplaced)} deposits got unexpected indices")
    skip = int(a.rate * a.warmup)
    measured = latencies[skip:]
    to_sealed = sealed_latencies[skip:]
    cp = ledger.latest_checkpoint()
    policy = WitnessPolicy(
        tuple(VerifierKey.from_text(w.vkey) for w in ledger.config.witnesses),
        ledger.config.quorum,
    )
    _, cos = open_cosigned_checkpoint(cp.note, [ledger.verifier_key], policy, ORIGIN)
    token = ledger.checkpoint_token(cp.size)
    assert token is not None
    info = verify_timestamp(
        token, parse_note(cp.note).text.encode(), load_roots([ca_cert.read_bytes()])
    )
    pubs = len(published_sizes)
    print(
        f"seal latency, deposit -> published (cosigned {len(cos)} of 3, quorum "
        f"{ledger.config.quorum}, RFC 3161 token), sealer interval {interval:g} s"
    )
    print(
        f"  offered {a.rate:.0f}/s for {a.seconds + a.warmup:.0f} s: {total} deposits in "
        f"{generated:.1f} s ({total / generated:.0f}/s), {a.warmup:g} s warm-up not measured"
    )
    print(
        f"  latency: p50 {pct(measured, 50) * 1000:.0f} ms  p99 {pct(measured, 99) * 1000:.0f} ms"
        f"  max {max(measured) * 1000:.0f} ms  (n={len(measured)})"
    )
    print(
        f"  of which deposit -> sealed (integrated, log-signed): p50 "
        f"{pct(to_sealed, 50) * 1000:.0f} ms  p99 {pct(to_sealed, 99) * 1000:.0f} ms"
    )
    print(
        f"  anchoring round (3 witnesses + TSA, parallel): p50 {pct(rounds, 50) * 1000:.0f} ms"
        f"  p99 {pct(rounds, 99) * 1000:.0f} ms  ({len(rounds)} rounds, "
        f"{pubs} publications, {total / max(pubs, 1):.0f} entries each)"
    )
    print(f"  last checkpoint {cp.size}, token genTime {info.gen_time:%Y-%m-%dT%H:%M:%SZ}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  cpu count {os.cpu_count()}, load average {load:.1f} at the end")
    ledger.close()


if __name__ == "__main__":
    main()
