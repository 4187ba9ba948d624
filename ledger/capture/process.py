"""Run the scripted steps of a process capture (过程取证) and log each one.

Procedure of :func:`run_steps`, for each step in order:

(1) show the step in the video's band and note its start time;
(2) perform it (:func:`_perform`): ``goto`` fetches the page through the
    platform's fetcher first, like the first page (refused addresses end the
    step as ``refused``); the other actions act on the page through
    Playwright, every request still going through the fetcher;
(3) let a navigation the step started finish (:func:`settle`);
(4) log it: the step's own members (a secret text as null), target, start
    and end time, outcome, the URL after it, and a viewport screenshot
    (elements holding secrets masked) with its SHA-256; a ``screenshot``
    step also keeps a full-page screenshot and the DOM;
(5) a step that failed ends the steps: the capture ends with a status naming
    the step, or, when partial results were asked for, is deposited as
    ``partial`` with the log up to and including the failed step.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from ledger.capture.errors import CaptureFailed
from ledger.capture.fetch import Fetched, FetchError, LimitReached
from ledger.capture.guard import Refused
from ledger.capture.options import CaptureOptions
from ledger.capture.steps import Step
from ledger.events import format_time

if TYPE_CHECKING:
    from ledger.capture.browser import PageCapture
    from ledger.capture.recording import ScreenRecorder

__all__ = ["StepContext", "run_step", "run_steps", "settle"]

SETTLE_START = 0.15
"""Seconds given to an action to start a navigation before waiting for it."""
TYPE_DELAY_MS = 25
"""Delay between keystrokes (the video shows typing); shortened for long texts."""


class StepError(Exception):
    """A step failed: ``status`` is ``step_failed``, ``refused`` or a fetch status."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class StepContext:
    """What the steps act with: the page, the capture's session and recorder."""

    pc: PageCapture
    page: Page
    options: CaptureOptions
    workdir: Path
    recorder: ScreenRecorder | None
    preflight: Callable[[str], Awaitable[Fetched]]
    """Fetch a page for a ``goto`` step (checked, recorded, served to the browser)."""
    navigations: Callable[[], Awaitable[None]]
    """Wait until no navigation request is being fetched or followed."""
    secret_selectors: list[str]
    blocked: list[dict[str, str]]
    """Main-frame navigations the address policy refused (url, reason), in order."""
    stop: asyncio.Event
    """Set when a limit is reached: waiting steps end early."""

    @property
    def timeout_ms(self) -> float:
        return self.options.step_timeout * 1000.0


def _now() -> datetime:
    return datetime.now(UTC)


async def settle(ctx: StepContext) -> None:
    """(3) Give the action time to start a navigation; wait for it to load."""
    await asyncio.sleep(SETTLE_START)
    await ctx.navigations()
    with contextlib.suppress(PlaywrightTimeout, PlaywrightError):
        await ctx.page.wait_for_load_state("load", timeout=ctx.timeout_ms)


def _why(e: PlaywrightError, step: Step, seconds: int) -> str:
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if "strict mode violation" in text:
        return f"the selector matches several elements ({text.split(':', 2)[-1].strip()[:200]})"
    if isinstance(e, PlaywrightTimeout):
        what = "no visible element matches the selector" if step.selector else "it did not end"
        return f"{what} within {seconds} s"
    return text[:300]


async def _perform(ctx: StepContext, step: Step) -> dict[str, Any]:
    """(2) Do one step; extra members for its log entry. Raises StepError."""
    page, t = ctx.page, ctx.timeout_ms
    extra: dict[str, Any] = {}
    blocked = len(ctx.blocked)
    try:
        if step.action == "goto":
            assert step.url is not None
            try:
                got = await ctx.preflight(step.url)
            except Refused as e:
                raise StepError("refused", str(e).removeprefix("capture: ")) from e
            except LimitReached:
                raise
            except FetchError as e:
                raise StepError(e.status, str(e)) from e
            extra["http_status"] = got.final.status
            await page.goto(got.final.url, wait_until="load", timeout=t)
        elif step.action == "click":
            await page.locator(str(step.selector)).click(timeout=t)
            await settle(ctx)
        elif step.action == "type":
            assert step.text is not None
            field = page.locator(str(step.selector))
            await field.wait_for(state="visible", timeout=t)
            if step.secret:
                ctx.secret_selectors.append(str(step.selector))
                if ctx.recorder is not None:
                    handle = await field.element_handle(timeout=t)
                    await ctx.recorder.mask(handle)
            delay = min(TYPE_DELAY_MS, t * 0.5 / len(step.text))
            await field.press_sequentially(step.text, delay=delay, timeout=t)
        elif step.action in ("press", "key"):
            await page.keyboard.press(str(step.key))
            await settle(ctx)
        elif step.action == "pointer":
            button: Literal["left", "middle", "right"] = (
                "right"
                if step.button == "right"
                else "middle"
                if step.button == "middle"
                else "left"
            )
            await page.mouse.click(step.x, step.y, button=button)
            await settle(ctx)
        elif step.action == "wheel":
            await page.mouse.wheel(step.x, step.y)
            extra["scroll_position"] = await page.evaluate("[window.scrollX, window.scrollY]")
        elif step.action == "text":
            assert step.text is not None
            if step.secret:
                await _mark_secret(ctx, step.text)
            delay = min(TYPE_DELAY_MS, t * 0.5 / len(step.text))
            await page.keyboard.type(step.text, delay=delay)
        elif step.action == "scroll":
            await page.evaluate(
                "([x, y]) => window.scrollBy({left: x, top: y, behavior: 'instant'})",
                [step.x, step.y],
            )
            extra["scroll_position"] = await page.evaluate("[window.scrollX, window.scrollY]")
        elif step.action == "wait" and step.seconds is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.stop.wait(), step.seconds)
        elif step.action == "wait":
            await page.locator(str(step.selector)).first.wait_for(state="visible", timeout=t)
    except PlaywrightError as e:
        text = str(e)
        if "ERR_BLOCKED_BY_CLIENT" in text and len(ctx.blocked) > blocked:
            refused = ctx.blocked[blocked]
            raise StepError(
                "refused", f"navigation to {refused['url']} blocked: {refused['reason']}"
            ) from e
        raise StepError("step_failed", _why(e, step, ctx.options.step_timeout)) from e
    if len(ctx.blocked) > blocked:
        refused = ctx.blocked[blocked]
        raise StepError("refused", f"navigation to {refused['url']} blocked: {refused['reason']}")
    return extra


