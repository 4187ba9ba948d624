"""End to end: ``evidence-ledger serve`` as a real process, deposits through the CLI,
the background sealer publishes, a plain HTTP client fetches and verifies."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_support import ORIGIN, sha

from verifier.checkpoint import open_checkpoint
from verifier.merkle import leaf_hash, root_from_leaf_hashes
from verifier.note import VerifierKey
from verifier.tiles import decode_bundle, split_hashes

pytestmark = pytest.mark.slow

EL = str(Path(sys.executable).with_name("evidence-ledger"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _el(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EL, "--home", str(home), *args], capture_output=True, text=True, timeout=60, check=False
    )


def _wait_for_size(base: str, vkey: VerifierKey, size: int, timeout: float) -> tuple[int, bytes]:
    """Poll /checkpoint until it covers ``size`` entries; return (size, root)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base}/checkpoint", timeout=5)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert r.status_code == 200, r.text
        cp = open_checkpoint(r.content, [vkey], ORIGIN).checkpoint
        last = cp.size
        if cp.size >= size:
            return cp.size, cp.root
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of size >= {size} within {timeout}s (last: {last})")


def test_serve_seals_in_background_and_serves_tiles(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = _el(home, "init", "--origin", ORIGIN)
    assert r.returncode == 0, r.stderr
    vkey = VerifierKey.from_text(r.stdout.strip())
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen(
        [EL, "--home", str(home), "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert _wait_for_size(base, vkey, 0, timeout=20)[0] == 0
        # Deposits from another process, while the server runs.
        r = _el(home, "deposit", "--sha256", sha("served"))
        assert r.returncode == 0, r.stderr
        receipt = json.loads(r.stdout)
        hashes = tmp_path / "hashes.txt"
        hashes.write_text("".join(f"{sha(i)}\n" for i in range(299)))
        r = _el(home, "deposit", "--hashes-from", str(hashes))
        assert r.returncode == 0, r.stderr
        receipts = [receipt] + [json.loads(x) for x in r.stdout.splitlines()]
        assert [x["index"] for x in receipts] == list(range(300))
        # The background sealer (seal.interval, 1 s by default) publishes them.
        size, root = _wait_for_size(base, vkey, 300, timeout=20)
        assert size == 300
        leaf_hashes = [bytes.fromhex(x["leaf_hash"]) for x in receipts]
        assert root_from_leaf_hashes(leaf_hashes) == root

        full = httpx.get(f"{base}/tile/0/000", timeout=5)
        assert full.status_code == 200
        assert "immutable" in full.headers["cache-control"]
        assert split_hashes(full.content) == leaf_hashes[:256]
        part = httpx.get(f"{base}/tile/0/001.p/44", timeout=5)
        assert part.status_code == 200
        assert split_hashes(part.content) == leaf_hashes[256:]
        bundle = httpx.get(f"{base}/tile/entries/000", timeout=5)
        assert bundle.status_code == 200
        leaves = decode_bundle(bundle.content, 256)
        assert leaf_hash(leaves[0]).hex() == receipt["leaf_hash"]
        missing = httpx.get(f"{base}/tile/0/000.p/0", timeout=5)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise
        log.seek(0)
        output = log.read()
        log.close()
    # Uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert code in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output, output
    # The ledger the server sealed audits clean.
    r = _el(home, "audit")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["entries"] == 300


def test_serve_refuses_a_missing_home(tmp_path: Path) -> None:
    r = subprocess.run(
        [EL, "--home", str(tmp_path / "none"), "serve", "--port", str(_free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
