"""Application factory: no ledger, engine or settings exist until it is called."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from api import captures, certificates, checkpoints, evidence, pdf, problems, proofs, tiles, web
from api.auth import TokenCache
from api.fastpath import FastPath
from ledger.core import Ledger
from ledger.errors import LedgerError
from ledger.services import Services

__all__ = ["create_app", "create_app_from_env"]

log = logging.getLogger("evidence_ledger.sealer")


class BackgroundSealer:
    """Seals pending entries every ``interval`` seconds until stopped."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sealer", daemon=True)

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


def create_app(ledger: Ledger, *, sealer: bool = False, capture_worker: bool = True) -> FastAPI:
    """Build the service around an open ledger (``capture_worker``: run
    scheduled captures in this process)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bg = BackgroundSealer(ledger) if sealer else None
        if bg:
            bg.start()
        if capture_worker:
            # Scheduled captures (any host's) run here when their time comes.
            app.state.services.captures.start_worker()
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
    app.state.verify_limiter = certificates.RateLimiter()
    app.state.fast_path_served = 0
    problems.install(app)
    # Added first, so it is the innermost middleware: every middleware added
    # after it sees every request, including those the fast path answers.
    app.add_middleware(FastPath, fastapi=app)
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
