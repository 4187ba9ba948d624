"""Errors as pages: the API's problem details, shown in the user's language.

Every web route is a :class:`WebRoute`: whatever a page raises is turned into
the same RFC 9457 problem the JSON API would answer (``api.problems``), then
rendered as a page with a translated title and the problem's detail. A page
that needs a signed-in user and has none redirects to ``/login`` and back.
Paths that match no route answer an HTML page to browsers and problem JSON
to everyone else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api import problems
from api.web.context import LoginRequired, login_url, web_state
from api.web.render import redirect, render

__all__ = ["WebRoute", "error_page", "install_fallback"]

log = logging.getLogger("evidence_ledger.web")

# Paths served by the JSON API and the tlog-tiles endpoints: never HTML errors.
_API_PREFIXES = ("/v1/", "/tile/", "/checkpoint", "/add-checkpoint", "/openapi.json")


def _problem_body(response: Response) -> dict[str, Any]:
    body = json.loads(bytes(response.body))
    return body if isinstance(body, dict) else {}


def error_page(request: Request, problem: Response) -> Response:
    """The page for a problem response (same status and headers, HTML body)."""
    body = _problem_body(problem)
    status = int(body.get("status", problem.status_code))
    keep = {k: v for k, v in problem.headers.items() if k.lower() in ("retry-after", "allow")}
    try:
        return render(
            request,
            "error.html",
            {"status": status, "problem": body, "problem_json": json.dumps(body, indent=2)},
            status=status,
            headers=keep,
        )
    except Exception:  # the page itself failed: the problem JSON still answers
        log.exception("error page for %s failed", request.url.path)
        return problem


async def _page_for(request: Request, e: Exception) -> Response:
    if isinstance(e, LoginRequired):
        # A cookie that named a session which has ended: say so on the login page.
        ended = "&expired=1" if web_state(request).clear_session else ""
        return redirect(request, login_url(request) + ended)
    response = problems.problem_for(e)
    if response is None:
        log.exception("page %s failed", request.url.path, exc_info=e)
        response = problems.problem(500, "Internal Server Error", "the page could not be built")
    return error_page(request, response)


class WebRoute(APIRoute):
    """A route whose errors become pages (and missing sessions a login redirect)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as e:  # every failure becomes a page, never a traceback
                return await _page_for(request, e)

        return run


def _wants_html(request: Request) -> bool:
    if request.url.path.startswith(_API_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def install_fallback(app: FastAPI) -> None:
    """Answer unmatched paths with a page for browsers, problem JSON otherwise."""
    api_handler = app.exception_handlers.get(StarletteHTTPException)

    async def http_error(request: Request, e: Exception) -> Response:
        assert isinstance(e, StarletteHTTPException)
        if _wants_html(request):
            return error_page(request, problems.http_problem(e))
        if api_handler is not None:
            result = api_handler(request, e)
            if isinstance(result, Awaitable):
                return await result
            return result
        return problems.http_problem(e)

    app.add_exception_handler(StarletteHTTPException, http_error)
