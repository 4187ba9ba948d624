"""The public log: published checkpoints and consistency proofs (no account needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger.services.evidence import b64, checkpoint_json
from ledger.storage.base import CheckpointRow, Publication

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = ["MAX_RECENT", "Consistency", "LogService"]

MAX_RECENT = 1000


@dataclass(frozen=True, slots=True)
class Consistency:
    """A verified RFC 9162 consistency proof between two published checkpoints."""

    old: CheckpointRow
    new: CheckpointRow
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "old": checkpoint_json(self.old),
            "new": checkpoint_json(self.new),
            "hashes": [b64(h) for h in self.hashes],
        }


class LogService:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def published(self, size: int) -> Publication:
        """The published checkpoint of exactly ``size`` entries (cosigned, with its token)."""
        return self._ledger.published(size)

    def latest(self) -> Publication | None:
        """The latest published checkpoint, or None before the first."""
        size = self._ledger.published_size()
        if size == 0:
            return None
        return self._ledger.published(size)

    def recent(self, limit: int = 64) -> list[Publication]:
        """The latest ``limit`` published checkpoints (at most 1000), newest first,
        each with its cosignatures and timestamp token: one read."""
        return self._ledger.store.recent_publications(max(0, min(limit, MAX_RECENT)))

    def consistency(self, old: int, new: int) -> Consistency:
        """Consistency proof between two published sizes, verified before it is returned."""
        a, b, proof = self._ledger.consistency_proof(old, new)
        return Consistency(a, b, tuple(proof))
