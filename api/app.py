"""Application factory: no ledger, engine or settings exist until it is called."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from api import captures, certificates, checkpoints, evidence, pdf, problems, proofs, tiles, web
from api.auth import TokenCache
from api.fastpath import FastPath
from api.limits import BodyLimits, route_limits
from api.proxies import ClientAddress
from ledger.core import Ledger
from ledger.errors import LedgerError
from ledger.services import RenewalService, Services

__all__ = ["create_app", "create_app_from_env"]

log = logging.getLogger("evidence_ledger.sealer")


class BackgroundSealer:
    """Seals pending entries every ``interval`` seconds until stopped, and renews
    checkpoint timestamps (RFC 4998) when they come due: at start, then every
    ``renewal.interval`` seconds (:mod:`ledger.renewal`; idempotent, so several
    hosts doing it at once is harmless)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sealer", daemon=True)
        self._next_renewal = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = self._ledger.config.seal.interval
        while not self._stop.wait(interval):
            try:
                self._ledger.seal()
            except LedgerError as e:
                log.warning("seal failed: %s", e)
            except Exception:
                log.exception("seal failed")
            if time.monotonic() >= self._next_renewal:
                self._next_renewal = time.monotonic() + self._ledger.config.renewal.interval
                self._renew()

    def _renew(self) -> None:
        if not self._ledger.config.tsas:
            return
        try:
            report = RenewalService(self._ledger).renew()
        except LedgerError as e:
            log.warning("timestamp renewal failed: %s", e)
            return
        except Exception:
            log.exception("timestamp renewal failed")
            return
        if report["renewed"] or report["lapsed"]:
            log.info(
                "timestamp renewal: %d renewed, %d lapsed", report["renewed"], len(report["lapsed"])
            )
        for lapsed in report["lapsed"][:10]:
            log.warning("timestamp renewal: lapsed: %s", lapsed)


def create_app(ledger: Ledger, *, sealer: bool = False) -> FastAPI:
    """Build the service around an open ledger."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bg = BackgroundSealer(ledger) if sealer else None
        if bg:
            bg.start()
        try:
            yield
        finally:
            if bg:
                bg.stop()
            captures.shutdown(app)

    app = FastAPI(
        title="Evidence ledger",
        version="0.1.0",
        summary="Append-only evidence deposits with RFC 9162 proofs and signed checkpoints",
        lifespan=lifespan,
        # /docs is a page of the web console, served from vendored assets.
        docs_url=None,
        redoc_url=None,
    )
    app.state.ledger = ledger
    app.state.services = Services(ledger)
    app.state.token_cache = TokenCache()
    app.state.fast_path_served = 0
    problems.install(app)
    # Added first, so it is the innermost middleware: every middleware added
    # after it sees every request, including those the fast path answers.
    app.add_middleware(FastPath, fastapi=app)
    app.add_middleware(ClientAddress, trusted_proxies=ledger.config.http.trusted_proxies)
    # Added last, so it is the outermost: a body over its route's limit is
    # refused before authentication, the fast path or any parsing.
    routes, default = route_limits(ledger.config)
    app.add_middleware(BodyLimits, routes=routes, default=default)
    app.include_router(tiles.router)
    app.include_router(evidence.router)
    app.include_router(proofs.router)
    app.include_router(certificates.router)
    app.include_router(checkpoints.router)
    app.include_router(captures.router)
    app.include_router(pdf.router)
    web.install(app, ledger)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn: reads the home from ``EVIDENCE_LEDGER_HOME``."""
    # The group-commit thread holds the write lock (across processes, on
    # SQLite) while it builds and inserts rows; with CPython's default 5 ms
    # GIL switch interval the event loop can keep it waiting that long, and
    # every other writer with it. 1 ms hands the GIL over promptly.
    sys.setswitchinterval(0.001)
    home = Path(os.environ.get("EVIDENCE_LEDGER_HOME", "./var"))
    sealer = os.environ.get("EVIDENCE_LEDGER_SEALER", "1") == "1"
    return create_app(Ledger.open(home), sealer=sealer)
