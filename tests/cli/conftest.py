"""Fixtures for the ``evidence-ledger`` CLI tests (helpers live in ``cli_support``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_support import Home, init_home, sha


@pytest.fixture
def ledger_home(tmp_path: Path) -> Home:
    """A freshly initialised, empty ledger home."""
    return init_home(tmp_path / "home")


@pytest.fixture
def filled_home(tmp_path: Path) -> Home:
    """A ledger with 20 hash deposits, sealed."""
    h = init_home(tmp_path / "home")
    hashes = tmp_path / "hashes.txt"
    hashes.write_text("".join(sha(i) + "\n" for i in range(20)))
    r = h.run("deposit", "--hashes-from", str(hashes))
    assert r.exit_code == 0, r.stderr
    r = h.run("seal")
    assert r.exit_code == 0, r.stderr
    return h


@pytest.fixture(scope="module")
def big_hashes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,000 distinct SHA-256 digests, one per line."""
    path = tmp_path_factory.mktemp("big") / "hashes.txt"
    with path.open("w") as f:
        for i in range(200_000):
            f.write(sha(i) + "\n")
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVIDENCE_LEDGER_HOME", raising=False)
    assert "EVIDENCE_LEDGER_HOME" not in os.environ
