"""Templates: one Jinja2 environment per language, and the page response.

Every page goes through :func:`render` (or :func:`redirect`), which adds the
Content-Security-Policy and the other security headers, writes the cookies
the request changed, and marks pages that show a user's data ``no-store``.
Deployers may override a template by putting a file of the same name in the
directory named by ``EVIDENCE_LEDGER_TEMPLATES``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse, RedirectResponse, Response

from api.web import csp
from api.web.context import web_state
from api.web.i18n import LOCALES, Formatter, translations
from verifier.display import escape_text

__all__ = ["STATIC_DIR", "TEMPLATE_DIR", "environment", "redirect", "render", "static_url"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


@cache
def static_url(name: str) -> str:
    """``/static/<name>?v=<digest>``: a changed file gets a new URL (long caching)."""
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file():
        raise ValueError(f"static: no file {name!r}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


def _loader() -> ChoiceLoader:
    paths = [str(TEMPLATE_DIR)]
    override = os.environ.get("EVIDENCE_LEDGER_TEMPLATES")
    if override:
        paths.insert(0, override)
    return ChoiceLoader([FileSystemLoader(p) for p in paths])


@cache
def environment(lang: str) -> Environment:
    """The template environment of ``lang``: its catalogue and formatters installed."""
    env = Environment(
        loader=_loader(),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates change with a release, not while serving: no stat() per page.
        auto_reload=bool(os.environ.get("EVIDENCE_LEDGER_TEMPLATES")),
    )
    # Autoescape makes text safe for HTML; this makes it honest to read: bidi
    # overrides, zero-width and control characters in whatever a depositor
    # typed are shown as visible escapes (verifier.display), on every page.
    env.finalize = _shown
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    fmt = Formatter(lang)
    env.filters["datetime"] = fmt.datetime
    env.filters["number"] = fmt.number
    env.filters["filesize"] = fmt.size
    env.filters["epoch"] = _epoch
    env.globals["static"] = static_url
    env.globals["LOCALES"] = LOCALES
    env.globals["lang"] = lang
    return env


def _shown(value: object) -> object:
    if isinstance(value, str) and not isinstance(value, Markup):
        return escape_text(value, keep="\n\\")
    return value


def _epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _lang_url(request: Request, lang: str) -> str:
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    query.append(("lang", lang))
    return request.url.path + "?" + urlencode(query)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    policy: tuple[csp.Policy, ...] = (),
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` in the request's language as a complete response."""
    state = web_state(request)
    env = environment(state.lang)
    ctx: dict[str, Any] = {
        "request": request,
        "session": state.session,
        "csrf": state.csrf,
        "path": request.url.path,
        "lang_urls": {lang: _lang_url(request, lang) for lang in LOCALES},
    }
    if context:
        ctx.update(context)
    html = env.get_template(template).render(ctx)
    response = HTMLResponse(html, status_code=status)
    finish(request, response, policy=policy)
    if headers:
        response.headers.update(headers)
    return response


def finish(request: Request, response: Response, *, policy: tuple[csp.Policy, ...] = ()) -> None:
    """Security headers, cookies and caching of a web response."""
    state = web_state(request)
    response.headers.update(csp.headers(*policy, https=state.https))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Cookie, Accept-Language"
    response.headers["Content-Language"] = "zh-CN" if state.lang == "zh" else "en"
    state.apply(response)


def redirect(request: Request, url: str, status: int = 303) -> RedirectResponse:
    """A redirect carrying the security headers and cookies of this request."""
    response = RedirectResponse(url, status_code=status)
    finish(request, response)
    return response
