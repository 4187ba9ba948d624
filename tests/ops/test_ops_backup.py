"""Backup of a live ledger while a client deposits, restore, audit; PostgreSQL dumps."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from ops_support import BIN, fast_seal, serve
from pg_support import PG_ADMIN_URL, pg_url

from ledger.accounts import create_account
from ledger.core import Ledger
from ledger.services import Services

pytestmark = pytest.mark.slow


def el(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Depositor(threading.Thread):
    """Deposits without pause (hash-only, and a file every tenth) and keeps
    every acknowledged receipt with the time it was acknowledged."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.acked: list[tuple[float, dict[str, object]]] = []
        self.stop = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        h = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base, headers=h, timeout=30) as c:
            i = 0
            while not self.stop.is_set():
                i += 1
                if i % 10 == 0:
                    data = f"content {i} ".encode() * 8000  # above the inline limit
                    files = [("file", (f"f{i}.bin", data))]
                    r = c.post("/v1/evidence", files=files)
                else:
                    sha = hashlib.sha256(f"live {i}".encode()).hexdigest()
                    r = c.post("/v1/evidence", json={"sha256": sha, "title": f"private {i}"})
                if r.status_code != 201:
                    self.errors.append(r.text)
                    continue
                self.acked.append((time.monotonic(), r.json()["receipts"][0]))


def test_backup_while_depositing_restores_every_acknowledged_receipt(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Ledger.init(home, "backup.test/log") as ledger:
        token = create_account(ledger, "rights_holder", "alice").token
    fast_seal(home)
    dest, restored = tmp_path / "backup", tmp_path / "restored"
    with serve(home, "--workers", "2") as srv:
        client = Depositor(srv.base, token)
        client.start()
        time.sleep(2)
        started = time.monotonic()
        r = el(home, "backup", str(dest))
        finished = time.monotonic()
        time.sleep(0.5)
        client.stop.set()
        client.join(30)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no progress bar when stderr is not a terminal
    summary = json.loads(r.stdout)
    assert not client.errors, client.errors[:3]
    before = [rc for t, rc in client.acked if t < started]
    during = [rc for t, rc in client.acked if started <= t <= finished]
    assert len(before) > 20 and during, (len(before), len(during))

    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["format"] == "evidence-ledger-backup/1"
    assert summary["log_size"] == manifest["log_size"]
    modes = {f["path"]: f["mode"] for f in manifest["files"]}
    assert modes["keys/log.key"] == "0600" and modes["ledger.db"] == "0600"
    assert (dest / "keys" / "log.key").stat().st_mode & 0o777 == 0o600
    assert any(p.startswith("blobs/") for p in modes)
    for f in manifest["files"]:
        data = (dest / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"], f["path"]

    r = el(restored, "restore", str(dest))
    assert r.returncode == 0, r.stderr
    assert (restored / "keys" / "log.key").stat().st_mode & 0o777 == 0o600
    r = el(restored, "audit", "--workers", "0")
    assert r.returncode == 0, r.stderr
    audit = json.loads(r.stdout)
    assert audit["ok"] and audit["entries"] == manifest["log_size"]
    assert audit["files"] >= 1

    with Ledger.open(restored) as ledger:
        services = Services(ledger)
        size = ledger.store.size()
        for receipt in before:  # every receipt acknowledged before the backup began
            assert int(receipt["index"]) < size  # type: ignore[call-overload]
            record = services.reads.evidence(str(receipt["evidence_id"]))
            assert record is not None, receipt
        for _, receipt in client.acked:  # and the later ones it holds are the same entries
            if int(receipt["index"]) < size:  # type: ignore[call-overload]
                assert services.reads.evidence(str(receipt["evidence_id"])) is not None
        services.close()
    with serve(restored, "--no-sealer") as srv:
        assert httpx.get(srv.base + "/checkpoint").text == manifest["checkpoint"]["note"]


def test_restore_refuses_a_damaged_backup_or_a_used_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Ledger.init(home, "backup.test/log").close()
    dest = tmp_path / "backup"
    assert el(home, "backup", str(dest)).returncode == 0
    r = el(home, "backup", str(dest))
    assert r.returncode == 1 and "not an empty directory" in r.stderr
    r = el(home, "backup", str(home / "backups" / "one"))
    assert r.returncode == 1 and "inside the ledger home" in r.stderr
    r = el(home, "restore", str(dest))  # home holds a ledger
    assert r.returncode == 1 and "not an empty directory" in r.stderr
    key = dest / "keys" / "log.key"
    key.write_bytes(key.read_bytes()[:-2] + b"x\n")
    target = tmp_path / "target"
    r = el(target, "restore", str(dest))
    assert r.returncode == 1
    assert r.stderr.strip() == (
        "error: restore: keys/log.key does not match its digest in the manifest"
    )
    assert not target.exists() or not any(target.iterdir())
    (dest / "manifest.json").unlink()
    r = el(target, "restore", str(dest))
    assert r.returncode == 1 and "no manifest.json" in r.stderr


@pytest.mark.postgres
def test_postgresql_pg_dump_and_pg_restore_with_blobs_in_the_database(
    tmp_path: Path, pg_schema: str
) -> None:
    """The documented path (docs/operations.md): the home with ``backup``, the
    database (events and blobs) with ``pg_dump``; the schema lost; both back."""
    home, url = tmp_path / "home", pg_url(pg_schema)
    r = el(home, "init", "--origin", "pg.backup.test/log", "--database-url", url)
    assert r.returncode == 0, r.stderr
    document = b"a contract kept in PostgreSQL\n" * 1000
    (tmp_path / "contract.txt").write_bytes(document)
    r = el(home, "deposit", str(tmp_path / "contract.txt"), "--title", "secret title")
    assert r.returncode == 0, r.stderr
    sha = json.loads(r.stdout)["sha256"]
    assert el(home, "seal").returncode == 0
    checkpoint = el(home, "seal").stdout
    dest, dump = tmp_path / "backup", tmp_path / "ledger.pgdump"
    r = el(home, "backup", str(dest))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["database"] == "postgresql"
    subprocess.run(
        ["pg_dump", "--format=custom", f"--schema={pg_schema}", f"--file={dump}", PG_ADMIN_URL],
        check=True,
        timeout=120,
    )
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"drop schema {pg_schema} cascade")  # the database is lost
    subprocess.run(
        ["pg_restore", "--exit-on-error", f"--dbname={PG_ADMIN_URL}", str(dump)],
        check=True,
        timeout=120,
    )
    restored = tmp_path / "restored"
    r = el(restored, "restore", str(dest))
    assert r.returncode == 0, r.stderr
    r = el(restored, "audit", "--workers", "0")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["files"] == 1
    assert el(restored, "seal").stdout == checkpoint
    with Ledger.open(restored) as ledger:
        assert ledger.config.blobs == "postgresql"
        with ledger.blobs.open(sha) as f:
            assert f.read() == document
