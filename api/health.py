"""Health, readiness and metrics endpoints (outside ``/v1/``, not in the OpenAPI).

``GET /healthz``: the process answers (no database access). ``GET /readyz``:
the readiness checks of :meth:`ledger.services.operations.OperationsService.readiness`;
200 when ready, 503 with a JSON reason otherwise. ``GET /metrics``: the
Prometheus text format (:mod:`api.metrics`), when the service serves it on
its main port.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.metrics import CONTENT_TYPE, Metrics
from ledger.offload import in_thread
from ledger.services import Services

__all__ = ["metrics_router", "router"]

router = APIRouter(include_in_schema=False)
metrics_router = APIRouter(include_in_schema=False)

_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process is up and its event loop answers."""
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: database, sealer, publication lag (see the module doc)."""
    state = request.app.state
    services: Services = state.services
    sealer = state.sealer.state(state.ops.max_lag) if state.sealer is not None else None
    result = await in_thread(
        services.operations.readiness, sealer=sealer, max_lag=state.ops.max_lag
    )
    if result.ready:
        return JSONResponse({"status": "ok", "checks": result.checks}, headers=_NO_STORE)
    body = {"status": "unavailable", "reason": result.reason, "checks": result.checks}
    return JSONResponse(body, status_code=503, headers=_NO_STORE)


@metrics_router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Every metric of every worker, in the Prometheus text format."""
    m: Metrics = request.app.state.metrics
    return Response(await in_thread(m.render), media_type=CONTENT_TYPE, headers=_NO_STORE)
