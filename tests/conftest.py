"""Shared fixtures: one storage contract, run against SQLite and PostgreSQL.

The PostgreSQL backend uses the server at 127.0.0.1:5432 (user ``postgres``,
database ``test``). Every test gets its own freshly created schema, selected
through ``search_path`` in the URL, and the schema is dropped afterwards. When
the server is unreachable the PostgreSQL tests fail if ``CI`` is set (a CI run
must never pass by skipping them) and are skipped otherwise.
``EVIDENCE_TEST_PG_URL`` points the tests at another server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pg_support import PG_ADMIN_URL, pg_url

from ledger.core import Ledger

ORIGIN = "ledger.test/log"  # also in tests/ledger/ledger_helpers.py

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

_pg_state: dict[str, str | None] = {}


def _pg_unreachable_reason() -> str | None:
    """Why the PostgreSQL server cannot be used, or None; probed once per session."""
    if "reason" not in _pg_state:
        try:
            with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
                conn.execute("select 1")
            _pg_state["reason"] = None
        except psycopg.Error as e:
            _pg_state["reason"] = f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {e}"
    return _pg_state["reason"]


def require_postgres() -> None:
    """Fail under CI, skip otherwise, when the server is down."""
    reason = _pg_unreachable_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: PostgreSQL tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh, empty schema, dropped (with everything in it) after the test."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"create schema {schema}")
    try:
        yield schema
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute("set lock_timeout = '10s'")
            conn.execute(f"drop schema if exists {schema} cascade")


@pytest.fixture(scope="module")
def pg_schema_module() -> Iterator[str]:
    """Like ``pg_schema``, shared by the tests of one module (a long-lived server)."""
    require_postgres()
    schema = f"m_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"create schema {schema}")
    try:
        yield schema
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute("set lock_timeout = '10s'")
            conn.execute(f"drop schema if exists {schema} cascade")


@pytest.fixture(scope="module")
def pg_url_module(pg_schema_module: str) -> str:
    """Database URL selecting ``pg_schema_module``."""
    return pg_url(pg_schema_module)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database URL where no ledger exists yet, for the parametrised backend."""
    if backend == "sqlite":
        return "sqlite:///" + str(tmp_path / "home" / "ledger.db")
    return pg_url(request.getfixturevalue("pg_schema"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def ledger(home: Path, store_url: str) -> Iterator[Ledger]:
    """A freshly initialised ledger (empty checkpoint published) on each backend."""
    led = Ledger.init(home, origin=ORIGIN, database_url=store_url)
    try:
        yield led
    finally:
        led.close()
