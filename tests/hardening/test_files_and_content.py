"""What other users of the machine can read, and what a stored file can do in a browser.

The ledger home is 0700; its configuration, database (with its -wal and -shm
files) and keys are 0600, as made by ``init`` and as left by a running
server; an older home with open modes is closed up when opened; an
``export --private`` writes the private bodies 0600 in a 0700 directory. A
deposited HTML file is served as a sandboxed download that no browser may
sniff into a page of this origin.
"""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from hardening_support import BIN, ORIGIN, make_home, serving

SLOW = pytest.mark.slow
HTML = b"<!doctype html><script>fetch('/v1/evidence').then(r => r.text())</script>"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _el(home: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(BIN / "evidence-ledger"), "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _assert_private(home: Path, *, open_db: bool = False) -> None:
    """``open_db``: a process has the database open, so its -wal and -shm exist
    (SQLite removes them when the last connection closes)."""
    assert _mode(home) == 0o700
    assert _mode(home / "keys") == 0o700
    names = ["config.json", "ledger.db"]
    if open_db:
        names += ["ledger.db-wal", "ledger.db-shm"]
    for name in names:
        assert _mode(home / name) == 0o600, name
    keys = [p for p in (home / "keys").rglob("*") if p.is_file() and p.suffix == ".key"]
    assert keys and all(_mode(k) == 0o600 for k in keys)


@SLOW
def test_home_database_and_keys_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _el(home, "init", "--origin", ORIGIN)
    _el(home, "account", "create", "--role", "notary", "--name", "n")
    _el(home, "deposit", "--sha256", "ab" * 32)
    _assert_private(home)
    with serving(home, tmp_path):
        _assert_private(home, open_db=True)  # the server's own writes, -wal and -shm too


@SLOW
def test_an_open_home_is_closed_up_when_opened(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _el(home, "init", "--origin", ORIGIN)
    _el(home, "deposit", "--sha256", "cd" * 32)
    home.chmod(0o755)
    (home / "keys").chmod(0o755)
    for name in ("config.json", "ledger.db"):
        (home / name).chmod(0o644)
    _el(home, "stats")
    _assert_private(home)


@SLOW
def test_private_export_is_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _el(home, "init", "--origin", ORIGIN)
    _el(home, "deposit", "--sha256", "ef" * 32, "--title", "a private title")
    _el(home, "seal")
    out = tmp_path / "export"
    _el(home, "export", str(out), "--private")
    private = list((out / "private").iterdir())
    assert private and _mode(out / "private") == 0o700
    assert all(_mode(p) == 0o600 for p in private)
    assert "a private title" in private[0].read_text()
    # The public tiles beside them are for any web server to serve.
    assert _mode(out / "checkpoint") & 0o044 == 0o044


@SLOW
def test_stored_html_is_served_as_a_sandboxed_download(tmp_path: Path) -> None:
    home = tmp_path / "home"
    tokens = make_home(home)
    auth = {"Authorization": f"Bearer {tokens['rights_holder']}"}
    with serving(home, tmp_path) as srv:
        r = httpx.post(
            srv.base + "/v1/evidence",
            headers=auth,
            files={"file": ("page.html", HTML, "text/html")},
        )
        assert r.status_code == 201, r.text
        evidence_id = r.json()["receipts"][0]["evidence_id"]
        api = httpx.get(f"{srv.base}/v1/evidence/{evidence_id}/content", headers=auth)
        assert api.content == HTML
        with httpx.Client(base_url=srv.base) as web:
            form = web.get("/login")
            match = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert match is not None
            login = web.post(
                "/login",
                data={"token": tokens["rights_holder"], "csrf": match.group(1)},
                headers={"Origin": srv.base},
            )
            assert login.status_code == 303, login.text
            page = web.get(f"/console/evidence/{evidence_id}/content")
            assert page.status_code == 200 and page.content == HTML
    for response in (api, page):
        assert response.headers["x-content-type-options"] == "nosniff"
        policy = [d.strip() for d in response.headers["content-security-policy"].split(";")]
        assert "sandbox" in policy and "default-src 'none'" in policy
        assert response.headers["content-disposition"].startswith("attachment")