SECRET_MARK = "data-evidence-secret"  # noqa: S105 (an attribute name)
"""Attribute put on the element that has the focus when a secret text is typed
at it (an input action has no selector): screenshots mask what carries it."""


async def _mark_secret(ctx: StepContext, text: str) -> None:
    """Treat ``text`` as a secret from now on and mask the focused element."""
    ctx.pc.secrets.add(text)
    handle = await ctx.page.evaluate_handle(
        f"(() => {{ const e = document.activeElement; "
        f"if (e && e !== document.body) {{ e.setAttribute('{SECRET_MARK}', ''); }} return e; }})()"
    )
    selector = f"[{SECRET_MARK}]"
    if selector not in ctx.secret_selectors:
        ctx.secret_selectors.append(selector)
    element = handle.as_element()
    if element is not None and ctx.recorder is not None:
        await ctx.recorder.mask(element)


async def _screenshots(ctx: StepContext, i: int, step: Step) -> dict[str, Any]:
    """(4) The step's viewport screenshot (and, for a screenshot step, full page and DOM)."""
    page, pc = ctx.page, ctx.pc
    stem = f"step-{i:03d}" + (f"-{step.name}" if step.name else "")
    masks = [page.locator(s) for s in ctx.secret_selectors]
    view = ctx.workdir / f"{stem}.png"
    out: dict[str, Any] = {}
    try:
        await page.screenshot(
            path=str(view), type="png", timeout=30_000, mask=masks, mask_color="#3c3c3c"
        )
        pc.files[f"step_{i}"] = (view, "image/png")
        out["screenshot"] = {
            "artefact": f"step_{i}",
            "sha256": hashlib.sha256(view.read_bytes()).hexdigest(),
        }
        if step.action == "screenshot":
            if ctx.options.full_page:
                full = ctx.workdir / f"{stem}-full.png"
                await page.screenshot(
                    path=str(full),
                    type="png",
                    full_page=True,
                    timeout=30_000,
                    mask=masks,
                    mask_color="#3c3c3c",
                )
                pc.files[f"step_{i}_full"] = (full, "image/png")
            dom = ctx.workdir / f"{stem}.html"
            dom.write_text(await page.content(), "utf-8")
            pc.files[f"step_{i}_dom"] = (dom, "text/html; charset=utf-8")
    except PlaywrightError as e:
        raise CaptureFailed(
            "browser_error", f"step {i}: could not take its screenshot: {_why(e, step, 30)}"
        ) from e
    return out


async def run_step(
    ctx: StepContext, i: int, step: Step, label: str, screenshot: bool = True
) -> dict[str, Any]:
    """(1)-(4) Perform and log one step as ``ctx.pc.actions[i - 1]``; its entry."""
    secrets = ctx.pc.secrets
    if ctx.recorder is not None:
        ctx.recorder.show(step=label)
    started = _now()  # (1)
    outcome, error, extra = "ok", None, {}
    try:
        extra = await _perform(ctx, step)  # (2)
    except StepError as e:
        outcome, error = e.status, str(e)
    except LimitReached:
        outcome, error = "limit_reached", "a capture limit was reached during the step"
    ended = _now()
    entry: dict[str, Any] = {
        "index": i,
        **step.to_json(),
        "target": secrets.redact(step.target),
        "started_at": format_time(started),
        "ended_at": format_time(ended),
        "outcome": outcome,
        "error": secrets.redact(error) if error else None,
        "url_after": secrets.redact(ctx.page.url),
        **extra,
    }
    if screenshot:
        entry.update(await _screenshots(ctx, i, step))  # (4)
    ctx.pc.actions.append(entry)
    return entry


async def run_steps(ctx: StepContext) -> None:
    """Run every step, logging each in ``ctx.pc.actions``; see the module docstring."""
    steps = ctx.options.steps
    secrets = ctx.pc.secrets
    for i, step in enumerate(steps, 1):
        if ctx.stop.is_set():
            return  # a limit was reached: the caller decides what becomes of the capture
        label = f"step {i}/{len(steps)}: {step.action} {step.target}"
        entry = await run_step(ctx, i, step, label)
        outcome = entry["outcome"]
        if outcome == "limit_reached":
            return
        if outcome != "ok":  # (5)
            detail = f"step {i} ({step.action} {secrets.redact(step.target)}): {entry['error']}"
            if not ctx.options.partial:
                status = "refused" if outcome == "refused" else "step_failed"
                raise CaptureFailed(status, detail + " (ask for partial results to keep the rest)")
            ctx.pc.status = "partial"
            ctx.pc.failed_step = i
            return
    if ctx.recorder is not None:
        ctx.recorder.show(step="")
