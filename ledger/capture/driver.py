"""One Playwright driver per worker thread, reused across captures.

The driver (Playwright's node process) only relays commands; starting it
costs about half a second and 140 MiB per capture, so each thread that
captures keeps one, with the event loop it runs on. Every capture still
launches its own Chromium process with a new empty profile
(:mod:`ledger.capture.browser`): nothing the page can touch is shared.

A driver whose thread has ended is closed the next time a driver starts,
and every driver at interpreter exit; one that failed is discarded.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from playwright.async_api import Playwright, async_playwright

__all__ = ["Driver", "discard_thread_driver", "thread_driver"]

T = TypeVar("T")
_local = threading.local()
_lock = threading.Lock()
_drivers: dict[threading.Thread, Driver] = {}


class Driver:
    """An event loop and, once a browser is needed, a started Playwright."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._pw: Playwright | None = None

    async def playwright(self) -> Playwright:
        """The started driver (started on first use, on this loop)."""
        if self._pw is None:
            self._pw = await async_playwright().start()
        return self._pw

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion on this driver's loop (from its thread)."""
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):
            if self._pw is not None:
                self.loop.run_until_complete(self._pw.stop())
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()


def thread_driver() -> Driver:
    """This thread's driver (made on first use; closes those of ended threads)."""
    driver: Driver | None = getattr(_local, "driver", None)
    if driver is None:
        _close_ended()
        driver = Driver()
        _local.driver = driver
        with _lock:
            _drivers[threading.current_thread()] = driver
    return driver


def discard_thread_driver() -> None:
    """Close this thread's driver (after a failure); the next capture starts a new one."""
    driver: Driver | None = getattr(_local, "driver", None)
    _local.driver = None
    with _lock:
        _drivers.pop(threading.current_thread(), None)
    if driver is not None:
        driver.close()


def _close_ended() -> None:
    with _lock:
        ended = [t for t in _drivers if not t.is_alive()]
        drivers = [_drivers.pop(t) for t in ended]
    for d in drivers:
        d.close()


@atexit.register
def _close_all() -> None:
    with _lock:
        drivers = list(_drivers.values())
        _drivers.clear()
    for d in drivers:
        d.close()
