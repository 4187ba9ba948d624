"""A full disk, for real: every deposit path answers a 507 problem and keeps nothing.

The ledger's home (SQLite database and ``blobs/``) sits on a small tmpfs,
or, on PostgreSQL, its tables sit in a tablespace on one; a filler then
takes every free byte. The real service (``evidence-ledger serve``) is
asked for hash deposits (JSON, with and without an Idempotency-Key),
multipart uploads (small ones, stored with their event, and large ones,
streamed to the blob store) and a certificate: each answers an RFC 9457
problem with status 507 (no 500, no traceback in the server's log), and
once the filler is gone the log, the blob store and the audit show that
nothing was half-written. The command line says it in one line. The
public verification (``POST /v1/verify``), which spools its uploads to
temporary files, answers 507 too when their disk is full, and keeps none.

Mounting needs root; without it the tests are skipped (they fail under CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pg_support import PG_ADMIN_URL

from ledger.accounts import create_account
from ledger.core import Ledger
from ledger.services import OPERATOR, Services

BIN = Path(sys.executable).parent / "evidence-ledger"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def disk() -> Iterator[Path]:
    """A 24 MiB tmpfs, unmounted afterwards. Its mount point is outside
    pytest's private (0700) directory, so the PostgreSQL server's own user
    can reach a tablespace on it."""
    mnt = Path(tempfile.mkdtemp(prefix="ledger-disk-"))
    mnt.chmod(0o755)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m,mode=0755", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        reason = f"cannot mount a tmpfs (needs root): {r.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set: the disk-full tests must run)", pytrace=False)
        mnt.rmdir()
        pytest.skip(reason)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        mnt.rmdir()


def fill_file(path: Path) -> None:
    """Write ``path`` until the file system refuses another byte."""
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            block = b"\0" * size
            try:
                while True:
                    f.write(block)
            except OSError:
                continue


class Tablespace:
    """A PostgreSQL tablespace on the tmpfs, for one test schema's tables."""

    def __init__(self, mnt: Path) -> None:
        self.name = f"tiny_{uuid.uuid4().hex[:12]}"
        self.dir = mnt / "pg"
        self.dir.mkdir()
        shutil.chown(self.dir, "postgres", "postgres")
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"create tablespace {self.name} location '{self.dir}'")

    def fill(self) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"create table {self.name}_filler (b bytea) tablespace {self.name}")
            conn.execute(f"alter table {self.name}_filler alter column b set storage external")
            for size in (1 << 20, 1 << 14, 1 << 10, 1):
                try:
                    while True:
                        conn.execute(
                            f"insert into {self.name}_filler values (%s)",
                            (os.urandom(size),),
                        )
                except psycopg.errors.DiskFull:
                    continue

    def free(self) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"drop table if exists {self.name}_filler")

    def drop(self, schema: str) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"drop table if exists {self.name}_filler")
            conn.execute(f"drop schema if exists {schema} cascade")
            conn.execute(f"drop tablespace if exists {self.name}")


def _serve(home: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN), "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/checkpoint", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("server did not start: " + proc.communicate()[1].decode()[-2000:])


def _insufficient(r: httpx.Response) -> bool:
    """True for a 507 problem; False for a deposit that still fit (201)."""
    if r.status_code == 201:
        return False
    assert r.status_code == 507, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == 507 and body["title"] == "Insufficient Storage"
    assert "disk is full" in body["detail"]
    return True


def _blob_state(ledger: Ledger) -> tuple[set[str], int]:
    """Committed blobs (by SHA-256) and pieces of writes that were never
    committed (staged files, upload rows, chunks that no blob names)."""
    if ledger.blobs.kind == "fs":
        root = ledger.config.blob_dir
        files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
        staged = [p for p in files if p.parent.name == "tmp"]
        return {p.name for p in files if p not in staged}, len(staged)
    with psycopg.connect(ledger.config.database_url, autocommit=True) as conn:
        blobs = {str(r[0]) for r in conn.execute("select sha256 from blobs")}
        loose = conn.execute(
            "select (select count(*) from blob_uploads) + (select count(*) from blob_chunks c "
            "where not exists (select 1 from blobs b where b.upload_id = c.upload_id))"
        ).fetchone()
    return blobs, int(loose[0]) if loose else 0


