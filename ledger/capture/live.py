"""Interactive capture: a recorded capture whose steps arrive live.

A :class:`LiveSession` sits between the page a rights holder drives (other
threads: the web requests) and the capture running on its own thread's event
loop (:func:`run_live`, called by the browser driver in place of the
scripted steps):

- input actions (:mod:`ledger.capture.steps`: ``pointer``, ``wheel``,
  ``key``, ``text``, and ``goto``) are validated by :func:`check_inputs`
  (input actions only, a pointer inside the viewport), counted by
  :mod:`ledger.services.interactive` (at most :data:`RATE` a second, at most
  :data:`~ledger.capture.steps.MAX_STEPS` in all, for every process serving
  the page) and queued by :meth:`LiveSession.accept`; :func:`run_live`
  performs and logs each one exactly as a scripted step (start and end time,
  URL after it, a screenshot after clicks, key presses and page loads);
- the screencast frames the video is made of are also kept, the latest one
  only, for the page to show (:meth:`LiveSession.frame`);
- the session ends when the user finishes (the capture then goes on to its
  artefacts, manifest and deposit like any other) or abandons, or when it
  runs past its bound, has had no input for :data:`IDLE_SECONDS` or the page
  stopped asking for frames and state for :data:`GRACE_SECONDS`: all of
  those raise ``CaptureFailed("abandoned")`` and nothing is deposited.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ledger.capture.errors import CaptureFailed
from ledger.capture.steps import Step, parse_step
from ledger.errors import InvalidInput
from ledger.events import format_time

if TYPE_CHECKING:
    from ledger.capture.process import StepContext

__all__ = [
    "GRACE_SECONDS",
    "IDLE_SECONDS",
    "MAX_SECONDS",
    "RATE",
    "LiveFrame",
    "LiveSession",
    "check_inputs",
    "run_live",
]

MAX_SECONDS = 600
"""How long a session may last at most (it is then abandoned, not deposited)."""
IDLE_SECONDS = 60
"""A session without input for this long is abandoned."""
GRACE_SECONDS = 10
"""A session whose page stopped asking for frames for this long is abandoned
(the page was closed; a reload within it reconnects)."""
RATE = 50
"""Input actions a second, at most."""
POLL = 0.05
_SHOT_AFTER = ("pointer", "key", "goto")


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """The latest screencast frame: its number and JPEG bytes."""

    seq: int
    jpeg: bytes
    at: str
    """When it arrived (UTC, the capture's clock)."""


def check_inputs(events: list[Any], viewport: tuple[int, int]) -> list[Step]:
    """Validate input actions for a session's viewport (InvalidInput naming
    the first bad one)."""
    if not isinstance(events, list) or not 1 <= len(events) <= RATE:
        raise InvalidInput(f"live: send 1 to {RATE} input actions at a time")
    steps = [parse_step(e, i) for i, e in enumerate(events)]
    for i, s in enumerate(steps):
        if s.action not in ("pointer", "wheel", "key", "text", "goto"):
            raise InvalidInput(f"steps[{i}]: a live session takes input actions only")
        if not s.within(*viewport):
            raise InvalidInput(f"steps[{i}] (pointer): the point is outside the viewport")
    return steps


class LiveSession:
    """The shared state of one interactive capture (thread-safe)."""

    def __init__(
        self,
        viewport: tuple[int, int],
        *,
        max_seconds: float = MAX_SECONDS,
        idle_seconds: float = IDLE_SECONDS,
        grace_seconds: float = GRACE_SECONDS,
    ) -> None:
        self.viewport = viewport
        self.max_seconds = max_seconds
        self.idle_seconds = idle_seconds
        self.grace_seconds = grace_seconds
        self.started = time.monotonic()
        self._lock = threading.Condition()
        self._inputs: deque[Step] = deque()
        self._frame: LiveFrame | None = None
        self._end: str | None = None  # "finish" or "abandon"
        self._last_input = self.started
        self._last_seen = self.started
        self.logged = 0
        """Input actions performed and logged so far."""
        self.running = False
        """Whether the page has loaded and input is being taken."""

    # -- the page's side (any thread) ------------------------------------------

    def accept(self, steps: list[Step]) -> None:
        """Queue input actions already checked (:func:`check_inputs`) and counted (the
        database counts the inputs of every process serving the page, at most
        :data:`RATE` a second and :data:`~ledger.capture.steps.MAX_STEPS` in
        all); dropped once the session is ending."""
        with self._lock:
            if self._end is None:
                self._inputs.extend(steps)
                self._last_input = self._last_seen = time.monotonic()
                self._lock.notify_all()

    def seen(self) -> None:
        """The page is still open (it asked for a frame or the state)."""
        with self._lock:
            self._last_seen = time.monotonic()

    def frame(self, after: int, timeout: float) -> LiveFrame | None:
        """The latest frame if newer than ``after``, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._last_seen = time.monotonic()
            while self._end is None:
                if self._frame is not None and self._frame.seq > after:
                    return self._frame
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return None

    def latest(self) -> LiveFrame | None:
        """The latest frame, without waiting."""
        with self._lock:
            return self._frame

    def end(self, how: str) -> None:
        """Ask the capture to ``finish`` (deposit) or ``abandon`` (nothing kept)."""
        with self._lock:
            if self._end is None:
                self._end = how
            self._lock.notify_all()

    @property
    def ending(self) -> str | None:
        with self._lock:
            return self._end

    def seconds_left(self) -> float:
        return max(0.0, self.max_seconds - (time.monotonic() - self.started))

    # -- the capture's side ----------------------------------------------------

    def begin(self) -> None:
        """The page has loaded: input is taken from now on (the time it took to
        load counts neither as idle nor as a closed page)."""
        with self._lock:
            self._last_input = self._last_seen = time.monotonic()
            self.running = True

    def put_frame(self, jpeg: bytes) -> None:
        """A screencast frame arrived (the recorder's thread or loop)."""
        with self._lock:
            seq = self._frame.seq + 1 if self._frame is not None else 1
            self._frame = LiveFrame(seq, jpeg, format_time(datetime.now(UTC)))
            self._lock.notify_all()

    def next_input(self) -> Step | str | None:
        """The next input, or why the session ends, or None (nothing yet)."""
        now = time.monotonic()
        with self._lock:
            if self._end == "abandon":
                return self._end  # what is still queued is dropped with the rest
            if self._inputs:
                return self._inputs.popleft()
            if self._end is not None:
                return self._end
            if now - self.started > self.max_seconds:
                self._end = "abandon"
                return f"the session ran past its {self.max_seconds:.0f} s bound"
            if now - self._last_input > self.idle_seconds:
                self._end = "abandon"
                return f"no input for {self.idle_seconds:.0f} s"
            if now - self._last_seen > self.grace_seconds:
                self._end = "abandon"
                return "the page was closed"
            return None


async def run_live(ctx: StepContext, live: LiveSession) -> None:
    """Perform and log the inputs as they come until the user finishes; raise
    ``CaptureFailed("abandoned")`` when the session is abandoned for any reason."""
    from ledger.capture.process import run_step

    live.begin()
    try:
        while not ctx.stop.is_set():  # a capture limit ends the session as for steps
            item = live.next_input()
            if item is None:
                await asyncio.sleep(POLL)
                continue
            if item == "finish":
                break
            if isinstance(item, str):
                why = "the user abandoned the session" if item == "abandon" else item
                raise CaptureFailed("abandoned", f"interactive capture abandoned: {why}")
            i = len(ctx.pc.actions) + 1
            label = f"input {i}: {item.action} {item.target}"
            await run_step(ctx, i, item, label, screenshot=item.action in _SHOT_AFTER)
            live.logged = i
    finally:
        live.running = False
    if ctx.recorder is not None:
        ctx.recorder.show(step="")
