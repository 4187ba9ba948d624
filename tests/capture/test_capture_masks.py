"""Masks over secret fields fail closed: a browser too slow to say where a
secret element is must not unmask it (only an element that is gone does)."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Error as PlaywrightError

from ledger.capture.recording import _EVERYWHERE, ScreenRecorder


class _Handle:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers

    async def evaluate(self, script: str) -> Any:
        answer = self.answers.pop(0)
        if answer == "slow":
            await asyncio.sleep(60)
        if answer == "gone":
            raise PlaywrightError("Element is not attached to the DOM")
        return answer


def _recorder(*handles: _Handle) -> ScreenRecorder:
    rec = object.__new__(ScreenRecorder)
    rec._handles = list(handles)  # type: ignore[arg-type]
    rec._known = {}
    return rec


def test_a_slow_answer_keeps_the_last_box_and_the_element() -> None:
    handle = _Handle([[10, 20, 100, 30], "slow", [10, 20, 100, 30]])
    rec = _recorder(handle)
    assert asyncio.run(rec._sample_boxes()) == [(10.0, 20.0, 100.0, 30.0)]
    assert asyncio.run(rec._sample_boxes()) == [(10.0, 20.0, 100.0, 30.0)]
    assert rec._handles == [handle]
    assert asyncio.run(rec._sample_boxes()) == [(10.0, 20.0, 100.0, 30.0)]


def test_a_slow_first_answer_masks_the_whole_page() -> None:
    rec = _recorder(_Handle(["slow"]))
    assert asyncio.run(rec._sample_boxes()) == [_EVERYWHERE]


def test_a_gone_element_is_no_longer_masked() -> None:
    handle = _Handle([[1, 2, 3, 4], "gone"])
    rec = _recorder(handle)
    assert asyncio.run(rec._sample_boxes()) == [(1.0, 2.0, 3.0, 4.0)]
    assert asyncio.run(rec._sample_boxes()) == []
    assert rec._handles == []