def _until_full(attempt: Any, tries: int = 400) -> int:
    """Repeat ``attempt`` until it answers 507; how many deposits still fit.

    A database page with room left can take a small row on a full disk, so
    a few small deposits may succeed before the refusal: each is whole."""
    for n in range(tries):
        if _insufficient(attempt()):
            return n
    pytest.fail(f"no 507 after {tries} deposits on a full disk")


def _attempt_every_deposit(base: str, tokens: dict[str, str], sealed_id: str) -> None:
    holder = {"Authorization": f"Bearer {tokens['alice']}"}
    notary = {"Authorization": f"Bearer {tokens['bob']}"}
    with httpx.Client(base_url=base, timeout=60) as c:

        def hashed() -> httpx.Response:
            return c.post("/v1/evidence", json={"sha256": os.urandom(32).hex()}, headers=holder)

        def keyed() -> httpx.Response:
            key = {**holder, "Idempotency-Key": uuid.uuid4().hex}
            return c.post("/v1/evidence", json={"sha256": os.urandom(32).hex()}, headers=key)

        def small() -> httpx.Response:
            files = [("file", ("small.txt", os.urandom(2000)))]
            return c.post("/v1/evidence", files=files, headers=holder)

        def large() -> httpx.Response:
            files = [("file", ("large.bin", os.urandom(3_000_000)))]
            return c.post("/v1/evidence", data={"title": "large"}, files=files, headers=holder)

        def two() -> httpx.Response:
            files = [
                ("file", ("a.bin", os.urandom(200_000))),
                ("file", ("b.bin", os.urandom(2_000_000))),
            ]
            key = {**holder, "Idempotency-Key": uuid.uuid4().hex}
            return c.post("/v1/evidence", files=files, headers=key)

        def certificate() -> httpx.Response:
            return c.post("/v1/certificates", json={"evidence_id": sealed_id}, headers=notary)

        for attempt in (hashed, keyed, small, large, two, certificate):
            _until_full(attempt)


def _prepare(home: Path, url: str | None) -> tuple[dict[str, str], str]:
    with Ledger.init(home, "full.test/log", url) as ledger:
        tokens = {
            "alice": create_account(ledger, "rights_holder", "alice").token,
            "bob": create_account(ledger, "notary", "bob").token,
        }
        alice = ledger.store.query("select account_id from accounts where name = 'alice'")[0]
        receipt = Services(ledger).deposits.deposit_hash(
            OPERATOR, "ef" * 32, title="sealed", owner=str(alice["account_id"])
        )
        ledger.seal()
    cfg = json.loads((home / "config.json").read_text())
    cfg["seal"]["interval"] = 0.2
    (home / "config.json").write_text(json.dumps(cfg))
    return tokens, receipt.evidence_id


def _check_nothing_half_written(home: Path, before: set[str]) -> None:
    """Every stored file belongs to the log (or was there before), no write is
    left staged, and the audit re-verifies the whole log."""
    with Ledger.open(home) as ledger:
        blobs, loose = _blob_state(ledger)
        referenced = {str(r["sha256"]) for r in ledger.store.query("select sha256 from evidence")}
    assert loose == 0
    assert blobs - before <= referenced
    audit = subprocess.run([str(BIN), "--home", str(home), "audit"], capture_output=True, text=True)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def _after(proc: subprocess.Popen[bytes], base: str, tokens: dict[str, str]) -> None:
    """The service works again once there is room, and its log holds no traceback."""
    holder = {"Authorization": f"Bearer {tokens['alice']}"}
    try:
        r = httpx.post(
            base + "/v1/evidence",
            files=[("file", ("again.bin", os.urandom(500_000)))],
            headers=holder,
            timeout=60,
        )
        assert r.status_code == 201, r.text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode()[-4000:]


