"""How a capture ends when it produces no evidence."""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = ["FAILURE_STATUSES", "CaptureFailed"]

FAILURE_STATUSES = (
    "refused",
    "unreachable",
    "timeout",
    "tls_error",
    "http_error",
    "download",
    "too_many_redirects",
    "protocol_error",
    "limit_exceeded",
    "browser_error",
    "step_failed",
    "recording_error",
    "storage_full",
    "abandoned",
)
"""Statuses of a capture that ended without evidence (no log entry, no blobs)."""


class CaptureFailed(LedgerError):
    """The capture ended with ``status`` (one of :data:`FAILURE_STATUSES`).

    The message is one line: ``capture: <status>: <what happened>``.
    """

    def __init__(self, status: str, detail: str, *, limit: str | None = None) -> None:
        assert status in FAILURE_STATUSES, status
        detail = detail.removeprefix("capture: ").removeprefix(f"{status}: ")
        super().__init__(f"capture: {status}: {detail}")
        self.status = status
        self.detail = detail
        self.limit = limit
