"""Typed FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ledger.core import Ledger
from ledger.services import Services

__all__ = ["LedgerDep", "ServicesDep", "get_ledger", "get_services"]


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _ledger_dependency(request: Request) -> Ledger:
    # Coroutines, so FastAPI resolves them on the event loop: a plain function
    # dependency would cost a thread-pool round trip on every request.
    return get_ledger(request)


async def _services_dependency(request: Request) -> Services:
    return get_services(request)


_services_dependency.provides_services = True  # type: ignore[attr-defined]  # see api.fastpath


LedgerDep = Annotated[Ledger, Depends(_ledger_dependency)]
ServicesDep = Annotated[Services, Depends(_services_dependency)]
