"""The web console: server-rendered pages in Chinese (default) and English.

:func:`install` adds the pages to the service's FastAPI application. Pages
are plain HTML forms that work without JavaScript where that costs little;
a few scripts (all served from ``/static``, no inline script, no other
origin) add in-browser hashing, drag and drop and upload progress.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from api.web import account, console, errors, live, public, staff
from ledger.core import Ledger
from ledger.services.sessions import Sessions

__all__ = ["WebSettings", "install"]


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Per-application state of the console: its sessions. (Its rate limits
    are the services' own, shared by every worker: ``Services.limits``.)"""

    sessions: Sessions


def install(app: FastAPI, ledger: Ledger) -> None:
    """Register the console's routes, its error pages and its state on ``app``."""
    app.state.web = WebSettings(sessions=Sessions(ledger))
    app.include_router(public.router)
    app.include_router(console.router)
    app.include_router(live.router)
    app.include_router(staff.router)
    app.include_router(account.router)
    errors.install_fallback(app)
