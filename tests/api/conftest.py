"""Fixtures for the HTTP API tests: real ledgers, the app from ``api.app.create_app``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import ORIGIN, ClientFor, fill
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.core import Ledger


@pytest.fixture
def fresh_ledger(tmp_path: Path) -> Iterator[Ledger]:
    """An initialised ledger with only the empty checkpoint."""
    led = Ledger.init(tmp_path / "home", origin=ORIGIN)
    try:
        yield led
    finally:
        led.close()


@pytest.fixture
def client_for() -> Iterator[ClientFor]:
    """Build TestClients (no background sealer) around ledgers; closed afterwards.

    Server exceptions come back as 500 responses instead of being raised, so a
    test can assert that a request never produces one.
    """
    clients: list[TestClient] = []

    def make(led: Ledger) -> TestClient:
        c = TestClient(create_app(led), raise_server_exceptions=False)
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture(scope="module", params=[1, 256, 300, 600])
def sealed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Ledger, TestClient]]:
    """A sealed ledger of ``param`` entries and a client for it (read-only tests)."""
    led = Ledger.init(tmp_path_factory.mktemp("api") / "home", origin=ORIGIN)
    fill(led, request.param)
    led.seal()
    with TestClient(create_app(led), raise_server_exceptions=False) as client:
        yield led, client
    led.close()
