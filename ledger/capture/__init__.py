"""Online capture (在线取证): the platform loads a web page in headless Chromium
and deposits what it saw.

Public surface: :class:`CaptureOptions`, :class:`CaptureFailed` (and its
statuses), :func:`capture_evidence` (capture and deposit) and the job pool
used by the HTTP API (:mod:`ledger.capture.jobs`). The browser and WARC
modules are imported only when a capture runs, so the CLI and the API start
without Playwright.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.capture.errors import FAILURE_STATUSES, CaptureFailed
from ledger.capture.options import WAITS, CaptureOptions

if TYPE_CHECKING:
    from ledger.capture.service import CaptureResult, capture_evidence

__all__ = [
    "FAILURE_STATUSES",
    "WAITS",
    "CaptureFailed",
    "CaptureOptions",
    "CaptureResult",
    "capture_evidence",
]


def __getattr__(name: str) -> Any:
    if name in ("CaptureResult", "capture_evidence"):
        from ledger.capture import service

        return getattr(service, name)
    raise AttributeError(name)
