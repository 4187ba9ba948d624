"""RFC 9457 problem details for every error the service returns."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LedgerError,
    NotFound,
    StorageFull,
    TooLarge,
)

__all__ = ["install", "problem", "problem_for"]

PROBLEM = "application/problem+json"
_KNOWN = {s.value for s in HTTPStatus}


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _status(e: LedgerError) -> int:
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, Forbidden):
        return 403
    if isinstance(e, Conflict):
        return 409
    if isinstance(e, TooLarge):
        return 413
    if isinstance(e, InvalidInput):
        return 400
    if isinstance(e, StorageFull):
        return 507  # RFC 4918 §11.5: retry once space is freed
    return 503


def ledger_problem(e: LedgerError) -> JSONResponse:
    status = _status(e)
    title = {404: "Not Found", 507: "Insufficient Storage"}.get(status, "Request failed")
    return problem(status, title, str(e))


def http_problem(e: StarletteHTTPException) -> JSONResponse:
    title = HTTPStatus(e.status_code).phrase if e.status_code in _KNOWN else "Error"
    detail = None if str(e.detail) == title else str(e.detail)
    return problem(e.status_code, title, detail, headers=dict(e.headers or {}))


def validation_problem(e: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", ""))} for err in e.errors()
    ]
    return problem(422, "Invalid request", "the request did not match the schema", errors=errors)


def problem_for(e: BaseException) -> JSONResponse | None:
    """The problem response for an error a route may raise; None for a real fault."""
    if isinstance(e, LedgerError):
        return ledger_problem(e)
    if isinstance(e, StarletteHTTPException):
        return http_problem(e)
    if isinstance(e, RequestValidationError):
        return validation_problem(e)
    return None


def install(app: FastAPI) -> None:
    """Map ledger errors, HTTP errors and validation errors to problem JSON."""

    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, e: LedgerError) -> JSONResponse:
        return ledger_problem(e)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        return http_problem(e)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
        return validation_problem(e)
