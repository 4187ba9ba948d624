"""Timestamp renewal for operators: run it, and the records a package carries.

The rules (what is due, how it is renewed) are in :mod:`ledger.renewal`; the
command line (``evidence-ledger tsa renew``) and the service's scheduled run
call this service.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ledger.errors import InvalidInput
from ledger.renewal import evidence_records, renew

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = ["RenewalService"]

MAX_WINDOW_DAYS = 3650


class RenewalService:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def renew(
        self,
        *,
        window_days: float | None = None,
        dry_run: bool = False,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Renew every checkpoint timestamp due within the window (default: the
        configured ``renewal.window_days``); with ``dry_run``, only count them.

        Returns what was checked, due, renewed and lapsed (see
        :class:`ledger.renewal.RenewalReport`); raises
        :class:`ledger.renewal.RenewalError` when due records could not be renewed.
        """
        window = None
        if window_days is not None:
            if not 0 < window_days <= MAX_WINDOW_DAYS:
                raise InvalidInput(
                    f"renewal: window must be between 0 and {MAX_WINDOW_DAYS} days, "
                    f"got {window_days}"
                )
            window = timedelta(days=window_days)
        return renew(self._ledger, now=now, window=window, dry_run=dry_run).to_json()

    def records(self, size: int, token: bytes | None = None) -> list[bytes]:
        """The RFC 4998 evidence records of checkpoint ``size`` that were renewed."""
        return evidence_records(self._ledger, size, token)
