"""Typed FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ledger.core import Ledger

__all__ = ["LedgerDep", "get_ledger"]


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def _ledger_dependency(request: Request) -> Ledger:
    # A coroutine, so FastAPI resolves it on the event loop: a plain function
    # dependency would cost a thread-pool round trip on every request.
    return get_ledger(request)


LedgerDep = Annotated[Ledger, Depends(_ledger_dependency)]
