"""Application factory: no ledger, engine or settings exist until it is called."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from api import (
    captures,
    certificates,
    checkpoints,
    evidence,
    health,
    pdf,
    problems,
    proofs,
    tiles,
    web,
)
from api.auth import TokenCache
from api.fastpath import FastPath
from api.limits import BodyLimits, route_limits
from api.metrics import Metrics
from api.observability import RequestContext
from api.proxies import ClientAddress
from ledger.core import Ledger
from ledger.errors import LedgerError
from ledger.services import RenewalService, Services

__all__ = ["OpsSettings", "create_app", "create_app_from_env"]

log = logging.getLogger("evidence_ledger.sealer")


@dataclass(frozen=True, slots=True)
class OpsSettings:
    """Operational settings of one service process (``evidence-ledger serve`` options)."""

    metrics: bool = True
    """Record metrics; with ``metrics_route`` also serve ``GET /metrics`` on this app."""
    metrics_route: bool = True
    access_log: bool = True
    """One log line per request (route template, status, duration, request id)."""
    max_lag: float = 300.0
    """``/readyz`` fails once an entry has waited this many seconds to be published."""


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
        self._busy_since: float | None = None

    def start(self) -> None:
        """Start (again, after :meth:`stop`: an app's lifespan may run more than once)."""
        if self._thread.ident is not None:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="sealer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def state(self, stuck_after: float) -> str:
        """``ok``, or why the sealer is not doing its work (for ``/readyz``)."""
        if not self._thread.is_alive():
            return "not running"
        since = self._busy_since
        if since is not None and time.monotonic() - since > stuck_after:
            return f"one seal has been running for {time.monotonic() - since:.0f} s"
        return "ok"

    def _run(self) -> None:
        interval = self._ledger.config.seal.interval
        while not self._stop.wait(interval):
            self._busy_since = time.monotonic()
            try:
                self._ledger.seal()
            except LedgerError as e:
                log.warning("seal failed: %s", e)
            except Exception:
                log.exception("seal failed")
            finally:
                self._busy_since = None
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


def create_app(
    ledger: Ledger,
    *,
    sealer: bool = False,
    ops: OpsSettings | None = None,
    capture_worker: bool = True,
) -> FastAPI:
    """Build the service around an open ledger (``capture_worker``: run
    scheduled captures in this process)."""
    ops = ops or OpsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bg: BackgroundSealer | None = app.state.sealer
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
    services = Services(ledger)
    app.state.ledger = ledger
    app.state.services = services
    app.state.token_cache = TokenCache()
    app.state.fast_path_served = 0
    app.state.ops = ops
    app.state.sealer = BackgroundSealer(ledger) if sealer else None
    app.state.metrics = metrics = Metrics(services) if ops.metrics else None
    if metrics is not None:
        ledger.observe(metrics)
    problems.install(app)
    # Added first, so it is the innermost middleware: every middleware added
    # after it sees every request, including those the fast path answers.
    app.add_middleware(FastPath, fastapi=app)
    app.add_middleware(ClientAddress, trusted_proxies=ledger.config.http.trusted_proxies)
    # A body over its route's limit is refused before authentication, the fast
    # path or any parsing.
    routes, default = route_limits(ledger.config)
    app.add_middleware(BodyLimits, routes=routes, default=default)
    # Added last: the outermost, around everything but Starlette's error handler,
    # so refused bodies are logged and counted with a request id too.
    app.add_middleware(RequestContext, metrics=metrics, access=ops.access_log)
    app.include_router(health.router)
    if metrics is not None and ops.metrics_route:
        app.include_router(health.metrics_router)
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
    """Factory for uvicorn: the home from ``EVIDENCE_LEDGER_HOME``, the rest from
    the variables ``evidence-ledger serve`` sets (see :func:`ops_from_env`)."""
    # The group-commit thread holds the write lock (across processes, on
    # SQLite) while it builds and inserts rows; with CPython's default 5 ms
    # GIL switch interval the event loop can keep it waiting that long, and
    # every other writer with it. 1 ms hands the GIL over promptly.
    sys.setswitchinterval(0.001)
    home = Path(os.environ.get("EVIDENCE_LEDGER_HOME", "./var"))
    sealer = os.environ.get("EVIDENCE_LEDGER_SEALER", "1") == "1"
    return create_app(Ledger.open(home), sealer=sealer, ops=ops_from_env())


def ops_from_env() -> OpsSettings:
    """``EVIDENCE_LEDGER_METRICS`` (``main``, ``off`` or ``elsewhere``),
    ``EVIDENCE_LEDGER_ACCESS_LOG`` (``1``/``0``), ``EVIDENCE_LEDGER_READY_MAX_LAG`` (seconds)."""
    where = os.environ.get("EVIDENCE_LEDGER_METRICS", "main")
    return OpsSettings(
        metrics=where != "off",
        metrics_route=where == "main",
        access_log=os.environ.get("EVIDENCE_LEDGER_ACCESS_LOG", "1") == "1",
        max_lag=float(os.environ.get("EVIDENCE_LEDGER_READY_MAX_LAG", "300")),
    )
