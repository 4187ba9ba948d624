"""Request ids, the access log and structured (JSON) logs.

:class:`RequestContext` is the outermost ASGI middleware: every request,
including those the fast path answers (:mod:`api.fastpath`, innermost), gets
a fresh request id (returned as ``X-Request-Id`` and attached to every log
line written while it is served), is timed into the metrics under its route
*template* (``/v1/evidence/{evidence_id}``, never the raw path), and is
written to the access log.

What is never logged: query strings (a private ``?title=`` search),
headers (tokens, cookies, session ids), bodies, raw paths. The access log
names the route template only; uvicorn's own access log, which prints the
full path and query string, is never enabled (``evidence-ledger serve``
passes ``access_log=False`` and logs through this middleware instead).
A client's own ``X-Request-Id`` is not reused: it could carry anything.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import Metrics

__all__ = [
    "REQUEST_ID",
    "JsonFormatter",
    "RequestContext",
    "RequestIdFilter",
    "TextFormatter",
    "log_config",
]

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
UNMATCHED = "unmatched"
"""Route label of requests no route matched (their path is not logged)."""
QUIET = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: logged at DEBUG, not INFO, so they do not drown the access log."""

access_log = logging.getLogger("evidence_ledger.access")

_ACCESS_FIELDS = ("request_id", "method", "route", "status", "duration_ms", "client")


def route_template(scope: Scope) -> str:
    """The template of the route that answered (set by the router or the fast path)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    if isinstance(route, Mount):
        return path + "/{path}"
    return path


class RequestContext:
    """ASGI middleware: request id, timing into ``metrics``, one access-log line."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None, access: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = secrets.token_hex(8)
        header = (b"x-request-id", rid.encode("ascii"))
        ctx = REQUEST_ID.set(rid)
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"]
            if self.metrics is not None:
                self.metrics.request(route, method, status, seconds)
            if self.access:
                client = scope.get("client")
                access_log.log(
                    logging.DEBUG if route in QUIET else logging.INFO,
                    '"%s %s" %d %.1f ms',
                    method,
                    route,
                    status,
                    seconds * 1000,
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                        "client": client[0] if client else None,
                    },
                )
            REQUEST_ID.reset(ctx)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (of the request being served, or None) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, access fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _ACCESS_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message``."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        t = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = f"{t} {record.levelname} {record.name}{f' [{rid}]' if rid else ''}: "
        line += record.getMessage()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def log_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for uvicorn and the service, in every worker.

    uvicorn's access logger is silenced (see the module doc); its error
    logger and the service's loggers go to stderr in ``log_format``
    (``text`` or ``json``).
    """
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "main",
        "filters": ["request_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"main": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "evidence_ledger": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
