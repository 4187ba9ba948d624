"""What the rights holder may choose about a capture."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from ledger.errors import InvalidInput

__all__ = ["WAITS", "CaptureOptions"]

WAITS = ("load", "networkidle", "delay")
_NOTE = re.compile(r"[ -~]{1,100}")


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    """Viewport, wait condition, full-page screenshot, user-agent note, timeout, partial.

    ``wait``: ``load`` (the load event), ``networkidle`` (no request for 500 ms)
    or ``delay`` (the load event, then ``delay_ms`` more). ``timeout`` is the
    wall time in seconds for loading (capped by the operator's limit).
    ``partial``: when a limit is reached, deposit what was captured (status
    ``partial``) instead of ending without evidence.
    """

    viewport_width: int = 1280
    viewport_height: int = 800
    wait: str = "load"
    delay_ms: int = 0
    full_page: bool = True
    user_agent_note: str | None = None
    timeout: int = 30
    partial: bool = False

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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
