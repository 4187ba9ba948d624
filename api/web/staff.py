"""``/notary``, ``/admin`` and the public certificate status ``/c/{certificate_id}``.

Notaries review evidence, issue certificates, reject requests and revoke;
admins manage accounts and watch sealing, publication and anchoring. The
services decide who may do what; a page only chooses what to show.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from api.web import adapter
from api.web.console import PAGE, _filters
from api.web.context import check_csrf, require_actor
from api.web.errors import WebRoute
from api.web.render import redirect, render
from ledger.services import ROLES

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)


# -- notary ------------------------------------------------------------------------------


@router.get("/notary")
def notary(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    kind: Annotated[str, Query(max_length=10)] = "",
    cursor: Annotated[int, Query(ge=0, le=2**53)] = 0,
) -> Response:
    """The request queue, the evidence to review and the certificates issued."""
    actor = require_actor(request, "notary")
    services = adapter.services_of(request)
    page = adapter.evidence_page(services, actor, _filters(q, kind, "", ""), cursor, PAGE)
    next_url = None
    if page.next_cursor is not None:
        next_url = "/notary?" + urlencode({"q": q, "kind": kind, "cursor": page.next_cursor})
    context = {
        "pending": adapter.request_queue(services, actor),
        "issued": adapter.issued_by(services, actor),
        "page": page,
        "query": {"q": q, "kind": kind},
        "next_url": next_url,
    }
    return render(request, "notary.html", context)


@router.get("/notary/evidence/{evidence_id}")
def review(
    request: Request,
    evidence_id: str,
    request_id: Annotated[str, Query(alias="request", max_length=64)] = "",
) -> Response:
    """Review page: facts, capture screenshot, seal and anchoring, the requests;
    issue (closing the request reviewed) or reject, revoke."""
    actor = require_actor(request, "notary")
    view = adapter.evidence_view(adapter.services_of(request), actor, evidence_id)
    reviewed = next((r for r in view.requests if r.request_id == request_id), None)
    return render(request, "review.html", {"v": view, "actor": actor, "reviewed": reviewed})


@router.post("/notary/evidence/{evidence_id}/issue")
def issue(
    request: Request,
    evidence_id: str,
    statement: Annotated[str, Form(max_length=4000)] = "",
    request_id: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Issue a certificate signed with this notary's key (closing the request)."""
    actor = require_actor(request, "notary")
    check_csrf(request, csrf)
    cid = adapter.issue(
        adapter.services_of(request),
        actor,
        evidence_id,
        statement.strip() or None,
        request_id or None,
    )
    return redirect(request, f"/notary/evidence/{evidence_id}?issued={cid}")


@router.post("/notary/requests/{request_id}/reject")
def reject(
    request: Request,
    request_id: str,
    reason: Annotated[str, Form(min_length=1, max_length=1000)],
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Reject a certificate request, with the reason the rights holder will see."""
    actor = require_actor(request, "notary")
    check_csrf(request, csrf)
    adapter.reject_request(adapter.services_of(request), actor, request_id, reason.strip())
    return redirect(request, "/notary?rejected=1")


@router.post("/certificates/{certificate_id}/revoke")
def revoke(
    request: Request,
    certificate_id: str,
    reason: Annotated[str, Form(min_length=1, max_length=1000)],
    back: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Revoke a certificate (its notary or an admin), with a reason."""
    actor = require_actor(request, "notary", "admin")
    check_csrf(request, csrf)
    adapter.revoke(adapter.services_of(request), actor, certificate_id, reason.strip())
    return redirect(request, f"/c/{certificate_id}")


# -- admin -------------------------------------------------------------------------------


@router.get("/admin")
def admin(request: Request) -> Response:
    """Accounts, anchoring health, sealing and publication lag."""
    actor = require_actor(request, "admin")
    services = adapter.services_of(request)
    context = {
        "accounts": adapter.accounts(services, actor),
        "health": adapter.health(services, actor),
        "roles": ROLES,
        "created": None,
    }
    return render(request, "admin.html", context)


@router.post("/admin/accounts")
def create_account(
    request: Request,
    role: Annotated[str, Form(max_length=20)],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Create an account; the page shows its token this once."""
    actor = require_actor(request, "admin")
    check_csrf(request, csrf)
    services = adapter.services_of(request)
    created = adapter.create_account(services, actor, role, name)
    context = {
        "accounts": adapter.accounts(services, actor),
        "health": adapter.health(services, actor),
        "roles": ROLES,
        "created": created,
    }
    return render(request, "admin.html", context, status=201)


@router.post("/admin/accounts/{account_id}/revoke")
def revoke_account(
    request: Request, account_id: str, csrf: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    """Revoke an account: its API token stops working and its sessions end."""
    actor = require_actor(request, "admin")
    check_csrf(request, csrf)
    adapter.revoke_account(
        adapter.services_of(request), request.app.state.web.sessions, actor, account_id
    )
    return redirect(request, "/admin#accounts")


# -- public certificate status -------------------------------------------------------------


@router.get("/c/{certificate_id}")
def certificate_status(request: Request, certificate_id: str) -> Response:
    """Valid or revoked, issuer, issue time, deposit number, log checkpoint."""
    cert = adapter.certificate_public(adapter.services_of(request), certificate_id)
    return render(request, "certificate.html", {"c": cert})
