"""Public pages: landing, login and logout, verification, the log, API docs, assets."""

from __future__ import annotations

import base64
import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from api.certificates import MAX_VERIFY_BYTES, VERIFY_PARTS
from api.upload import TempSink, read_multipart
from api.web import adapter, csp
from api.web.context import check_csrf, check_origin, client_address, safe_next, web_state
from api.web.errors import WebRoute
from api.web.i18n import N_, Formatter, translations
from api.web.render import STATIC_DIR, redirect, render
from ledger.core import Ledger
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.services import RateLimiter, Services
from ledger.services.passwords import MAX_PASSWORD
from ledger.services.sessions import LoginFailed
from verifier.report import Report, dumps, render_json, render_text, title

__all__ = ["HOME_BY_ROLE", "router"]

router = APIRouter(route_class=WebRoute, include_in_schema=False)

HOME_BY_ROLE = {"rights_holder": "/console", "notary": "/notary", "admin": "/admin"}


def _ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _limit(limiter: RateLimiter, request: Request, what: str) -> None:
    """Count this request against ``limiter`` (blocking: a database write)."""
    wait = limiter.take(client_address(request))
    if wait:
        raise HTTPException(
            429, f"{what}: too many requests", headers={"Retry-After": str(int(wait) + 1)}
        )


def _t(request: Request, message: str) -> str:
    return translations(web_state(request).lang).gettext(message)


# -- landing, login, logout ---------------------------------------------------------


@router.get("/")
def landing(request: Request) -> Response:
    """What the platform does, with links to verify and to log in."""
    state = web_state(request)
    try:
        overview = adapter.log_overview(_services(request))
    except NotFound:
        overview = None
    home = HOME_BY_ROLE.get(state.session.role, "/log") if state.session else "/login"
    return render(request, "landing.html", {"overview": overview, "home_url": home})


