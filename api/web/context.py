"""Per-request state of a page: language, session, CSRF token, cookies to set.

The session cookie holds a random id (see :mod:`ledger.services.sessions`);
it is HttpOnly and SameSite=Strict, and Secure with the ``__Host-`` prefix
when the service is reached over HTTPS. Forms of a signed-in user carry the
session's CSRF token; anonymous forms (login, verification) carry a random
token that is also in an HttpOnly SameSite=Strict cookie (double submit).
A state-changing request must also come from this origin when the browser
says where it comes from (``Origin``).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from fastapi import HTTPException, Request
from starlette.responses import Response

from api.web.i18n import LOCALES, negotiate
from ledger.services.policy import Actor
from ledger.services.sessions import Session, Sessions

__all__ = [
    "CSRF_COOKIE",
    "LANG_COOKIE",
    "LoginRequired",
    "WebState",
    "check_csrf",
    "check_origin",
    "login_url",
    "require_actor",
    "safe_next",
    "session_cookie",
    "web_state",
]

LANG_COOKIE = "el_lang"
CSRF_COOKIE = "el_csrf"
_SESSION = "el_session"
_SECURE_SESSION = "__Host-el_session"
_YEAR = 365 * 24 * 3600


class LoginRequired(Exception):
    """The page needs a signed-in user (or the session has ended)."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


@dataclass(slots=True)
class WebState:
    """What a page knows about its request; cookies are written by ``apply``."""

    lang: str
    https: bool
    session: Session | None
    session_id: str | None
    anon_csrf: str
    set_lang: bool = False
    set_anon_csrf: bool = False
    new_session: str | None = None
    clear_session: bool = False
    extra_cookies: dict[str, str] = field(default_factory=dict)

    @property
    def csrf(self) -> str:
        """The token this request's forms carry."""
        return self.session.csrf if self.session is not None else self.anon_csrf

    def apply(self, response: Response) -> None:
        """Write the cookies this request changed onto ``response``."""
        secure = self.https
        if self.set_lang:
            response.set_cookie(
                LANG_COOKIE, self.lang, max_age=_YEAR, httponly=True, samesite="lax", secure=secure
            )
        if self.set_anon_csrf:
            response.set_cookie(
                CSRF_COOKIE, self.anon_csrf, httponly=True, samesite="strict", secure=secure
            )
        name = session_cookie(self.https)
        if self.new_session is not None:
            response.set_cookie(
                name, self.new_session, httponly=True, samesite="strict", secure=secure, path="/"
            )
        elif self.clear_session:
            response.delete_cookie(name, httponly=True, samesite="strict", secure=secure, path="/")


def session_cookie(https: bool) -> str:
    """The session cookie's name: ``__Host-`` prefixed (Secure, Path=/) over HTTPS."""
    return _SECURE_SESSION if https else _SESSION


def web_state(request: Request) -> WebState:
    """The page state of ``request``, computed once (it may read the session)."""
    cached: WebState | None = getattr(request.state, "web", None)
    if cached is not None:
        return cached
    explicit = request.query_params.get("lang")
    if explicit not in LOCALES:
        explicit = None
    cookie_lang = request.cookies.get(LANG_COOKIE)
    lang = negotiate(explicit, cookie_lang, request.headers.get("accept-language"))
    https = request.url.scheme == "https"
    sessions: Sessions = request.app.state.web.sessions
    session_id = request.cookies.get(session_cookie(https))
    session = sessions.resume(session_id) if session_id else None
    anon = request.cookies.get(CSRF_COOKIE, "")
    fresh_anon = not (20 <= len(anon) <= 64)
    state = WebState(
        lang=lang,
        https=https,
        session=session,
        session_id=session_id if session is not None else None,
        anon_csrf=secrets.token_urlsafe(32) if fresh_anon else anon,
        set_lang=explicit is not None and explicit != cookie_lang,
        set_anon_csrf=fresh_anon,
        clear_session=bool(session_id) and session is None,
    )
    request.state.web = state
    return state


def safe_next(value: str | None, default: str = "/console") -> str:
    """A local path to return to after login; anything else becomes ``default``."""
    if not value or len(value) > 1000 or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 0x20 for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def login_url(request: Request) -> str:
    """``/login?next=<this page>`` (for a GET) or the page the form was on."""
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.method != "GET":
        referer = request.headers.get("referer", "")
        parts = urlsplit(referer)
        same = parts.netloc == request.url.netloc
        target = (parts.path + ("?" + parts.query if parts.query else "")) if same else "/console"
    return "/login?next=" + quote(safe_next(target), safe="/")


def check_origin(request: Request) -> None:
    """Refuse (403) a request a browser says comes from another origin.

    No ``Origin`` header means a non-browser client (or an old browser): the
    CSRF token still has to match.
    """
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise HTTPException(403, "csrf: the request comes from another origin")


def check_csrf(request: Request, token: str | None) -> None:
    """Refuse (403) a state-changing request without this request's CSRF token
    or from another origin."""
    state = web_state(request)
    check_origin(request)
    expected = state.session.csrf if state.session is not None else request.cookies.get(CSRF_COOKIE)
    if not token or not expected or not hmac.compare_digest(token, expected):
        raise HTTPException(403, "csrf: missing or wrong form token; reload the page and retry")


def require_actor(request: Request, *roles: str) -> Actor:
    """The signed-in account as the services' :class:`Actor`.

    No session: :class:`LoginRequired` (the page redirects to ``/login`` and
    back). A session of another role: 403. The services check again, so a
    page cannot do what the API would refuse.
    """
    state = web_state(request)
    if state.session is None:
        raise LoginRequired(login_url(request))
    if roles and state.session.role not in roles:
        raise HTTPException(403, f"page: this page is for {' or '.join(roles)} accounts")
    s = state.session
    return Actor(account_id=s.account_id, role=s.role, name=s.name)


def client_address(request: Request) -> str:
    """The client's address as the service sees it (behind a trusted proxy, the
    forwarded one: api.proxies), the key of its rate-limit buckets."""
    return request.client.host if request.client else "unknown"
