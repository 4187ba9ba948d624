"""Progress bars: on stderr under a terminal (rate and time left), absent when piped."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from ops_support import BIN, VERIFY

from ledger.core import Ledger

pytestmark = pytest.mark.slow

N = 3000
# tqdm's meter: "... 1500/3000 [00:01<00:01, 1234.5 entries/s]": done/total, elapsed<left, rate.
METER = re.compile(r"[\d.]+\w?/[\d.]+\w? \[\d\d:\d\d<\d\d:\d\d, +[\d.]+ ?\w* ?\w+/s\]")


def _under_pty(argv: list[str]) -> tuple[int, str, bytes]:
    """Run ``argv`` with stderr on a pseudo-terminal; its exit status, stderr, stdout."""
    master, slave = pty.openpty()
    # stdout to a file: a pipe could fill up while the terminal is being read.
    with tempfile.TemporaryFile() as out_file:
        proc = subprocess.Popen(argv, stdout=out_file, stderr=slave)
        os.close(slave)
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            err += chunk
        os.close(master)
        status = proc.wait(timeout=120)
        out_file.seek(0)
        out = out_file.read()
    return status, err.decode("utf-8", "replace"), out


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("progress")
    h = base / "home"
    Ledger.init(h, "progress.test/log").close()
    hashes = base / "hashes.txt"
    hashes.write_text("".join(f"{i:064x}\n" for i in range(1, N + 1)))
    return h


def _commands(home: Path) -> dict[str, list[str]]:
    base = home.parent
    el = [str(BIN), "--home", str(home)]
    return {
        "deposit": [*el, "deposit", "--hashes-from", str(base / "hashes.txt")],
        "audit": [*el, "audit", "--workers", "0"],
        "rebuild": [*el, "rebuild"],
        "export": [*el, "export", str(base / "export")],
        "backup": [*el, "backup", str(base / "backup")],
        "log": [str(VERIFY), "log", str(base / "export"), "--vkey", str(base / "log.vkey")],
    }


ORDER = ["deposit", "audit", "rebuild", "export", "backup", "log"]


@pytest.mark.parametrize("name", ORDER)
def test_progress_on_a_terminal_only(home: Path, name: str) -> None:
    base = home.parent
    if name == "audit":
        subprocess.run([str(BIN), "--home", str(home), "seal"], check=True, capture_output=True)
        vkey = subprocess.run(
            [str(BIN), "--home", str(home), "vkey"], check=True, capture_output=True, text=True
        ).stdout
        (base / "log.vkey").write_text(vkey)
    argv = _commands(home)[name]
    for d in ("export", "backup"):  # each run writes a fresh one
        if name == d and (base / d).exists():
            subprocess.run(["rm", "-rf", str(base / d)], check=True)
    status, err, out = _under_pty(argv)
    assert status == 0, err
    assert METER.search(err), err[-500:]
    assert b"\r" not in out and b"%|" not in out  # results on stdout stay clean

    if name == "deposit":  # again, other hashes: the test's log keeps its size N
        return
    if name in ("export", "backup"):
        subprocess.run(["rm", "-rf", str(base / name)], check=True)
    piped = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert not METER.search(piped.stderr) and "%|" not in piped.stderr

    if name in ("export", "backup"):
        subprocess.run(["rm", "-rf", str(base / name)], check=True)
    status, err, _ = _under_pty([*argv, "--no-progress"])
    assert status == 0, err
    assert not METER.search(err) and "%|" not in err, err[-500:]