def test_a_full_disk_under_sqlite_and_blob_files(disk: Path) -> None:
    home = disk / "home"
    tokens, sealed_id = _prepare(home, None)
    proc, base = _serve(home)
    with Ledger.open(home) as ledger:
        before = _blob_state(ledger)[0]
    filler = disk / "filler"
    try:
        fill_file(filler)
        _attempt_every_deposit(base, tokens, sealed_id)
        # The command line: one line, exit 1, nothing stored.
        big = disk / "big.bin"
        filler.unlink()
        big.write_bytes(os.urandom(4_000_000))
        fill_file(filler)
        r = subprocess.run(
            [str(BIN), "--home", str(home), "deposit", str(big)], capture_output=True, text=True
        )
        assert r.returncode == 1, r.stdout + r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "disk is full" in lines[0]
        r = subprocess.run(
            [str(BIN), "--home", str(home), "deposit", "--sha256", "12" * 32],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 1 and "disk is full" in r.stderr, r.stdout + r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    except BaseException:
        proc.kill()
        raise
    finally:
        filler.unlink(missing_ok=True)
    _check_nothing_half_written(home, before)
    _after(proc, base, tokens)


@pytest.mark.postgres
def test_a_full_tablespace_under_postgresql(disk: Path, pg_schema: str) -> None:
    """PostgreSQL answers SQLSTATE 53100 (disk_full) when a table cannot grow:
    the log's tables and the blob rows are in a tablespace on the tmpfs."""
    space = Tablespace(disk)
    try:
        url = (
            f"{PG_ADMIN_URL}?options=-csearch_path%3D{pg_schema}"
            f"%20-cdefault_tablespace%3D{space.name}"
        )
        home = disk / "home"
        tokens, sealed_id = _prepare(home, url)
        proc, base = _serve(home)
        with Ledger.open(home) as ledger:
            before = _blob_state(ledger)[0]
        try:
            space.fill()
            _attempt_every_deposit(base, tokens, sealed_id)
        except BaseException:
            proc.kill()
            raise
        finally:
            space.free()
        _check_nothing_half_written(home, before)
        _after(proc, base, tokens)
    finally:
        space.drop(pg_schema)


def test_verify_with_a_full_temporary_disk(disk: Path, tmp_path: Path) -> None:
    """The ledger is on a disk with room; the temporary directory (``TMPDIR``)
    where ``POST /v1/verify`` spools the uploaded package or certificate is
    on the full tmpfs: 507, whichever part hits it, and no temporary file."""
    home = tmp_path / "home"
    _prepare(home, None)
    spool = disk / "spool"
    spool.mkdir()
    proc, base = _serve(home, TMPDIR=str(spool), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    filler = disk / "filler"
    small = [("package", ("p.zip", os.urandom(3000)))]
    try:
        # With room, a request is verified (and found malformed). Python picks
        # its temporary directory on first use, and only one it can write to.
        r = httpx.post(base + "/v1/verify", files=small, timeout=60)
        assert r.status_code == 422, r.text
        fill_file(filler)
        with httpx.Client(base_url=base, timeout=60) as c:
            for parts in (
                [("package", ("p.zip", os.urandom(1_000_000)))],
                [("certificate", ("c.json", b"{}")), ("evidence", ("e", os.urandom(900_000)))],
            ):
                assert _insufficient(c.post("/v1/verify", files=parts))
                assert list(spool.iterdir()) == []
            # A part small enough for the buffer fails when it is closed.
            assert _insufficient(c.post("/v1/verify", files=small))
            assert list(spool.iterdir()) == []
        filler.unlink()
        r = httpx.post(base + "/v1/verify", files=small, timeout=60)
        assert r.status_code == 422, r.text
        assert list(spool.iterdir()) == []
    finally:
        filler.unlink(missing_ok=True)
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode()[-4000:]
