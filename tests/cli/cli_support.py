"""Helpers and fixture builders for the ``evidence-ledger`` CLI tests.

There is deliberately no ``conftest.py`` here: conftest modules outside a
package all import as ``conftest``, so one here would shadow the root
``tests/conftest.py`` for any test that does ``from conftest import ...``.

Most tests drive the click group in-process with :class:`click.testing.CliRunner`
(fast); the ones where process behaviour matters (exit codes seen by a shell,
tracebacks on stderr, SIGKILL) run the installed console script as a real
subprocess.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from ledger.cli import cli

ORIGIN = "cli.test/log"
EL = Path(sys.executable).with_name("evidence-ledger")
if not EL.exists():  # an installed venv always has it; fall back to PATH
    EL = Path(shutil.which("evidence-ledger") or EL)


@dataclass(frozen=True)
class Home:
    """An initialised ledger home and the verifier key ``init`` printed."""

    path: Path
    vkey: str

    def run(self, *args: str) -> Result:
        """Run ``evidence-ledger --home HOME ARGS`` in-process."""
        return CliRunner().invoke(cli, ["--home", str(self.path), *args])

    def proc(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``evidence-ledger --home HOME ARGS`` as a real subprocess."""
        return run_el(["--home", str(self.path), *args], timeout=timeout)

    def size(self) -> int:
        r = self.run("stats")
        assert r.exit_code == 0, r.stderr
        return int(json.loads(r.stdout)["size"])

    def assert_audits_clean(self) -> dict[str, Any]:
        r = self.run("audit")
        assert r.exit_code == 0, r.stderr
        report = json.loads(r.stdout)
        assert report["ok"] is True
        return report


def run_el(args: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EL), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def sha(i: int | str) -> str:
    """A deterministic, distinct SHA-256 hex digest per ``i``."""
    return hashlib.sha256(f"evidence {i}".encode()).hexdigest()


def receipts(stdout: str) -> list[dict[str, Any]]:
    """Parse one JSON receipt per line."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def assert_one_line_error(stderr: str, *needles: str) -> str:
    """stderr is exactly one ``error: ...`` line (no traceback); return it."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def init_home(path: Path, *extra: str) -> Home:
    r = CliRunner().invoke(cli, ["--home", str(path), "init", "--origin", ORIGIN, *extra])
    assert r.exit_code == 0, r.stderr
    return Home(path, r.stdout.strip())


def filled_home_at(path: Path, n: int = 20) -> Home:
    """A ledger at ``path`` with ``n`` hash deposits (``sha(0)``..), sealed."""
    h = init_home(path)
    hashes = path.parent / f"{path.name}-hashes.txt"
    hashes.write_text("".join(sha(i) + "\n" for i in range(n)))
    r = h.run("deposit", "--hashes-from", str(hashes))
    assert r.exit_code == 0, r.stderr
    r = h.run("seal")
    assert r.exit_code == 0, r.stderr
    return h
