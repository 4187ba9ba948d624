"""Blocking work (fsync, parsing, database reads) off the event loop, cheaply.

Starlette's ``run_in_threadpool`` goes through anyio's capacity limiter and
cancellation scopes on every call; on the hot routes that bookkeeping cost as
much as the work. :func:`in_thread` hands the call to a plain executor. Like
anyio's default, a cancelled caller still waits for the call to finish, so
clean-up code never races work in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["in_thread"]

P = ParamSpec("P")
T = TypeVar("T")

_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="offload")


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn(*args, **kwargs)`` on a worker thread and return its result."""
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(_POOL, lambda: fn(*args, **kwargs))
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await fut
        raise