@router.get("/login")
def login_form(request: Request, next: str | None = None, expired: bool = False) -> Response:
    """The login form (an account's API token)."""
    state = web_state(request)
    if state.session is not None and next is None:
        return redirect(request, HOME_BY_ROLE.get(state.session.role, "/"))
    target = safe_next(next, "")
    context = {"next": target, "error": None, "expired": expired, "username": ""}
    return render(request, "login.html", context)


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form(max_length=300)] = "",
    username: Annotated[str, Form(max_length=1000)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Open a session for the account whose API token was given, or whose name
    and password were (wrong ones are rate-limited per client address and per
    name)."""
    guard = _services(request).limits.login
    username = username.strip()
    keys = [client_address(request)] + ([f"name:{username}"] if username and not token else [])
    wait = max(guard.wait(k) for k in keys)
    if wait:
        raise HTTPException(
            429, "login: too many wrong attempts", headers={"Retry-After": str(int(wait) + 1)}
        )
    check_csrf(request, csrf)
    state = web_state(request)
    sessions = request.app.state.web.sessions
    try:
        if token.strip():
            session_id, session = sessions.login(token)
        elif username and password:
            actor = _services(request).passwords.login(username, password)
            if actor is None:
                raise LoginFailed("login: unknown name or wrong password")
            session_id, session = sessions.open(actor.account_id)
        else:
            raise LoginFailed("login: give a token, or a name and password")
    except LoginFailed:
        for k in keys:
            guard.take(k)
        if token.strip():
            error = _t(request, "This token is unknown or has been revoked.")
        elif username and password:
            error = _t(request, "This name and password do not match an account.")
        else:
            error = _t(request, "Give your API token, or your name and password.")
        return render(
            request,
            "login.html",
            {"next": safe_next(next, ""), "error": error, "expired": False, "username": username},
            status=401,
        )
    if state.session_id is not None:
        sessions.end(state.session_id)
    state.new_session = session_id
    state.session = session
    return redirect(request, safe_next(next, HOME_BY_ROLE.get(session.role, "/")))


@router.get("/logout")
def logout_form(request: Request) -> Response:
    """A confirmation form (logging out changes state, so it is a POST)."""
    return render(request, "logout.html")


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    """End this session."""
    state = web_state(request)
    if state.session_id is not None:
        check_csrf(request, csrf)
        request.app.state.web.sessions.end(state.session_id)
    state.session = None
    state.session_id = None
    state.clear_session = True
    return redirect(request, "/logout")


# -- 在线验真 ------------------------------------------------------------------------


_STATUS = {
    "passed": N_("Passed"),
    "failed": N_("Failed"),
    "skipped": N_("Could not check"),
    "not_applicable": N_("Not applicable"),
    "not_checked": N_("Not checked"),
}
_FACTS = {
    "certificate_id": N_("Certificate id"),
    "deposit_no": N_("Deposit number"),
    "evidence_id": N_("Evidence id"),
    "title": N_("Title"),
    "sha256": "SHA-256",
    "issuer": N_("Issued by"),
    "issued_at": N_("Issued at"),
}


def _data_url(media: str, text: str) -> str:
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f"data:{media};charset=utf-8;base64,{encoded}"


def _report_context(request: Request, report: Report) -> dict[str, Any]:
    lang = web_state(request).lang
    fmt = Formatter(lang)
    checks = [
        {
            "status": c.status,
            "status_text": _t(request, _STATUS.get(c.status, c.status)),
            "title": title(c.key, lang),
            "subject": c.subject,
            "reason": c.text(lang),
        }
        for c in report.checks
    ]
    facts = []
    for key, label in _FACTS.items():
        value = report.facts.get(key)
        if value is None:
            continue
        shown = fmt.datetime(value) if key == "issued_at" else value
        facts.append((_t(request, label), shown))
    return {
        "report": report,
        "checks": checks,
        "facts": facts,
        "report_text_url": _data_url("text/plain", render_text(report, lang)),
        "report_json_url": _data_url("application/json", dumps(render_json(report, lang)) + "\n"),
    }


@router.get("/verify")
def verify_form(request: Request) -> Response:
    """Verification forms: a package, a certificate and files, or a deposit number."""
    return render(request, "verify.html", {"report": None, "check": None}, policy=(csp.HASHING,))


@router.post("/verify")
async def verify(request: Request) -> Response:
    """Verify an uploaded package, or a certificate with its evidence files."""
    await run_in_threadpool(_limit, _services(request).limits.verify, request, "verify")
    await run_in_threadpool(web_state, request)
    check_origin(request)  # before reading the body; the token is checked after
    upload = await read_multipart(request, TempSink, MAX_VERIFY_BYTES, VERIFY_PARTS, {"csrf": 100})
    try:
        check_csrf(request, upload.fields.get("csrf"))
        for f in upload.files:
            f.path = await run_in_threadpool(f.writer.commit)
        packages = adapter.upload_paths(upload, "package")
        certificates = adapter.upload_paths(upload, "certificate")
        if not packages and not certificates:
            raise InvalidInput("verify: choose an evidence package, or a certificate")
        if packages and certificates:
            raise InvalidInput("verify: choose a package or a certificate, not both")
        report = await run_in_threadpool(
            adapter.verify_files,
            _services(request),
            packages[0] if packages else None,
            certificates[0] if certificates else None,
            adapter.upload_paths(upload, "evidence"),
        )
    finally:
        upload.abort()
    context = {"check": None, **_report_context(request, report)}
    return render(request, "verify.html", context, policy=(csp.HASHING,))


@router.post("/verify/deposit")
def verify_deposit(
    request: Request,
    deposit_no: Annotated[str, Form(max_length=40)],
    sha256: Annotated[str, Form(max_length=64)],
    sm3: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """核验通过 / 比对不一致 / 尚未存证 for a deposit number and a file's digests."""
    _limit(_services(request).limits.check, request, "check")
    check_csrf(request, csrf)
    result = adapter.check_deposit(_ledger(request), deposit_no, sha256, sm3 or None)
    return render(
        request,
        "verify.html",
        {"report": None, "check": result, "deposit_no": result.deposit_no},
        policy=(csp.HASHING,),
    )


# -- the public log ------------------------------------------------------------------


@router.get("/log")
def log_page(
    request: Request,
    old: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    new: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> Response:
    """The latest checkpoint, witnesses, timestamp, and a consistency check."""
    overview = adapter.log_overview(_services(request))
    proof = None
    proof_error = None
    if old is not None and new is not None:
        try:
            proof = adapter.consistency(_services(request), old, new)
        except LedgerError as e:
            proof_error = _t(request, "No consistency proof between these sizes:") + f" {e}"
    context = {"o": overview, "old": old, "new": new, "proof": proof, "proof_error": proof_error}
    return render(request, "log.html", context)


# -- API documentation and assets -----------------------------------------------------


@router.get("/docs")
def docs(request: Request) -> Response:
    """Swagger UI from vendored assets: renders with no network beyond this service."""
    return render(
        request, "docs.html", {"openapi_url": request.app.openapi_url}, policy=(csp.SWAGGER,)
    )


_STATIC_ROOT = STATIC_DIR.resolve()
_STATIC_HEADERS = csp.headers(csp.HASHING)


@router.get("/static/{name:path}")
def static(name: str, request: Request) -> Response:
    """A vendored or own asset. Versioned URLs (``?v=``) are cached for a year."""
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(_STATIC_ROOT) or not path.is_file() or path.name.startswith("."):
        raise HTTPException(404, f"static: no asset {name!r}")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".js":
        media = "text/javascript"
    cache = "public, max-age=31536000, immutable" if "v" in request.query_params else "no-cache"
    headers = {**_STATIC_HEADERS, "Cache-Control": cache}
    return FileResponse(path, media_type=media, headers=headers)
