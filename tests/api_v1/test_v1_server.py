"""The real service: uvicorn subprocess with two workers on one SQLite file."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger.accounts import create_account
from ledger.core import Ledger
from verifier.checkpoint import open_checkpoint
from verifier.merkle import verify_inclusion
from verifier.note import VerifierKey

BIN = Path(sys.executable).parent / "evidence-ledger"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, object]]:
    """``serve --workers 2``: two processes appending to one SQLite file, or to one
    PostgreSQL database (as several API hosts would)."""
    home = tmp_path_factory.mktemp("srv") / "home"
    url = None
    if request.param == "postgresql":
        url = str(request.getfixturevalue("pg_url_module"))
    with Ledger.init(home, "server.test/log", url) as ledger:
        token = create_account(ledger, "rights_holder", "alice").token
        notary = create_account(ledger, "notary", "bob").token
        vkey = ledger.verifier_key.to_text()
    # Seal quickly so wait=sealed answers fast.
    cfg = (home / "config.json").read_text().replace('"interval": 1.0', '"interval": 0.1')
    (home / "config.json").write_text(cfg)
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN), "--home", str(home), "serve", "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/checkpoint", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("server did not start: " + proc.stderr.read().decode()[-2000:])
    yield {"base": base, "token": token, "notary": notary, "home": home, "vkey": vkey}
    proc.terminate()
    proc.wait(timeout=30)


def test_deposit_wait_sealed_proof_verifies(server: dict[str, object]) -> None:
    h = {"Authorization": f"Bearer {server['token']}"}
    r = httpx.post(
        f"{server['base']}/v1/evidence?wait=sealed&timeout=20",
        files=[("file", ("e.txt", b"evidence over the wire", "text/plain"))],
        headers=h,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    (rec,) = r.json()["receipts"]
    p = rec["proof"]
    key = VerifierKey.from_text(str(server["vkey"]))
    cp = open_checkpoint(p["checkpoint"]["note"], [key]).checkpoint
    verify_inclusion(
        bytes.fromhex(rec["leaf_hash"]),
        rec["index"],
        cp.size,
        [base64.b64decode(x) for x in p["hashes"]],
        cp.root,
    )


def test_two_workers_append_contiguously(server: dict[str, object]) -> None:
    h = {"Authorization": f"Bearer {server['token']}"}
    got: list[int] = []

    def post(i: int) -> None:
        with httpx.Client(timeout=30) as c:
            for j in range(10):
                body = {"sha256": f"{i:02x}{j:02x}".ljust(64, "0")}
                r = c.post(f"{server['base']}/v1/evidence", json=body, headers=h)
                assert r.status_code == 201, r.text
                got.append(r.json()["receipts"][0]["index"])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 80
    assert sorted(got) == list(range(min(got), min(got) + 80))


def test_client_killed_mid_upload_leaves_nothing(server: dict[str, object]) -> None:
    home = Path(str(server["home"]))
    with Ledger.open(home) as ledger:
        before = ledger.store.size()
    port = int(str(server["base"]).rsplit(":", 1)[1])
    body_start = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    head = (
        f"POST /v1/evidence HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server['token']}\r\n"
        f"Content-Type: multipart/form-data; boundary=XyZ\r\n"
        f"Content-Length: {len(body_start) + 50_000_000}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head + body_start)
        for _ in range(40):  # 10 MB, then vanish
            s.sendall(os.urandom(256 * 1024))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    time.sleep(1.5)
    tmp = home / "blobs" / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []
    with Ledger.open(home) as ledger:
        assert ledger.store.size() == before
        assert not ledger.store.query("select * from evidence where file_name = 'big.bin'")


def test_end_to_end_certificate_flow(server: dict[str, object], tmp_path: Path) -> None:
    """deposit -> wait sealed -> proof verifies -> certificate -> package ->
    evidence-verify accepts it -> revoke -> status says revoked."""
    base = str(server["base"])
    rh = {"Authorization": f"Bearer {server['token']}"}
    nt = {"Authorization": f"Bearer {server['notary']}"}
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post(
            "/v1/evidence?wait=sealed&timeout=20",
            files=[("file", ("contract.pdf", b"%PDF-1.7 contract", "application/pdf"))],
            headers=rh,
        )
        assert r.status_code == 201, r.text
        rec = r.json()["receipts"][0]
        p = rec["proof"]
        verify_inclusion(
            bytes.fromhex(rec["leaf_hash"]),
            rec["index"],
            p["tree_size"],
            [base64.b64decode(x) for x in p["hashes"]],
            base64.b64decode(p["checkpoint"]["root"]),
        )
        r = c.post("/v1/certificates", json={"evidence_id": rec["evidence_id"]}, headers=nt)
        assert r.status_code == 201, r.text
        cid = r.json()["certificate_id"]
        pkg = c.get(f"/v1/certificates/{cid}/package", headers=rh)
        assert pkg.status_code == 200
        (tmp_path / "pkg.zip").write_bytes(pkg.content)
        (tmp_path / "trust.json").write_bytes(c.get("/v1/trust").content)
        verify_bin = Path(sys.executable).parent / "evidence-verify"
        args = [str(verify_bin), "package", str(tmp_path / "pkg.zip")]
        ok = subprocess.run(
            [*args, "--trust", str(tmp_path / "trust.json")], capture_output=True, text=True
        )
        assert ok.returncode == 0, ok.stdout + ok.stderr
        r = c.post(f"/v1/certificates/{cid}/revoke", json={"reason": "withdrawn"}, headers=nt)
        assert r.status_code == 200, r.text
        status = c.get(f"/v1/certificates/{cid}/status").json()
        assert status["status"] == "revoked"
        assert status["revoked_index"] == r.json()["index"]
