"""Operations: the figures an operator watches and whether this host is ready.

:meth:`OperationsService.figures` reads what the metrics export as gauges
(tree size, unpublished entries, capture jobs by status); :meth:`readiness`
applies the readiness rules once for every edge (``/readyz``):

(1) the database answers; (2) the sealer this process is meant to run is
running (a process started without one, such as an API host that leaves
sealing to another, skips this); (3) no entry has waited longer than
``max_lag`` seconds for a published checkpoint, so a seal or anchoring
policy that stopped publishing makes the host unready, whoever seals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ledger.errors import LedgerError
from ledger.storage.queries import ReadModel
from verifier.errors import Error as VerifierError
from verifier.events import parse_time

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = ["Figures", "OperationsService", "Readiness"]

OK = "ok"


@dataclass(frozen=True, slots=True)
class Figures:
    """Gauges read from the database (shared by every worker and host)."""

    size: int
    checkpoint_size: int
    published_size: int
    capture_jobs: dict[str, int] = field(default_factory=dict)

    @property
    def unpublished(self) -> int:
        """Entries not yet covered by a published checkpoint."""
        return self.size - self.published_size


@dataclass(frozen=True, slots=True)
class Readiness:
    """Each check's outcome (``ok`` or why not); ready when all are ``ok`` or skipped."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(v == OK or v.startswith("skipped") for v in self.checks.values())

    @property
    def reason(self) -> str | None:
        """The first failed check, as ``name: why``."""
        for name, value in self.checks.items():
            if value != OK and not value.startswith("skipped"):
                return f"{name}: {value}"
        return None


class OperationsService:
    """Figures and readiness of one ledger."""

    def __init__(self, ledger: Ledger, reads: ReadModel) -> None:
        self._ledger = ledger
        self._reads = reads

    def figures(self) -> Figures:
        """Sizes and capture jobs, read now; raises :class:`LedgerError` if the database fails."""
        store = self._ledger.store
        cp = store.latest_checkpoint()
        pub = store.latest_publication()
        return Figures(
            size=store.size(),
            checkpoint_size=cp.size if cp else 0,
            published_size=pub.size if pub else 0,
            capture_jobs=self._reads.capture_jobs_by_status(),
        )

    def readiness(self, *, sealer: str | None, max_lag: float) -> Readiness:
        """Run the readiness checks (see the module doc).

        ``sealer`` is None when this process runs no sealer, ``ok`` when its
        sealer runs, or why it does not.
        """
        checks: dict[str, str] = {}
        store = self._ledger.store
        try:  # (1)
            size = store.size()
            pub = store.latest_publication()
            published = pub.size if pub else 0
            waiting = store.entries(published, published + 1) if size > published else []
            checks["database"] = OK
        except LedgerError as e:
            checks["database"] = str(e)
            waiting = []
            size = published = -1
        checks["sealer"] = "skipped: no sealer in this process" if sealer is None else sealer  # (2)
        if size < 0:  # (3)
            checks["publication"] = "skipped: the database did not answer"
        elif not waiting:
            checks["publication"] = OK
        else:
            try:
                since = parse_time(waiting[0][2], "entry time")
            except VerifierError as e:
                checks["publication"] = f"entry {published}: {e}"
            else:
                age = (datetime.now(UTC) - since).total_seconds()
                checks["publication"] = (
                    OK
                    if age <= max_lag
                    else f"entry {published} has waited {age:.1f} s for a published "
                    f"checkpoint (limit {max_lag:g} s); {size - published} entries unpublished"
                )
        return Readiness(checks)
