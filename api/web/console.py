"""``/console``: the rights holder's pages (在线存证, 在线取证, my evidence, certificates).

Every action goes through :mod:`api.web.adapter` to the services, acting as
the signed-in account. File deposits go through the JSON API's own deposit
function (:func:`api.evidence.deposit_request`): the page's script streams
each file in its own request with a progress bar; without JavaScript the
form posts them all at once.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from api.evidence import CONTENT_HEADERS, deposit_request
from api.web import adapter, csp
from api.web.context import check_csrf, check_origin, require_actor
from api.web.errors import WebRoute
from api.web.render import finish, redirect, render
from ledger.errors import InvalidInput
from ledger.services import EvidenceFilter
from ledger.services.captures import parse_start_at

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

HOLDER = "rights_holder"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_DEPOSIT_NO = re.compile(r"^EL-[0-9]{8}-[0-9]{10}$", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")
PAGE = 50


def _filters(q: str, kind: str, since: str, until: str) -> EvidenceFilter:
    """One search box: a deposit number, a SHA-256, or words of a title."""
    q = q.strip()
    if kind and kind not in ("file", "hash", "capture"):
        raise InvalidInput("list: kind must be file, hash or capture")
    for value in (since, until):
        if value and not _DATE.match(value):
            raise InvalidInput("list: dates look like 2026-01-31")
    return EvidenceFilter(
        since=f"{since}T00:00:00Z" if since else None,
        until=f"{until}T23:59:59.999999Z" if until else None,
        title=q if q and not _HEX64.match(q) and not _DEPOSIT_NO.match(q) else None,
        sha256=q.lower() if _HEX64.match(q) else None,
        deposit_no=q.upper() if _DEPOSIT_NO.match(q) else None,
        kind=kind or None,
    )


@router.get("/console")
def console(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    kind: Annotated[str, Query(max_length=10)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    cursor: Annotated[int, Query(ge=0, le=2**53)] = 0,
) -> Response:
    """Deposit forms, capture form and the rights holder's evidence list."""
    actor = require_actor(request, HOLDER)
    services = adapter.services_of(request)
    page = adapter.evidence_page(services, actor, _filters(q, kind, since, until), cursor, PAGE)
    query = {"q": q, "kind": kind, "since": since, "until": until}
    next_url = None
    if page.next_cursor is not None:
        next_url = "/console?" + urlencode({**query, "cursor": page.next_cursor})
    context = {
        "page": page,
        "query": query,
        "cursor": cursor,
        "next_url": next_url,
        "first_url": "/console?" + urlencode(query) if cursor else None,
        "max_upload": services.ledger.config.max_upload_bytes,
    }
    return render(request, "console.html", context, policy=(csp.HASHING,))


@router.post("/console/deposit")
async def deposit_files(request: Request) -> Response:
    """Stream uploaded files into deposits (the API's deposit function).

    The script sends the CSRF token in ``X-CSRF-Token`` and reads JSON; the
    plain form (no script) sends it as ``?csrf=`` and gets the receipts page.
    """
    actor = await run_in_threadpool(require_actor, request, HOLDER)
    check_origin(request)
    token = request.headers.get("x-csrf-token") or request.query_params.get("csrf")
    check_csrf(request, token)
    services = adapter.services_of(request)
    response = await deposit_request(request, services, actor)
    if "application/json" in request.headers.get("accept", ""):
        finish(request, response)
        return response
    result = json.loads(bytes(response.body))
    return render(request, "receipts.html", {"receipts": result["receipts"]})


