"""``Overlap``: calls on a worker thread, in order, overlapping the caller."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ledger.offload import Overlap


def test_calls_run_in_order_one_at_a_time_while_the_caller_goes_on() -> None:
    seen: list[int] = []
    running = threading.Semaphore(1)
    go_on = threading.Event()

    def work(i: int) -> None:
        assert running.acquire(blocking=False), "two calls at once"
        if i == 0:
            # Blocks until the caller, back from submit, lets it finish.
            assert go_on.wait(10)
        seen.append(i)
        running.release()

    async def go() -> None:
        async with Overlap() as feed:
            for i in range(5):
                await feed.submit(work, i)
                go_on.set()

    asyncio.run(go())
    assert seen == [0, 1, 2, 3, 4]


def test_an_error_of_the_last_call_is_raised_on_exit() -> None:
    def fail() -> None:
        raise ValueError("bad block")

    async def go() -> None:
        async with Overlap() as feed:
            await feed.submit(fail)

    with pytest.raises(ValueError, match="bad block"):
        asyncio.run(go())


def test_the_callers_error_wins_and_the_call_is_finished_first() -> None:
    done = threading.Event()

    def slow() -> None:
        time.sleep(0.05)
        done.set()
        raise ValueError("ignored")

    async def go() -> None:
        async with Overlap() as feed:
            await feed.submit(slow)
            raise KeyError("client went away")

    with pytest.raises(KeyError):
        asyncio.run(go())
    assert done.is_set()
