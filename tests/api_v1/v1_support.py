"""Helpers for the /v1 API tests: a ledger with one account per role and a client."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from ledger.accounts import create_account
from ledger.core import Ledger

ROLES = ("rights_holder", "notary", "auditor", "admin")


@dataclass
class Service:
    ledger: Ledger
    client: TestClient
    tokens: dict[str, str]
    ids: dict[str, str]

    def auth(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}

    def deposit_hash(self, role: str = "rights_holder", data: bytes = b"x") -> dict[str, object]:
        body = {"sha256": hashlib.sha256(data).hexdigest(), "title": data.decode(errors="replace")}
        r = self.client.post("/v1/evidence", json=body, headers=self.auth(role))
        assert r.status_code == 201, r.text
        receipt: dict[str, object] = r.json()["receipts"][0]
        return receipt


@contextmanager
def service(
    home: Path, database_url: str | None = None, sealer: bool = False, **cfg: object
) -> Iterator[Service]:
    ledger = Ledger.init(home, "api.test/log", database_url)
    if cfg:
        from dataclasses import replace

        ledger.config = replace(ledger.config, **cfg)  # type: ignore[arg-type]
    tokens, ids = {}, {}
    for role in ROLES:
        acct = create_account(ledger, role, f"{role}-1")
        tokens[role], ids[role] = acct.token, acct.account_id
    other = create_account(ledger, "rights_holder", "rights_holder-2")
    tokens["other"], ids["other"] = other.token, other.account_id
    if sealer:
        from ledger.config import with_seal

        ledger.config = with_seal(ledger.config, interval=0.05)
    with TestClient(create_app(ledger, sealer=sealer)) as client:
        yield Service(ledger, client, tokens, ids)
    ledger.close()