@router.post("/console/deposit-hash")
def deposit_hash(
    request: Request,
    sha256: Annotated[str, Form(max_length=64)],
    sm3: Annotated[str, Form(max_length=64)] = "",
    title: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Hash-only deposit: the digests computed in the browser, never the file."""
    actor = require_actor(request, HOLDER)
    check_csrf(request, csrf)
    receipts = adapter.deposit_hash(
        adapter.services_of(request), actor, sha256.strip().lower(), sm3.strip().lower(), title
    )
    return render(request, "receipts.html", {"receipts": receipts})


@router.get("/console/evidence/{evidence_id}")
def evidence(request: Request, evidence_id: str) -> Response:
    """One deposit: facts, status timeline, proof, content, certificates."""
    actor = require_actor(request)
    services = adapter.services_of(request)
    view = adapter.evidence_view(services, actor, evidence_id)
    return render(request, "evidence.html", {"v": view, "actor": actor})


@router.get("/console/evidence/{evidence_id}/proof")
def proof(request: Request, evidence_id: str) -> Response:
    """The inclusion proof as C2SP tlog-proof text, to download."""
    actor = require_actor(request)
    text = adapter.services_of(request).evidence.tlog_proof(actor, evidence_id)
    response = Response(
        text,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="proof-{evidence_id[:16]}.txt"'},
    )
    finish(request, response)
    return response


@router.get("/console/evidence/{evidence_id}/content")
def content(request: Request, evidence_id: str) -> Response:
    """The deposited file itself."""
    actor = require_actor(request)
    found = adapter.services_of(request).evidence.content(actor, evidence_id)
    r = found.record
    name = quote((r.file_name or "evidence").replace('"', ""), safe="")
    response = StreamingResponse(
        found.chunks,
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(r.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
        },
    )
    finish(request, response)
    response.headers.update(CONTENT_HEADERS)  # the file's policy, not the page's
    return response


@router.post("/console/captures")
def capture(
    request: Request,
    url: Annotated[str, Form(max_length=2000)],
    title: Annotated[str, Form(max_length=1000)] = "",
    more_urls: Annotated[str, Form(max_length=40_000)] = "",
    start_at: Annotated[str, Form(max_length=40)] = "",
    tz_offset: Annotated[str, Form(max_length=6)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Ask the platform to capture web pages (在线取证): one now, or several
    and/or at a chosen time (the same service call as ``POST /v1/captures``
    with ``urls`` and ``start_at``)."""
    actor = require_actor(request, HOLDER)
    check_csrf(request, csrf)
    urls = [url.strip(), *(u.strip() for u in more_urls.splitlines() if u.strip())]
    when = _start_at(start_at.strip(), tz_offset.strip())
    services = adapter.services_of(request)
    if len(urls) == 1 and when is None:
        job = adapter.request_capture(services, actor, urls[0], title)
        return redirect(request, f"/console/captures/{job.job_id}")
    jobs = adapter.schedule_captures(services, actor, urls, title, when)
    if len(jobs) == 1:
        return redirect(request, f"/console/captures/{jobs[0].job_id}")
    return render(request, "capture_batch.html", {"jobs": jobs})


def _start_at(value: str, tz_offset: str) -> datetime | None:
    """The form's start time: RFC 3339 as typed, or the date picker's local
    time with the browser's offset in minutes (none: UTC)."""
    if not value:
        return None
    if not _LOCAL.fullmatch(value):
        return parse_start_at(value)
    if tz_offset and not re.fullmatch(r"[+-]?\d{1,4}", tz_offset):
        raise InvalidInput("capture: the time zone offset is not a number of minutes")
    minutes = int(tz_offset or "0")
    if not -14 * 60 <= minutes <= 14 * 60:
        raise InvalidInput("capture: the time zone offset is out of range")
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    seconds = value if len(value) > 16 else value + ":00"
    return parse_start_at(f"{seconds}{sign}{hours:02d}:{rest:02d}")


@router.get("/console/captures/{job_id}")
def capture_status(request: Request, job_id: str) -> Response:
    """A capture job: scheduled, queued, running, done (with its screenshot) or failed."""
    actor = require_actor(request)
    view = adapter.capture_view(adapter.services_of(request), actor, job_id)
    active = ("scheduled", "queued", "running")
    headers = {"Refresh": "2"} if view.job.status in active else None
    return render(request, "capture.html", {"c": view}, headers=headers)


@router.get("/console/captures/{job_id}/screenshot")
def capture_screenshot(request: Request, job_id: str) -> Response:
    """The capture's screenshot of the browser window (PNG)."""
    actor = require_actor(request)
    chunks = adapter.capture_artefact(
        adapter.services_of(request), actor, job_id, adapter.SCREENSHOT
    )
    response = StreamingResponse(chunks, media_type="image/png")
    finish(request, response)
    return response


@router.post("/console/evidence/{evidence_id}/request-certificate")
def request_certificate(
    request: Request,
    evidence_id: str,
    statement: Annotated[str, Form(max_length=4000)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Ask a notary for a certificate of sealed evidence."""
    actor = require_actor(request, HOLDER)
    check_csrf(request, csrf)
    adapter.request_certificate(
        adapter.services_of(request), actor, evidence_id, statement.strip() or None
    )
    return redirect(request, f"/console/evidence/{evidence_id}?requested=1")


@router.get("/console/certificates/{certificate_id}.json")
def certificate_json(request: Request, certificate_id: str) -> Response:
    """The certificate exactly as signed."""
    actor = require_actor(request)
    data = adapter.services_of(request).certificates.get(actor, certificate_id)
    response = Response(
        data,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="certificate-{certificate_id[:16]}.json"'
        },
    )
    finish(request, response)
    return response


@router.get("/console/certificates/{certificate_id}/package")
def certificate_package(request: Request, certificate_id: str) -> Response:
    """The evidence package (证据包) of a certificate."""
    actor = require_actor(request)
    spool = adapter.package_spool(adapter.services_of(request), actor, certificate_id)
    size = spool.seek(0, 2)
    spool.seek(0)

    def chunks() -> Any:
        with spool:
            while block := spool.read(1 << 20):
                yield block

    response = StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="evidence-{certificate_id[:16]}.zip"',
        },
    )
    finish(request, response)
    return response


@router.get("/console/evidence/{evidence_id}/artefacts/{name}")
def artefact(request: Request, evidence_id: str, name: str) -> Response:
    """An artefact of a capture deposit (the screenshot is shown on its page)."""
    actor = require_actor(request)
    if name not in adapter.IMAGES:
        raise HTTPException(404, f"capture: no artefact {name!r} to show")
    chunks = adapter.artefact_chunks(adapter.services_of(request), actor, evidence_id, name)
    response = StreamingResponse(chunks, media_type="image/png")
    finish(request, response)
    return response
