"""/healthz and /readyz: the database, the sealer, publication behind its policy."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from ops_support import fast_seal, free_port, serve
from pg_support import pg_url

from api.app import OpsSettings, create_app
from ledger.core import Ledger
from ledger.events import evidence_deposited


def _deposit(ledger: Ledger, i: int) -> None:
    sha = hashlib.sha256(f"ready {i}".encode()).hexdigest()
    ledger.append([evidence_deposited(kind="hash", sha256=sha)])


def test_healthz_and_readyz_answer_with_a_request_id(ledger: Ledger) -> None:
    with TestClient(create_app(ledger, sealer=True)) as client:
        r = client.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        assert len(r.headers["x-request-id"]) == 16
        r = client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["checks"] == {"database": "ok", "sealer": "ok", "publication": "ok"}
        other = client.get("/readyz").headers["x-request-id"]
        assert other != r.headers["x-request-id"]


def test_readyz_fails_when_publication_is_behind(ledger: Ledger) -> None:
    app = create_app(ledger, sealer=False, ops=OpsSettings(max_lag=0.2))
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        _deposit(ledger, 1)
        assert client.get("/readyz").status_code == 200  # within the limit
        time.sleep(0.4)
        r = client.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unavailable"
        assert body["reason"].startswith("publication: entry 0 has waited")
        assert body["checks"]["sealer"].startswith("skipped")
        ledger.seal()
        assert client.get("/readyz").status_code == 200


def test_readyz_fails_when_the_sealer_stopped(ledger: Ledger) -> None:
    with TestClient(create_app(ledger, sealer=True)) as client:
        assert client.get("/readyz").status_code == 200
        client.app.state.sealer.stop()  # type: ignore[attr-defined]
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["reason"] == "sealer: not running"
        assert client.get("/healthz").status_code == 200


class _Proxy:
    """A TCP forwarder to PostgreSQL that can be stopped and started again on
    the same port: the server's database goes away and comes back."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._up = False

    def start(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self._listener = ls
        self._up = True
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            with self._lock:
                if not self._up:  # accepted while stopping: refuse it
                    client.close()
                    return
                upstream = socket.create_connection(self.target)
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        assert self._listener is not None
        with self._lock:
            self._up = False
            # shutdown() wakes the thread blocked in accept(); close() alone
            # does not on Linux, and it would accept one more connection.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            for s in self._conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._conns.clear()


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    p = _Proxy(free_port(), ("127.0.0.1", 5432))
    p.start()
    yield p
    p.stop()


@pytest.mark.postgres
@pytest.mark.slow
def test_readyz_503_while_the_database_is_down(
    tmp_path: Path, pg_schema: str, proxy: _Proxy
) -> None:
    """A running server (two workers) whose PostgreSQL goes away: /readyz says
    503 with the database's reason, /healthz still 200; back when it returns."""
    home = tmp_path / "home"
    url = pg_url(pg_schema).replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    Ledger.init(home, "ready.test/log", url).close()
    fast_seal(home)
    with serve(home, "--workers", "2") as srv:
        assert httpx.get(srv.base + "/readyz", timeout=10).status_code == 200
        proxy.stop()
        for _ in range(4):  # whichever worker answers
            r = httpx.get(srv.base + "/readyz", timeout=30)
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["reason"].startswith("database: "), body
            assert body["checks"]["publication"].startswith("skipped")
            assert httpx.get(srv.base + "/healthz", timeout=10).status_code == 200
        proxy.start()
        deadline = time.monotonic() + 20
        while httpx.get(srv.base + "/readyz", timeout=30).status_code != 200:
            assert time.monotonic() < deadline, "not ready again after the database came back"
            time.sleep(0.2)
