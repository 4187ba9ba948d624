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


def _overlay() -> Any:
    from ledger.capture.recording import _Overlay

    return _Overlay("", 1280, 800)


def _grey_at(canvas: Any, x: int, y: int) -> bool:
    return bool(canvas.getpixel((x, y)) == (60, 60, 60))


def test_a_frame_of_another_shape_is_masked_where_it_is_drawn() -> None:
    """A frame taller than the page (the browser resized its view for a full-page
    screenshot) is squeezed to the page's size: the mask follows it down as well."""
    from PIL import Image

    overlay = _overlay()
    box = (20.0, 500.0, 240.0, 30.0)  # on a 2,000-pixel page
    tall = Image.new("RGB", (1280, 2000), (255, 255, 255))
    meta = {"deviceWidth": 1280, "deviceHeight": 2000, "pageScaleFactor": 1}
    canvas = overlay.compose(tall, meta, "clock", "", "url", [box])
    band = overlay.band
    assert _grey_at(canvas, 130, band + 206)  # the middle of the field, squeezed to 0.4
    assert not _grey_at(canvas, 130, band + 515)  # not where an unsqueezed page has it


def test_a_frame_of_the_page_s_shape_is_masked_at_its_place() -> None:
    from PIL import Image

    overlay = _overlay()
    frame = Image.new("RGB", (1280, 800), (255, 255, 255))
    meta = {"deviceWidth": 1280, "deviceHeight": 800, "scrollOffsetY": 100}
    canvas = overlay.compose(frame, meta, "clock", "", "url", [(20.0, 400.0, 240.0, 30.0)])
    assert _grey_at(canvas, 130, overlay.band + 315)
    assert not _grey_at(canvas, 130, overlay.band + 415)
    # Without the device's size in the metadata, the frame's own width is the scale.
    canvas = overlay.compose(frame, None, "clock", "", "url", [(20.0, 400.0, 240.0, 30.0)])
    assert _grey_at(canvas, 130, overlay.band + 415)
