"""Structured logs of a whole session hold no secret: tokens, session ids, CSRF
tokens, keys, salts, private titles, file names or query strings."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from pathlib import Path

import httpx
import pytest
from ops_support import fast_seal, serve

from ledger.accounts import create_account
from ledger.core import Ledger

pytestmark = pytest.mark.slow


def _csrf(page: httpx.Response) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m, page.text[:300]
    return m[1]


def test_no_secret_in_any_log_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Ledger.init(home, "logs.test/log") as ledger:
        tokens = {
            role: create_account(ledger, role, f"{role}-name").token
            for role in ("rights_holder", "notary", "admin")
        }
    fast_seal(home)
    secrets_made: dict[str, str] = {f"token {r}": t for r, t in tokens.items()}
    mark = secrets.token_hex(6)

    def secret(name: str) -> str:
        value = f"{name}-{mark}-{secrets.token_hex(4)}"
        secrets_made[name] = value
        return value

    log = tmp_path / "serve.log"
    request_ids: list[str] = []
    with serve(home, "--workers", "2", "--log-format", "json", log=log) as srv:
        api = httpx.Client(base_url=srv.base)
        h = {"Authorization": f"Bearer {tokens['rights_holder']}"}
        for i in range(5):
            body = {"sha256": hashlib.sha256(f"{mark}{i}".encode()).hexdigest()}
            body["title"] = secret(f"title{i}")
            r = api.post("/v1/evidence", json=body, headers=h)
            assert r.status_code == 201, r.text
            request_ids.append(r.headers["x-request-id"])
        content = secret("file content").encode() * 5000
        files = [("file", (secret("file name") + ".txt", content, "text/plain"))]
        r = api.post("/v1/evidence", files=files, data={"title": secret("file title")}, headers=h)
        assert r.status_code == 201, r.text
        eid = r.json()["receipts"][0]["evidence_id"]
        r = api.get("/v1/evidence", params={"title": secret("query title")}, headers=h)
        assert r.status_code == 200, r.text
        assert api.get(f"/v1/evidence/{eid}", headers=h).status_code == 200
        wrong = {"Authorization": f"Bearer {secret('wrong token')}"}
        r = api.post("/v1/evidence", json={"sha256": "00" * 32}, headers=wrong)
        assert r.status_code == 401

        web = httpx.Client(base_url=srv.base, headers={"Origin": srv.base})
        page = web.get("/login")
        r = web.post("/login", data={"token": secret("wrong login"), "csrf": _csrf(page)})
        assert r.status_code == 401
        page = web.get("/login")
        secrets_made["anonymous csrf"] = _csrf(page)
        r = web.post("/login", data={"token": tokens["rights_holder"], "csrf": _csrf(page)})
        assert r.status_code == 303, r.text
        session = next(v for k, v in web.cookies.items() if k.endswith("el_session"))
        secrets_made["session id"] = session
        page = web.get("/console", params={"q": secret("console search")})
        assert page.status_code == 200
        secrets_made["session csrf"] = _csrf(page)
        assert web.get("/no-such-page", params={"token": secret("stray token")}).status_code == 404
        api.close()
        web.close()

    with Ledger.open(home) as ledger:
        for idx, salt, body in ledger.store.privates(0, ledger.store.size()):
            secrets_made[f"salt {idx}"] = salt.hex()
            secrets_made[f"salt64 {idx}"] = base64.b64encode(salt).decode()
    for key in (home / "keys").iterdir():
        if key.suffix == ".key" or key.name.endswith(".key"):
            for line in key.read_text().splitlines():
                if len(line) > 20 and not line.startswith("-----"):
                    secrets_made[f"key {key.name}"] = line.strip()

    text = log.read_text("utf-8")
    lines = text.splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    leaked = {name: value for name, value in secrets_made.items() if value in text}
    assert not leaked, leaked
    assert mark not in text  # no part of any private value
    assert "?" not in "".join(str(r.get("route")) for r in records)

    access = [r for r in records if r["logger"] == "evidence_ledger.access"]
    by_id = {r["request_id"]: r for r in access}
    for rid in request_ids:  # each deposit's line, by the id its response carried
        assert by_id[rid]["route"] == "/v1/evidence"
        assert by_id[rid]["status"] == 201 and by_id[rid]["method"] == "POST"
        assert by_id[rid]["duration_ms"] > 0
    routes = {r["route"] for r in access}
    assert {"/v1/evidence/{evidence_id}", "/login", "/console", "unmatched"} <= routes
