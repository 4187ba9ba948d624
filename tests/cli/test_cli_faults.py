"""SIGKILL during a stream of appends loses no acknowledged append.

A receipt line printed by ``evidence-ledger deposit`` is an acknowledgement:
the entry it names must be in the log, with the same leaf hash, however the
process dies afterwards. After each kill the ledger must reopen, seal and
audit clean, with contiguous indices.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from cli_support import EL, Home, init_home, sha

from ledger.core import Ledger
from verifier.merkle import leaf_hash
from verifier.record import decode_record

pytestmark = pytest.mark.slow


@pytest.fixture
def ledger_home(tmp_path: Path) -> Home:
    """A freshly initialised, empty ledger home."""
    return init_home(tmp_path / "home")


@pytest.fixture(scope="module")
def big_hashes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,000 distinct SHA-256 digests, one per line."""
    path = tmp_path_factory.mktemp("big") / "hashes.txt"
    with path.open("w") as f:
        for i in range(200_000):
            f.write(sha(i) + "\n")
    return path


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_after(
    p: subprocess.Popen[bytes], lines: int = 0, seconds: float | None = None
) -> list[dict[str, Any]]:
    """Read receipts until ``lines`` arrived (or ``seconds`` passed), SIGKILL the
    process, then drain the pipe; return every complete line it printed."""
    assert p.stdout is not None
    out: list[bytes] = []
    if seconds is not None:
        time.sleep(seconds)
    else:
        while len(out) < lines:
            line = p.stdout.readline()
            assert line, f"process ended before {lines} receipts: {p.stderr.read()!r}"  # type: ignore[union-attr]
            out.append(line)
    assert p.poll() is None, "the process finished before it could be killed"
    p.send_signal(signal.SIGKILL)
    assert p.wait(timeout=30) == -signal.SIGKILL
    rest = p.stdout.read()
    out += rest.splitlines(keepends=True)
    p.stdout.close()
    p.stderr.close()  # type: ignore[union-attr]
    # A torn last line was never a complete acknowledgement.
    return [json.loads(x) for x in out if x.endswith(b"\n")]


def _check_acknowledged(home: Home, acked: list[dict[str, Any]]) -> int:
    """Every acknowledged receipt is in the log; indices are contiguous. Return size."""
    with Ledger.open(home.path) as led:
        size = led.store.size()
        entries = led.store.entries(0, size)
    assert [e[0] for e in entries] == list(range(size))
    for r in acked:
        idx, _type, t, leaf, stored = entries[r["index"]]
        assert leaf_hash(leaf).hex() == stored.hex() == r["leaf_hash"]
        rec = decode_record(leaf)
        assert (rec.index, rec.time, rec.body["evidence_id"]) == (idx, r["time"], r["evidence_id"])
        assert t == r["time"]
    return size


def _seal_and_audit(home: Home, size: int) -> None:
    r = home.proc("seal")
    assert r.returncode == 0, r.stderr
    r = home.proc("audit")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] is True
    assert report["entries"] == size


def test_sigkill_during_bulk_deposit_loses_no_acknowledged_entry(
    ledger_home: Home, big_hashes: Path
) -> None:
    cmd = [str(EL), "--home", str(ledger_home.path), "deposit", "--hashes-from", str(big_hashes)]
    total_acked = 0
    # Three different moments: right after the first receipt, deep into the
    # stream, and at a fixed time regardless of output (maybe mid-validation,
    # maybe mid-commit).
    for moment in ({"lines": 1}, {"lines": 25_000}, {"seconds": 1.5}):
        before = ledger_home.size()
        acked = _kill_after(_start(cmd), **moment)  # type: ignore[arg-type]
        if "lines" in moment:
            assert len(acked) >= moment["lines"]
        if acked:
            assert acked[0]["index"] == before
            assert [r["index"] for r in acked] == list(range(before, before + len(acked)))
        total_acked += len(acked)
        size = _check_acknowledged(ledger_home, acked)
        assert size >= before + len(acked)
        # Restart: seal what the dead process appended; everything must verify.
        _seal_and_audit(ledger_home, size)
    assert total_acked > 25_000


LOOP = textwrap.dedent(
    """
    import hashlib, json, sys, threading
    from pathlib import Path
    from ledger.core import Ledger
    from ledger.services import OPERATOR, Services

    led = Ledger.open(Path(sys.argv[1]))
    deposits = Services(led).deposits
    lock = threading.Lock()

    def work(t):
        i = 0
        while True:
            digest = hashlib.sha256(f"{t}-{i}".encode()).hexdigest()
            receipt = deposits.deposit_hash(OPERATOR, digest)
            line = json.dumps(receipt.to_json()) + "\\n"
            with lock:
                sys.stdout.write(line)
                sys.stdout.flush()
            i += 1

    for t in range(4):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    threading.Event().wait()
    """
)


def test_sigkill_during_concurrent_single_deposits(ledger_home: Home) -> None:
    """Four threads depositing one hash at a time (group commits), killed twice."""
    for lines in (50, 400):
        before = ledger_home.size()
        p = _start([sys.executable, "-c", LOOP, str(ledger_home.path)])
        acked = _kill_after(p, lines=lines)
        assert len(acked) >= lines
        assert min(r["index"] for r in acked) >= before
        assert len({r["index"] for r in acked}) == len(acked)
        size = _check_acknowledged(ledger_home, acked)
        _seal_and_audit(ledger_home, size)


def _checkpoints(home: Home) -> int:
    conn = sqlite3.connect((home.path / "ledger.db").resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return int(conn.execute("select count(*) from checkpoints").fetchone()[0])
    finally:
        conn.close()


def test_sigkill_during_seal(ledger_home: Home, big_hashes: Path, tmp_path: Path) -> None:
    """A sealer killed between (or inside) its batch transactions leaves a valid log."""
    n = 5_000
    subset = tmp_path / "subset.txt"
    with big_hashes.open() as src:
        subset.write_text("".join(next(src) for _ in range(n)))
    r = ledger_home.proc("deposit", "--hashes-from", str(subset))
    assert r.returncode == 0, r.stderr
    # 500 checkpoints of 10 entries each: kill once a few dozen are published.
    p = _start([str(EL), "--home", str(ledger_home.path), "seal", "--batch-max", "10"])
    deadline = time.monotonic() + 60
    while _checkpoints(ledger_home) < 40 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert p.poll() is None, "seal finished before it could be killed"
    p.send_signal(signal.SIGKILL)
    assert p.wait(timeout=30) == -signal.SIGKILL
    assert p.stdout is not None
    assert p.stderr is not None
    p.stdout.close()
    p.stderr.close()
    stats = json.loads(ledger_home.proc("stats").stdout)
    assert stats["size"] == n
    assert 0 < stats["checkpoint_size"] < n
    assert stats["checkpoint_size"] % 10 == 0
    # Whatever was published so far verifies, before any repair.
    audit = ledger_home.proc("audit")
    assert audit.returncode == 0, audit.stderr
    _seal_and_audit(ledger_home, n)
