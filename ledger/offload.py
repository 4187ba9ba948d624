"""Blocking work (fsync, parsing, database reads, name lookups) off the event loop.

The one way the project leaves an event loop for a thread: the HTTP routes
and the capture fetcher alike. Starlette's ``run_in_threadpool`` goes
through anyio's capacity limiter and cancellation scopes on every call; on
the hot routes that bookkeeping cost as much as the work. :func:`in_thread`
hands the call to a plain executor. Like anyio's default, a cancelled caller
still waits for the call to finish, so clean-up code never races work in
progress.

The executor starts threads only when none is idle, so short calls reuse a
few threads; its ceiling (anyio's default capacity) leaves room for slow
calls (a verification, a DNS lookup) without starving the hot routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["in_thread"]

P = ParamSpec("P")
T = TypeVar("T")

_POOL = ThreadPoolExecutor(max_workers=40, thread_name_prefix="offload")


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn(*args, **kwargs)`` on a worker thread and return its result."""
    loop = asyncio.get_running_loop()
    # The caller's context goes along: log lines written there keep its request id.
    ctx = contextvars.copy_context()
    fut = loop.run_in_executor(_POOL, lambda: ctx.run(fn, *args, **kwargs))
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await fut
        raise
