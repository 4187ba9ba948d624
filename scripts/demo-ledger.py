"""The `make run` demo: a ledger anchored by two witnesses and a test TSA on loopback.

    python scripts/demo-ledger.py setup HOME      # once: ledger, anchors, accounts, evidence
    python scripts/demo-ledger.py run HOME --host 127.0.0.1 --port 8000

``setup`` creates the ledger, a test TSA (its own root CA, made with the
``openssl`` command line, answering with ``openssl ts -reply``), two witness
homes that follow the log, the accounts of every role, and evidence in each
state: sealed (with a certificate request waiting for the notary),
certified (with its evidence package), revoked, plus a deposit made when
the service starts that stays durable until the first seal. ``run`` starts the witnesses and the TSA, then the service, and stops
them all when the service stops (Ctrl-C). Everything listens on loopback only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "anchoring"))

from pki import issue_tsa, make_ca  # noqa: E402  (the test TSA's PKI)

from ledger.accounts import create_account  # noqa: E402
from ledger.certificates import (  # noqa: E402
    issue_certificate,
    package_certificate,
    revoke_certificate,
    trust_export,
)
from ledger.config import load_config, save_config  # noqa: E402
from ledger.core import Ledger  # noqa: E402
from ledger.services import OPERATOR, Actor, Services  # noqa: E402

ORIGIN = "demo.evidence-ledger.local/log"
EL = str(Path(sys.executable).parent / "evidence-ledger")
# Loopback ports of the anchors, fixed at setup (DEMO_ANCHOR_PORT moves all three).
_BASE = int(os.environ.get("DEMO_ANCHOR_PORT", "8101"))
WITNESSES = (
    ("demo.court.example/witness", _BASE),
    ("demo.notary-office.example/witness", _BASE + 1),
)
TSA_PORT = _BASE + 2
SEAL_INTERVAL = 15.0  # seconds: long enough to see a deposit go from durable to sealed


def el(home: Path, *args: str) -> str:
    out = subprocess.run(
        [EL, "--home", str(home), *args], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def _wait(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: {what} exited (see its log)")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"demo: {what} did not start on port {port}")


def start_anchors(home: Path) -> list[subprocess.Popen[bytes]]:
    """The two witnesses and the TSA of the demo, listening on loopback."""
    demo = home / "demo"
    procs: list[tuple[subprocess.Popen[bytes], int, str]] = []
    for i, (_, port) in enumerate(WITNESSES, 1):
        log = (demo / f"witness-{i}.log").open("ab")
        args = [EL, "--home", str(demo / f"witness-{i}"), "witness", "serve", "--port", str(port)]
        procs.append((subprocess.Popen(args, stdout=log, stderr=log), port, f"witness {i}"))
    log = (demo / "tsa.log").open("ab")
    tsa = [sys.executable, str(ROOT / "tests" / "anchoring" / "tsa_server.py")]
    tsa += ["--config", str(demo / "tsa" / "tsa.cnf"), "--port", str(TSA_PORT)]
    procs.append((subprocess.Popen(tsa, stdout=log, stderr=log), TSA_PORT, "TSA"))
    for proc, port, what in procs:
        _wait(port, proc, what)
    return [p for p, _, _ in procs]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def _file(home: Path, name: str, text: str) -> Path:
    path = home / "demo" / name
    path.write_text(text, encoding="utf-8")
    return path


def setup(home: Path) -> None:
    """Create the demo ledger, its anchors, accounts and evidence."""
    led = Ledger.init(home, origin=ORIGIN)
    log_vkey = led.verifier_key.to_text()
    led.close()
    demo = home / "demo"
    demo.mkdir()
    ca = make_ca(demo / "ca", cn="Demo TSA Root CA")
    tsa_files = issue_tsa(ca, demo / "tsa", cn="Demo TSA")
    for i, (name, port) in enumerate(WITNESSES, 1):
        whome = demo / f"witness-{i}"
        vkey = el(whome, "witness", "init", "--name", name)
        el(whome, "witness", "follow", log_vkey)
        el(home, "witnesses", "add", "--url", f"http://127.0.0.1:{port}", "--vkey", vkey)
    el(home, "witnesses", "quorum", str(len(WITNESSES)))
    el(home, "tsa", "set", f"http://127.0.0.1:{TSA_PORT}/", "--roots", str(ca.cert))
    cfg = load_config(home)
    save_config(replace(cfg, seal=replace(cfg.seal, interval=SEAL_INTERVAL)))
    assert tsa_files.config.exists()

    procs = start_anchors(home)
    try:
        led = Ledger.open(home)
        tokens = {}
        for role, name in [
            ("rights_holder", "demo-rights-holder"),
            ("notary", "demo-notary"),
            ("admin", "demo-admin"),
            ("auditor", "demo-auditor"),
        ]:
            tokens[role] = create_account(led, role, name).token
        owner = led.store.query(
            "select account_id from accounts where name = ?", ("demo-rights-holder",)
        )[0]["account_id"]
        receipts = {}
        for key, title, text in [
            ("sealed", "Photo of the infringing shop sign 侵权店招照片", "shop sign photo\n"),
            ("certified", "Licence agreement 许可协议", "licence agreement v3\n"),
            ("revoked", "Draft manuscript 书稿初稿", "draft manuscript\n"),
        ]:
            path = _file(home, f"{key}.txt", text * 200)
            with path.open("rb") as f:
                receipts[key] = Services(led).deposits.deposit_file(
                    OPERATOR,
                    f,
                    title=title,
                    file_name=path.name,
                    media_type="text/plain",
                    owner=owner,
                )
        digest = hashlib.sha256(b"a trade secret that never leaves its owner").hexdigest()
        receipts["hash"] = Services(led).deposits.deposit_hash(
            OPERATOR, digest, title="Formula (digest only) 配方", owner=owner
        )
        led.seal()
        cert = issue_certificate(led, receipts["certified"].evidence_id, "demo-notary")
        gone = issue_certificate(led, receipts["revoked"].evidence_id, "demo-notary")
        revoke_certificate(led, gone.certificate_id, "issued for the wrong version", by=None)
        led.seal()
        holder = Actor(owner, "rights_holder", "demo-rights-holder")
        Services(led).certificates.request(
            holder, receipts["sealed"].evidence_id, "For the hearing on the shop sign case"
        )
        package_certificate(led, cert.certificate_id, home / "demo-package.zip")
        (home / "trust.json").write_text(json.dumps(trust_export(led), indent=2))
        led.close()
    finally:
        stop(procs)
    old = os.umask(0o077)
    try:
        lines = [f"{role} {token}" for role, token in tokens.items()]
        (home / "demo-tokens.txt").write_text("\n".join(lines) + "\n")
    finally:
        os.umask(old)
    print(f"demo ledger ready in {home}: certificate {cert.certificate_id}")


def run(home: Path, host: str, port: int) -> int:
    """Start the anchors, deposit one fresh item, serve until interrupted, stop all."""
    procs = start_anchors(home)
    try:
        led = Ledger.open(home)
        owner = led.store.query(
            "select account_id from accounts where name = ?", ("demo-rights-holder",)
        )[0]["account_id"]
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        Services(led).deposits.deposit_hash(
            OPERATOR,
            hashlib.sha256(stamp.encode()).hexdigest(),
            title=f"Deposited at {stamp}",
            owner=owner,
        )
        led.close()
        tokens = (home / "demo-tokens.txt").read_text().split()
        by_role = dict(zip(tokens[::2], tokens[1::2], strict=True))
        base = f"http://{host}:{port}"
        print(
            f"\nDemo console: {base}/  (witnesses on :{WITNESSES[0][1]} and :{WITNESSES[1][1]},"
            f" TSA on :{TSA_PORT}, all loopback)\n"
            f"Log in at {base}/login with one of these API tokens:\n"
            + "".join(f"  {role:14} {token}\n" for role, token in by_role.items())
            + f"Package to verify at {base}/verify: {home / 'demo-package.zip'}\n",
            flush=True,
        )
        serve = subprocess.Popen(
            [EL, "--home", str(home), "serve", "--host", host, "--port", str(port)]
        )
        signal.signal(signal.SIGTERM, lambda *_: serve.terminate())
        try:
            return serve.wait()
        except KeyboardInterrupt:
            serve.terminate()
            return serve.wait()
    finally:
        stop(procs)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup", help="create the demo ledger in HOME")
    s.add_argument("home", type=Path)
    r = sub.add_parser("run", help="serve the demo ledger with its witnesses and TSA")
    r.add_argument("home", type=Path)
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.command == "setup":
        setup(args.home)
        return 0
    return run(args.home, args.host, args.port)


if __name__ == "__main__":
    raise SystemExit(main())
