"""What the ledger reports about its own work, for whoever watches it.

The ledger calls an :class:`Observer` at a few points: after a group of
events is durable, after a seal, when a witness or a TSA fails a round, when
a blob is stored. The default observer does nothing; the service installs
one that feeds its Prometheus metrics (:mod:`api.metrics`), so the ledger
itself depends on no metrics library. Calls come from the sequencer's and
the sealer's threads and must be cheap and must not raise.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.events import Draft

__all__ = ["Observer"]


class Observer:
    """Receives the ledger's reports; every method is a no-op here."""

    def appended(self, drafts: Sequence[Draft]) -> None:
        """``drafts`` are durable (one group commit)."""

    def sealed(self, seconds: float, size: int) -> None:
        """A seal integrated entries up to ``size``; it took ``seconds``."""

    def anchor_failed(self, kind: str, name: str) -> None:
        """Witness or TSA (``kind``) ``name`` gave no valid answer in a round."""

    def blob_stored(self, size: int) -> None:
        """A blob of ``size`` bytes was committed to the blob store."""
