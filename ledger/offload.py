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
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

__all__ = ["Overlap", "in_thread"]

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


class Overlap:
    """Calls on a worker thread, one at a time and in order, overlapping the caller.

    :meth:`submit` starts a call and returns at once, after waiting only for
    the previous call: the caller prepares the next piece of work (receives the
    next megabyte of an upload, say) while the thread processes this one.
    Leaving the ``async with`` block waits for the last call and raises its
    error; leaving it on an error waits too (so no call is still running
    when the caller cleans up) and keeps the caller's error.
    """

    def __init__(self) -> None:
        self._last: asyncio.Future[Any] | None = None

    async def submit(self, fn: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        await self._wait()
        self._last = asyncio.ensure_future(in_thread(fn, *args, **kwargs))

    async def _wait(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            await last

    async def __aenter__(self) -> Overlap:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            await self._wait()
            return
        with contextlib.suppress(BaseException):
            await self._wait()
