"""``/account``: any signed-in account sets or clears its own password.

The password service decides (the current token or password is required,
only a hash is kept); wrong current credentials count against the same
per-address budget as wrong logins.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from starlette.responses import Response

from api.web import adapter
from api.web.context import check_csrf, client_address, require_actor, web_state
from api.web.errors import WebRoute
from api.web.i18n import translations
from api.web.render import redirect, render
from ledger.errors import Conflict, Forbidden, InvalidInput
from ledger.services import RateLimiter
from ledger.services.passwords import MAX_PASSWORD, MIN_PASSWORD

__all__ = ["router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

_DONE = ("set", "cleared", "none")


def _page(
    request: Request, error: str | None = None, done: str = "", status: int = 200
) -> Response:
    actor = require_actor(request)
    services = adapter.services_of(request)
    context = {
        "has_password": services.passwords.has_password(actor),
        "done": done if done in _DONE else "",
        "error": error,
        "min_password": MIN_PASSWORD,
        "max_password": MAX_PASSWORD,
    }
    return render(request, "account.html", context, status=status)


@router.get("/account")
def account(request: Request, done: Annotated[str, Query(max_length=10)] = "") -> Response:
    """Whether this account has a password, and forms to set or clear it."""
    return _page(request, done=done)


def _guarded(request: Request) -> RateLimiter:
    guard = adapter.services_of(request).limits.login
    wait = guard.wait(client_address(request))
    if wait:
        raise HTTPException(
            429, "account: too many wrong attempts", headers={"Retry-After": str(int(wait) + 1)}
        )
    return guard


def _refused(request: Request, guard: RateLimiter, e: Exception) -> Response:
    gettext = translations(web_state(request).lang).gettext
    if isinstance(e, Forbidden):
        guard.take(client_address(request))
        return _page(request, gettext("Your current token or password is not right."), status=403)
    if isinstance(e, Conflict):
        message = gettext("Another account with the same name already logs in with a password.")
        return _page(request, message, status=409)
    return _page(
        request,
        gettext("Use %(min)d to %(max)d characters.") % {"min": MIN_PASSWORD, "max": MAX_PASSWORD},
        status=400,
    )


@router.post("/account/password")
def set_password(
    request: Request,
    current: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    new: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    confirm: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Set or change this account's password."""
    actor = require_actor(request)
    check_csrf(request, csrf)
    guard = _guarded(request)
    if new != confirm:
        gettext = translations(web_state(request).lang).gettext
        return _page(request, gettext("The two new passwords differ."), status=400)
    try:
        adapter.services_of(request).passwords.set(actor, new, current)
    except (Forbidden, Conflict, InvalidInput) as e:
        return _refused(request, guard, e)
    return redirect(request, "/account?done=set")


@router.post("/account/password/clear")
def clear_password(
    request: Request,
    current: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Remove this account's password (its token still logs in)."""
    actor = require_actor(request)
    check_csrf(request, csrf)
    guard = _guarded(request)
    try:
        cleared = adapter.services_of(request).passwords.clear(actor, current)
    except (Forbidden, InvalidInput) as e:
        return _refused(request, guard, e)
    return redirect(request, "/account?done=" + ("cleared" if cleared else "none"))
