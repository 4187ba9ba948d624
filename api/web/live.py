"""``/console/live``: interactive capture (交互式取证) in the console.

The rights holder opens a page in the platform's clean capture browser and
drives it from here: the page script (``static/js/live.js``) asks for the
latest screencast frame (``GET /console/live/frame``, a long poll), shows
it, and sends mouse and keyboard input as JSON (``POST /console/live/input``,
CSRF token in ``X-CSRF-Token``). The state (``GET /console/live/state``)
gives the capture's UTC clock and what was logged; asking for frames or
state keeps the session alive, so closing the page abandons it.
*Finish* and *abandon* are plain forms. Everything goes through
:class:`ledger.services.interactive.InteractiveService`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import JSONResponse, Response

from api.web import adapter, csp
from api.web.context import check_csrf, require_actor
from api.web.errors import WebRoute
from api.web.render import finish, redirect, render
from ledger.errors import InvalidInput, NotFound

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

HOLDER = "rights_holder"
MAX_INPUT_BODY = 64 * 1024
FRAME_WAIT = 2.0
"""Seconds a frame request waits for a newer frame."""
# The page shows frames fetched by its script as blob: URLs.
LIVE: csp.Policy = {"img-src": ("blob:",)}


def _json(request: Request, data: dict[str, Any], status: int = 200) -> Response:
    response = JSONResponse(data, status_code=status)
    finish(request, response)
    return response


@router.get("/console/live")
def live_page(request: Request) -> Response:
    """The start form, or the session being driven."""
    actor = require_actor(request, HOLDER)
    services = adapter.services_of(request)
    try:
        session = services.interactive.get(actor)
    except NotFound:
        session = None
    state = session.state() if session is not None else None
    return render(request, "live.html", {"s": state}, policy=(LIVE,))


@router.post("/console/live")
def live_start(
    request: Request,
    url: Annotated[str, Form(max_length=2000)],
    title: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Start an interactive capture of ``url`` (409 while another one is open)."""
    actor = require_actor(request, HOLDER)
    check_csrf(request, csrf)
    adapter.services_of(request).interactive.start(actor, url, title.strip() or None)
    return redirect(request, "/console/live")


@router.get("/console/live/state")
def live_state(request: Request) -> Response:
    """Status, the capture's UTC clock, seconds left, inputs logged (JSON)."""
    actor = require_actor(request, HOLDER)
    return _json(request, adapter.services_of(request).interactive.state(actor))


@router.get("/console/live/frame")
def live_frame(request: Request, after: Annotated[int, Query(ge=0, le=2**53)] = 0) -> Response:
    """The latest frame newer than ``after`` (JPEG, ``X-Frame-Seq``); 204 when
    none came within :data:`FRAME_WAIT` seconds."""
    actor = require_actor(request, HOLDER)
    frame = adapter.services_of(request).interactive.frame(actor, after, FRAME_WAIT)
    if frame is None:
        response = Response(status_code=204)
    else:
        response = Response(
            frame.jpeg,
            media_type="image/jpeg",
            headers={"X-Frame-Seq": str(frame.seq), "X-Frame-Time": frame.at},
        )
    finish(request, response)
    return response


@router.post("/console/live/input")
async def live_input(request: Request) -> Response:
    """Input actions as JSON ``{"events": [...]}`` (each validated; 400 names
    the first bad one)."""
    actor = require_actor(request, HOLDER)
    check_csrf(request, request.headers.get("x-csrf-token"))
    body = await request.body()
    if len(body) > MAX_INPUT_BODY:
        raise InvalidInput(f"live: input bodies are at most {MAX_INPUT_BODY} bytes")
    try:
        data = json.loads(body)
    except ValueError as e:
        raise InvalidInput("live: the body is not JSON") from e
    if not isinstance(data, dict) or set(data) != {"events"}:
        raise InvalidInput('live: send {"events": [...]}')
    services = adapter.services_of(request)
    queued = services.interactive.send(actor, data["events"])
    return _json(request, {"queued": queued})


@router.post("/console/live/finish")
def live_finish(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    """End the session and deposit the recording; go to the deposit."""
    actor = require_actor(request, HOLDER)
    check_csrf(request, csrf)
    receipt = adapter.services_of(request).interactive.finish(actor)
    return redirect(request, f"/console/evidence/{receipt['evidence_id']}")


@router.post("/console/live/abandon")
def live_abandon(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    """End the session; nothing of it is kept."""
    actor = require_actor(request, HOLDER)
    check_csrf(request, csrf)
    adapter.services_of(request).interactive.abandon(actor)
    return redirect(request, "/console?abandoned=1")
