"""Deposits that are whole, tried as an attacker would against the real service.

A ``serve --workers 2`` process on SQLite (files in ``HOME/blobs``) and on
PostgreSQL (files as rows in the database), real bytes on the wire:

- an upload refused after it was streamed (a control character in the title
  or the file name, an Idempotency-Key reused with another file, a part the
  form does not know after the file, the size limit, a client that vanishes)
  leaves no file, no staged write and no log entry;
- ``Idempotency-Key`` values match exactly (no prefix, no ``#`` suffix games);
- a notary cannot revoke another notary's certificate;
- twelve concurrent revocations of one certificate write one event;
- an account revoked while its upload streams in deposits nothing (409) and
  its file is removed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from ledger.accounts import create_account
from ledger.core import Ledger

BIN = Path(sys.executable).parent / "evidence-ledger"
LIMIT = 4_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A running ``evidence-ledger serve`` and what the tests need to reach it."""

    def __init__(self, home: Path, base: str, tokens: dict[str, str], url: str | None) -> None:
        self.home = home
        self.base = base
        self.tokens = tokens
        self.url = url

    def auth(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def stored(self) -> dict[str, int]:
        """What the blob store holds, counted outside the ledger's code:
        committed blobs, staged writes, and the pieces (files or chunk rows)."""
        if self.url is None:
            root = self.home / "blobs"
            files = [p for p in root.rglob("*") if p.is_file()]
            staged = [p for p in files if p.parent.name == "tmp"]
            return {"blobs": len(files) - len(staged), "staged": len(staged), "pieces": len(files)}
        with psycopg.connect(self.url, autocommit=True) as conn:
            n = {
                t: conn.execute(f"select count(*) from {t}").fetchone()[0]  # type: ignore[index]
                for t in ("blobs", "blob_uploads", "blob_chunks")
            }
        return {"blobs": n["blobs"], "staged": n["blob_uploads"], "pieces": n["blob_chunks"]}

    def log(self) -> list[tuple[int, str]]:
        """Every entry of the log, as ``(index, type)``."""
        with Ledger.open(self.home) as ledger:
            return [(e[0], e[1]) for e in ledger.store.entries(0, ledger.store.size())]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("whole") / "home"
    url = None
    if request.param == "postgresql":
        url = str(request.getfixturevalue("pg_url_module"))
    with Ledger.init(home, "whole.test/log", url) as ledger:
        tokens = {
            "alice": create_account(ledger, "rights_holder", "alice").token,
            "mallory": create_account(ledger, "rights_holder", "mallory").token,
            "bob": create_account(ledger, "notary", "bob").token,
            "carol": create_account(ledger, "notary", "carol").token,
            "root": create_account(ledger, "admin", "root").token,
        }
    cfg = json.loads((home / "config.json").read_text())
    cfg["seal"]["interval"] = 0.1  # wait=sealed answers fast
    cfg["max_upload_bytes"] = LIMIT
    (home / "config.json").write_text(json.dumps(cfg))
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
        pytest.fail("server did not start: " + proc.stderr.read().decode()[-2000:])  # type: ignore[union-attr]
    try:
        yield Server(home, base, tokens, url)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode()[-3000:]


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


# -- 1. a refused upload leaves nothing ------------------------------------------------


def test_uploads_refused_after_streaming_leave_nothing(server: Server) -> None:
    """Each upload below is over the 64 KiB inline limit, so its bytes reach the
    blob store's staging before the refusal: none of them may remain."""
    before_log = server.log()
    before = server.stored()
    big = os.urandom(300_000)
    h = server.auth("mallory")
    with httpx.Client(base_url=server.base, timeout=60) as c:
        # A control character in the title, and in the file name.
        r = c.post(
            "/v1/evidence",
            data={"title": "bill\x1b[2Jpaid"},
            files=[("file", ("a", big))],
            headers=h,
        )
        assert "control characters" in _problem(r, 400)["detail"]
        # httpx would percent-encode the name: send the raw bytes an attacker would.
        body = (
            b'--b0undary\r\nContent-Disposition: form-data; name="file"; '
            b'filename="inv\x07oice.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
            + big
            + b"\r\n--b0undary--\r\n"
        )
        raw = {**h, "Content-Type": "multipart/form-data; boundary=b0undary"}
        r = c.post("/v1/evidence", content=body, headers=raw)
        assert "control characters" in _problem(r, 400)["detail"]
        # The second of two files over the limit.
        over = [("file", ("a", big)), ("file", ("b", os.urandom(LIMIT)))]
        _problem(c.post("/v1/evidence", files=over, headers=h), 413)
        # A part the form does not know, after a whole file.
        r = c.post(
            "/v1/evidence",
            data={"evil": "x"},
            files=[("file", ("a", os.urandom(200_000)))],
            headers=h,
        )
        _problem(r, 400)
        assert server.stored() == before
        assert server.log() == before_log
        # An Idempotency-Key reused with another file: 409, and the other file
        # is not kept (the first deposit's file stays, with its entry).
        key = {**h, "Idempotency-Key": "mallory-1"}
        first = c.post("/v1/evidence", files=[("file", ("a", big))], headers=key)
        assert first.status_code == 201, first.text
        held = server.stored()
        assert held["blobs"] == before["blobs"] + 1
        other = os.urandom(300_000)
        _problem(c.post("/v1/evidence", files=[("file", ("a", other))], headers=key), 409)
        assert server.stored() == held
        got = c.get(f"/v1/evidence/{first.json()['receipts'][0]['evidence_id']}/content", headers=h)
        assert got.content == big
    assert len(server.log()) == len(before_log) + 1


def test_a_client_that_vanishes_mid_upload_leaves_nothing(server: Server) -> None:
    before_log = server.log()
    before = server.stored()
    port = int(server.base.rsplit(":", 1)[1])
    part = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    head = (
        "POST /v1/evidence HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.tokens['mallory']}\r\n"
        "Content-Type: multipart/form-data; boundary=XyZ\r\n"
        f"Content-Length: {len(part) + 3_900_000}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head + part)
        for _ in range(10):  # 2.5 MB reach the staging area, then a reset
            s.sendall(os.urandom(256 * 1024))
        time.sleep(0.3)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    deadline = time.monotonic() + 10
    while server.stored() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.stored() == before
    assert server.log() == before_log


def _ids(r: httpx.Response) -> list[tuple[str, int]]:
    return [(x["evidence_id"], x["index"]) for x in r.json()["receipts"]]


# -- 3. Idempotency-Key values match exactly ---------------------------------------------


def test_idempotency_keys_match_exactly(server: Server) -> None:
    """Two files under ``pfx`` are stored as ``pfx#0`` and ``pfx#1``: the key
    ``pfx#0`` is another key (no replay of them), and neither ``pfx`` nor
    ``zz`` is blocked by a key that merely starts with it."""
    h = server.auth("alice")
    with httpx.Client(base_url=server.base, timeout=60) as c:
        two = [("file", ("a", os.urandom(1000))), ("file", ("b", os.urandom(1000)))]
        first = c.post("/v1/evidence", files=two, headers={**h, "Idempotency-Key": "pfx"})
        assert first.status_code == 201, first.text
        # Replaying `pfx` with the same files answers those receipts.
        again = c.post("/v1/evidence", files=two, headers={**h, "Idempotency-Key": "pfx"})
        assert again.status_code == 200
        assert _ids(again) == _ids(first)  # (their status may have become sealed meanwhile)
        # `pfx#0` is a key of its own: a fresh deposit, not a replay of `pfx`'s first file.
        body = {"sha256": "ab" * 32}
        r = c.post("/v1/evidence", json=body, headers={**h, "Idempotency-Key": "pfx#0"})
        assert r.status_code == 201, r.text
        assert r.json()["receipts"][0]["index"] > first.json()["receipts"][1]["index"]
        # `zz#x` used first must not make `zz` a conflict, nor the other way round.
        r = c.post("/v1/evidence", json=body, headers={**h, "Idempotency-Key": "zz#x"})
        assert r.status_code == 201, r.text
        r2 = c.post(
            "/v1/evidence", json={"sha256": "cd" * 32}, headers={**h, "Idempotency-Key": "zz"}
        )
        assert r2.status_code == 201, r2.text
        assert r2.json()["receipts"][0]["evidence_id"] != r.json()["receipts"][0]["evidence_id"]
        r3 = c.post(
            "/v1/evidence", json={"sha256": "ef" * 32}, headers={**h, "Idempotency-Key": "z"}
        )
        assert r3.status_code == 201, r3.text
        # And a key is per account: mallory's `zz` is not alice's.
        m = server.auth("mallory", **{"Idempotency-Key": "zz"})
        r4 = c.post("/v1/evidence", json={"sha256": "cd" * 32}, headers=m)
        assert r4.status_code == 201, r4.text
        assert r4.json()["receipts"][0]["evidence_id"] != r2.json()["receipts"][0]["evidence_id"]


# -- 2 and 4. revocations ----------------------------------------------------------------


def _certificate(c: httpx.Client, server: Server, notary: str) -> str:
    r = c.post(
        "/v1/evidence?wait=sealed&timeout=20",
        json={"sha256": os.urandom(32).hex(), "title": "contract"},
        headers=server.auth("alice"),
    )
    assert r.status_code == 201, r.text
    eid = r.json()["receipts"][0]["evidence_id"]
    r = c.post("/v1/certificates", json={"evidence_id": eid}, headers=server.auth(notary))
    assert r.status_code == 201, r.text
    return str(r.json()["certificate_id"])


def test_only_the_issuing_notary_or_an_admin_revokes(server: Server) -> None:
    with httpx.Client(base_url=server.base, timeout=60) as c:
        cid = _certificate(c, server, "bob")
        revoke = f"/v1/certificates/{cid}/revoke"
        body = {"reason": "I do not like it"}
        _problem(c.post(revoke, json=body, headers=server.auth("carol")), 403)
        _problem(c.post(revoke, json=body, headers=server.auth("alice")), 403)
        assert c.get(f"/v1/certificates/{cid}/status").json()["status"] == "valid"
        r = c.post(revoke, json={"reason": "issued in error"}, headers=server.auth("bob"))
        assert r.status_code == 200, r.text
        cid2 = _certificate(c, server, "bob")
        r = c.post(f"/v1/certificates/{cid2}/revoke", json=body, headers=server.auth("root"))
        assert r.status_code == 200, r.text
    types = [t for _, t in server.log()]
    assert types.count("certificate.revoked") >= 2


def test_twelve_concurrent_revocations_write_one_event(server: Server) -> None:
    with httpx.Client(base_url=server.base, timeout=60) as c:
        cid = _certificate(c, server, "bob")
    before = server.log()
    start = threading.Barrier(12)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def revoke(n: int) -> None:
        who = "bob" if n % 2 else "root"
        with httpx.Client(base_url=server.base, timeout=60) as c:
            start.wait()
            r = c.post(
                f"/v1/certificates/{cid}/revoke",
                json={"reason": f"try {n}"},
                headers=server.auth(who),
            )
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=revoke, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] + [409] * 11, [r.text for r in answers]
    for r in answers:
        if r.status_code == 409:
            _problem(r, 409)
    added = server.log()[len(before) :]
    assert [t for _, t in added] == ["certificate.revoked"]
    winner = next(r for r in answers if r.status_code == 200).json()
    assert winner["index"] == added[0][0]
    with httpx.Client(base_url=server.base, timeout=60) as c:
        status = c.get(f"/v1/certificates/{cid}/status").json()
    assert status["status"] == "revoked" and status["revoked_index"] == added[0][0]


# -- 5. an account revoked during its own upload deposits nothing ------------------------


def _cli(server: Server, *args: str) -> str:
    proc = subprocess.run(
        [str(BIN), "--home", str(server.home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_an_account_revoked_during_its_upload_deposits_nothing(server: Server) -> None:
    """The token was valid when the upload began; the operator revokes the
    account (``account revoke``, another process) while the body streams in,
    slowly. The deposit is refused inside the append: a 409 problem, no log
    entry, and the file (over the inline limit, so it reached the blob
    store) removed."""
    name = f"leaving-{os.urandom(4).hex()}"
    token = _cli(server, "account", "create", "--role", "rights_holder", "--name", name)
    token = token.strip().splitlines()[-1]
    before_log = server.log()
    before = server.stored()
    boundary = "sl0wly"
    revoked: list[str] = []

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        for i in range(12):  # 3 MiB, a quarter of a MiB at a time
            yield os.urandom(256 * 1024)
            time.sleep(0.05)
            if i == 4:  # the upload is well under way: the operator revokes the account
                revoked.append(_cli(server, "account", "revoke", name))
        yield f"\r\n--{boundary}--\r\n".encode()

    with httpx.Client(base_url=server.base, timeout=120) as c:
        r = c.post(
            "/v1/evidence",
            content=body(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
    assert revoked, "the account was not revoked during the upload"
    assert "was revoked" in _problem(r, 409)["detail"]
    added = [t for _, t in server.log()[len(before_log) :]]
    assert added == ["account.revoked"]
    assert server.stored() == before
