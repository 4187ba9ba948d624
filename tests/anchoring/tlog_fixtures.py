"""In-memory logs for witness tests: leaves, roots, proofs and signed checkpoints.

Trees come from :mod:`verifier.merkle`'s reference functions, so a witness is
tested against proofs computed independently of the ledger's tile store.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.keys import NoteSigner
from ledger.witness import format_add_checkpoint
from verifier.checkpoint import Checkpoint
from verifier.merkle import consistency_proof, leaf_hash, root_from_leaf_hashes


class MemLog:
    """A log held in memory: ``leaves`` and a signer for its origin."""

    def __init__(self, origin: str, signer: NoteSigner | None = None, tag: str = "") -> None:
        self.origin = origin
        self.signer = signer or NoteSigner(origin, Ed25519PrivateKey.generate())
        self.hashes: list[bytes] = []
        self.tag = tag

    @property
    def vkey(self) -> str:
        return self.signer.verifier_key.to_text()

    def grow(self, n: int, tag: str | None = None) -> None:
        t = self.tag if tag is None else tag
        start = len(self.hashes)
        self.hashes += [leaf_hash(f"{t}leaf {i}".encode()) for i in range(start, start + n)]

    def fork(self, at: int, tag: str) -> MemLog:
        """Same origin and key, same first ``at`` leaves, different leaves after."""
        other = MemLog(self.origin, self.signer, tag)
        other.hashes = list(self.hashes[:at])
        return other

    def root(self, size: int | None = None) -> bytes:
        return root_from_leaf_hashes(self.hashes[: len(self.hashes) if size is None else size])

    def note(self, size: int | None = None) -> str:
        size = len(self.hashes) if size is None else size
        body = Checkpoint(self.origin, size, self.root(size)).to_text()
        return self.signer.sign_note(body).to_text()

    def proof(self, old: int, new: int | None = None) -> list[bytes]:
        new = len(self.hashes) if new is None else new
        return consistency_proof(old, self.hashes[:new])

    def request(self, old: int, new: int | None = None) -> bytes:
        """A correct ``add-checkpoint`` body from ``old`` to ``new``."""
        new = len(self.hashes) if new is None else new
        return format_add_checkpoint(old, self.proof(old, new) if old else [], self.note(new))


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()
