"""Every module of ledger/, api/ and verifier/ imports on its own, in a fresh
interpreter (no module depends on another having been imported first), and
verifier/ never imports ledger/ or api/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "api", "verifier")


def _modules() -> list[str]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "pyproject" in path.name:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append(".".join(parts))
    return out


MODULES = _modules()


def test_modules_found() -> None:
    assert {"ledger.cli.certs", "ledger.cli.capture", "ledger.services", "api.app"} <= set(MODULES)


@pytest.mark.parametrize("chunk", range(4))
def test_each_module_imports_alone(chunk: int) -> None:
    """One fresh interpreter per module (batched in a driver for speed)."""
    mine = MODULES[chunk::4]
    driver = (
        "import subprocess, sys\n"
        "bad = []\n"
        "for m in sys.argv[1:]:\n"
        "    r = subprocess.run([sys.executable, '-c', f'import {m}'], capture_output=True,"
        " text=True)\n"
        "    if r.returncode:\n"
        "        bad.append(m + ': ' + (r.stderr.strip().splitlines() or ['?'])[-1])\n"
        "print('\\n'.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", driver, *mine], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_verifier_stands_alone() -> None:
    """Importing every verifier module loads nothing from ledger/ or api/."""
    verifier = [m for m in MODULES if m.split(".")[0] == "verifier"]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in verifier)
        + "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('ledger', 'api'))\n"
        + "print(leaked)\nsys.exit(1 if leaked else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
