"""What the rights holder may choose about a capture."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ledger.capture.steps import MAX_STEPS, Step, parse_steps, steps_seconds
from ledger.errors import InvalidInput

if TYPE_CHECKING:
    from ledger.config import CaptureConfig

__all__ = ["MAX_DURATION", "WAITS", "CaptureOptions"]

WAITS = ("load", "networkidle", "delay")
MAX_DURATION = 3600
"""Hard ceiling of ``duration``; the operator's ``capture.max_duration`` is lower."""
_NOTE = re.compile(r"[ -~]{1,100}")


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    """Viewport, wait condition, full-page screenshot, user-agent note, timeout,
    partial; and for a recorded capture: video, steps, duration.

    ``wait``: ``load`` (the load event), ``networkidle`` (no request for 500 ms)
    or ``delay`` (the load event, then ``delay_ms`` more). ``timeout`` is the
    wall time in seconds for loading (capped by the operator's limit).
    ``partial``: when a limit is reached or a step fails, deposit what was
    captured (status ``partial``) instead of ending without evidence.

    ``video``: record the browser session (screencast, burned-in clock and
    URL). ``steps``: scripted actions run after the page loads
    (:mod:`ledger.capture.steps`), each given ``step_timeout`` seconds.
    ``duration``: after the steps, keep recording for that many seconds
    (media muted, autoplay allowed); it needs ``video``.
    """

    viewport_width: int = 1280
    viewport_height: int = 800
    wait: str = "load"
    delay_ms: int = 0
    full_page: bool = True
    user_agent_note: str | None = None
    timeout: int = 30
    partial: bool = False
    video: bool = False
    duration: int = 0
    steps: tuple[Step, ...] = ()
    step_timeout: int = 10

    def __post_init__(self) -> None:
        if not (320 <= self.viewport_width <= 3840 and 240 <= self.viewport_height <= 2160):
            raise InvalidInput("capture: viewport must be 320-3840 x 240-2160 pixels")
        if self.wait not in WAITS:
            raise InvalidInput(f"capture: wait must be one of {', '.join(WAITS)}")
        if not 0 <= self.delay_ms <= 60_000:
            raise InvalidInput("capture: delay_ms must be between 0 and 60000")
        if self.delay_ms and self.wait != "delay":
            raise InvalidInput("capture: delay_ms needs wait=delay")
        if self.user_agent_note is not None and not _NOTE.fullmatch(self.user_agent_note):
            raise InvalidInput("capture: user agent note must be 1-100 printable ASCII characters")
        if not 1 <= self.timeout <= 600:
            raise InvalidInput("capture: timeout must be between 1 and 600 seconds")
        if type(self.duration) is not int or not 0 <= self.duration <= MAX_DURATION:
            raise InvalidInput(f"capture: duration must be 0 to {MAX_DURATION} seconds")
        if self.duration and not self.video:
            raise InvalidInput("capture: duration needs video (it is the recording's length)")
        if not 1 <= self.step_timeout <= 60:
            raise InvalidInput("capture: step_timeout must be between 1 and 60 seconds")
        if len(self.steps) > MAX_STEPS or not all(isinstance(s, Step) for s in self.steps):
            raise InvalidInput(f"capture: steps must be at most {MAX_STEPS} parsed steps")
        for i, s in enumerate(self.steps):
            if not s.within(self.viewport_width, self.viewport_height):
                raise InvalidInput(f"steps[{i}] (pointer): the point is outside the viewport")

    @property
    def secrets(self) -> tuple[str, ...]:
        """The texts of the steps typed as secrets."""
        return tuple(s.text for s in self.steps if s.secret and s.text)

    def steps_seconds(self) -> float:
        """The longest the steps can take (see :func:`~ledger.capture.steps.steps_seconds`)."""
        return steps_seconds(self.steps, self.step_timeout)

    def check_limits(self, cfg: CaptureConfig) -> None:
        """Refuse what exceeds the operator's limits (steps, step time, duration)."""
        if len(self.steps) > cfg.max_steps:
            raise InvalidInput(
                f"capture: {len(self.steps)} steps, the limit is {cfg.max_steps} "
                "(capture.max_steps)"
            )
        if self.steps and self.steps_seconds() > cfg.max_steps_seconds:
            raise InvalidInput(
                f"capture: the steps may take {self.steps_seconds():.0f} s (their waits and "
                f"timeouts), the limit is {cfg.max_steps_seconds} s (capture.max_steps_seconds)"
            )
        if self.duration > cfg.max_duration:
            raise InvalidInput(
                f"capture: duration {self.duration} s, the limit is {cfg.max_duration} s "
                "(capture.max_duration)"
            )

    def to_json(self) -> dict[str, Any]:
        """Every option; steps as the action log shows them (secret texts as null)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = [s.to_json() for s in value] if f.name == "steps" else value
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CaptureOptions:
        """Options from their JSON form (steps parsed and validated).

        :meth:`to_json` keeps no secret text, so options read back from a record
        whose steps typed a secret are refused (the text must be given again).
        """
        data = dict(obj)
        raw_steps = data.pop("steps", None) or []
        try:
            return cls(**data, steps=parse_steps(raw_steps) if raw_steps else ())
        except TypeError as e:
            raise InvalidInput(f"capture: invalid options ({e})") from e
