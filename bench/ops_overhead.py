"""CPU cost per request of request ids, metrics and JSON access logs, in process.

    python bench/ops_overhead.py [--requests 50000]

Calls a trivial ASGI endpoint directly (no network, no database) bare, then
wrapped in :class:`api.observability.RequestContext` with metrics recorded in
prometheus-client's multiprocess mode (as under ``serve``) and with the JSON
access log written to /dev/null, and prints microseconds per request side by
side. ``bench/api_load.py --only hash --ops-overhead`` measures the same on
the real service, where the machine's load makes differences of a few
percent hard to see.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="ops-bench-"))

# Imported after the multiprocess directory is set: prometheus-client reads it on import.
from api.metrics import Metrics
from api.observability import RequestContext, log_config
from bench.common import fresh_home
from ledger.core import Ledger
from ledger.services import Services


class _Route:
    path = "/v1/evidence"


async def endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = _Route
    await send({"type": "http.response.start", "status": 201, "headers": [(b"a", b"b")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def run(app: Any, n: int) -> float:
    scope = {"type": "http", "method": "POST", "path": "/v1/evidence", "client": ("1.2.3.4", 5)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        return None

    started = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=50_000)
    a = ap.parse_args()
    cfg = log_config("json")
    cfg["handlers"]["stderr"]["stream"] = open(os.devnull, "w")  # noqa: SIM115
    logging.config.dictConfig(cfg)
    with Ledger.init(fresh_home("ops-overhead"), "bench.local/ops") as ledger:
        metrics = Metrics(Services(ledger))
        apps = {
            "bare": endpoint,
            "request id + metrics": RequestContext(endpoint, metrics, access=False),
            "request id + metrics + JSON access log": RequestContext(endpoint, metrics, True),
        }
        results = {}
        for name, app in apps.items():
            asyncio.run(run(app, 2000))  # warm up
            results[name] = min(asyncio.run(run(app, a.requests)) for _ in range(3))
        bare = results["bare"]
        print(
            " | ".join(
                f"{name}: {us:.1f} us/request" + (f" (+{us - bare:.1f})" if name != "bare" else "")
                for name, us in results.items()
            )
        )


if __name__ == "__main__":
    main()
