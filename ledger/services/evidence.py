"""Evidence (在线存证, reading side): who may see which deposit, listings,
content and inclusion proofs.

A rights holder sees only their own evidence; notaries, auditors and admins
see all of it (:mod:`ledger.services.policy`). Evidence the caller may not
see answers :class:`~ledger.errors.NotFound`, exactly like evidence that does
not exist.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger.errors import NotFound
from ledger.services.policy import Actor, authorize, sees_all
from ledger.storage.base import CheckpointRow
from ledger.storage.queries import EvidenceFilter, EvidenceRecord, ReadModel
from verifier.tlogproof import TlogProof

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = [
    "Content",
    "EvidencePage",
    "EvidenceService",
    "Inclusion",
    "b64",
    "checkpoint_json",
]

MAX_PAGE = 1000
# How stale a reading of the published size may be on hot paths (seconds).
PUBLISHED_MAX_AGE = 0.05


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def checkpoint_json(cp: CheckpointRow) -> dict[str, Any]:
    """A checkpoint as the API and pages show it: size, base64 root, note text."""
    return {"size": cp.size, "root": b64(cp.root), "note": cp.note}


@dataclass(frozen=True, slots=True)
class Inclusion:
    """An inclusion proof of one entry, verified against a published checkpoint."""

    index: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: CheckpointRow

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "leaf_hash": self.leaf_hash.hex(),
            "tree_size": self.checkpoint.size,
            "hashes": [b64(h) for h in self.hashes],
            "checkpoint": checkpoint_json(self.checkpoint),
        }


@dataclass(frozen=True, slots=True)
class EvidencePage:
    """One page of a listing; ``next_cursor`` is None on the last page."""

    items: tuple[EvidenceRecord, ...]
    next_cursor: int | None
    published_size: int
    """Entries below this index are inside a published checkpoint (sealed)."""


@dataclass(frozen=True, slots=True)
class Content:
    """A deposited file, ready to stream."""

    record: EvidenceRecord
    chunks: Iterator[bytes]


class EvidenceService:
    """Reads of deposited evidence, for one caller at a time."""

    def __init__(self, ledger: Ledger, reads: ReadModel) -> None:
        self._ledger = ledger
        self._reads = reads

    def published_size(self, covering: int = 0) -> int:
        """Entries covered by the latest published checkpoint (a reading at
        most 50 ms old, unless it covers fewer than ``covering`` entries)."""
        return self._ledger.published_size(max_age=PUBLISHED_MAX_AGE, covering=covering)

    def get(self, actor: Actor, evidence_id: str, *, leaf_hash: bool = False) -> EvidenceRecord:
        """The deposit if ``actor`` may see it; :class:`NotFound` otherwise."""
        authorize(actor, "evidence.read")
        record = self._reads.evidence(evidence_id, leaf_hash=leaf_hash)
        if record is None or not (sees_all(actor) or record.owner == actor.account_id):
            raise NotFound(f"evidence: {evidence_id} not found")
        return record

    def list(
        self,
        actor: Actor,
        filters: EvidenceFilter | None = None,
        cursor: int = 0,
        limit: int = 100,
    ) -> EvidencePage:
        """Deposits in log order from index ``cursor``: one's own for rights
        holders, everyone's for the other roles."""
        authorize(actor, "evidence.read")
        limit = max(1, min(limit, MAX_PAGE))
        owner = None if sees_all(actor) else actor.account_id
        rows = self._reads.evidence_page(owner, filters or EvidenceFilter(), cursor, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return EvidencePage(
            items=tuple(rows),
            next_cursor=rows[-1].index + 1 if more else None,
            published_size=self._ledger.published_size(),
        )

    def content(self, actor: Actor, evidence_id: str) -> Content:
        """The stored file of a ``file`` deposit."""
        record = self.get(actor, evidence_id)
        blobs = self._ledger.blobs
        if record.kind != "file" or not blobs.exists(record.sha256):
            raise NotFound(f"evidence: {evidence_id} has no stored content ({record.kind} deposit)")
        return Content(record, blobs.iter_chunks(record.sha256))

    def inclusion_of(
        self, index: int, size: int | None = None, leaf_hash: bytes | None = None
    ) -> Inclusion:
        """The verified inclusion proof of entry ``index`` in the latest
        published checkpoint (or the one of ``size``). No visibility check:
        callers pass an entry they already showed the caller."""
        if size is None:
            size = self.published_size(covering=index + 1)
            if size == 0:
                raise NotFound("checkpoint: none published yet")
        cp, proof, leaf = self._ledger.inclusion(index, size, leaf_hash)
        return Inclusion(index=index, leaf_hash=leaf, hashes=tuple(proof), checkpoint=cp)

    def inclusion(self, actor: Actor, evidence_id: str, size: int | None = None) -> Inclusion:
        """Inclusion proof of a visible deposit."""
        record = self.get(actor, evidence_id, leaf_hash=True)
        return self.inclusion_of(record.index, size, record.leaf_hash)

    def tlog_proof(self, actor: Actor, evidence_id: str, size: int | None = None) -> str:
        """The inclusion proof as C2SP tlog-proof text, with the entry's leaf
        bytes as its extra data."""
        proof = self.inclusion(actor, evidence_id, size)
        leaf = self._ledger.store.entries(proof.index, proof.index + 1)[0][3]
        return TlogProof(
            index=proof.index,
            hashes=proof.hashes,
            checkpoint=proof.checkpoint.note,
            extra=leaf,
        ).to_text()
