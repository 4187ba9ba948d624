"""RFC 9162 §2.1 Merkle tree hashing and proof verification.

Leaf hash ``SHA-256(0x00 || leaf)``, node hash ``SHA-256(0x01 || left || right)``.
Verification follows the algorithms of §2.1.3.2 (inclusion) and §2.1.4.2
(consistency), with the bounds checks made explicit and messages that say which
check failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from verifier.errors import MalformedError, VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """Return the RFC 9162 §2.1.1 hash of one leaf: ``SHA-256(0x00 || leaf)``."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 §2.1.1 interior node hash ``SHA-256(0x01 || l || r)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the RFC 9162 §2.1.1 Merkle tree head of a list of leaf hashes.

    Computed bottom-up in O(n) hash operations; the empty tree has the hash of
    the empty string.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """Reference in-memory inclusion proof (RFC 9162 §2.1.3.1 ``PATH``).

    The ledger produces proofs from stored tiles; this slow reference exists so
    that tests and tools can cross-check it.
    """
    if not 0 <= index < len(hashes):
        raise MalformedError(f"inclusion: index {index} outside tree of size {len(hashes)}")

    def path(m: int, lo: int, hi: int) -> list[bytes]:
        if hi - lo == 1:
            return []
        k = _split(hi - lo)
        if m < k:
            return [*path(m, lo, lo + k), root_from_leaf_hashes(hashes[lo + k : hi])]
        return [*path(m - k, lo + k, hi), root_from_leaf_hashes(hashes[lo : lo + k])]

    return path(index, 0, len(hashes))


def consistency_proof(old_size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """Reference in-memory consistency proof (RFC 9162 §2.1.4.1 ``PROOF``)."""
    n = len(hashes)
    if not 0 <= old_size <= n:
        raise MalformedError(f"consistency: old size {old_size} outside 0..{n}")
    if old_size in (0, n):
        return []

    def subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        if m == hi - lo:
            return [] if complete else [root_from_leaf_hashes(hashes[lo:hi])]
        k = _split(hi - lo)
        if m <= k:
            return [*subproof(m, lo, lo + k, complete), root_from_leaf_hashes(hashes[lo + k : hi])]
        return [*subproof(m - k, lo + k, hi, False), root_from_leaf_hashes(hashes[lo : lo + k])]

    return subproof(old_size, 0, n, True)


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise MalformedError(f"{what}: hash has {len(value)} bytes, expected {HASH_SIZE}")


def verify_inclusion(
    leaf_hash_: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify an inclusion proof (RFC 9162 §2.1.3.2); return ``None`` or raise.

    Raises :class:`MalformedError` for out-of-range arguments or wrong hash
    lengths and :class:`VerificationError` when the proof does not lead to
    ``root``.
    """
    _check_hash("inclusion: leaf", leaf_hash_)
    _check_hash("inclusion: root", root)
    for h in proof:
        _check_hash("inclusion: proof", h)
    # (1) the index must lie inside the tree.
    if not 0 <= index < size:
        raise VerificationError(f"inclusion: index {index} is not below tree size {size}")
    # (2) the proof length is fixed by (index, size); check it before hashing.
    expected = _inclusion_length(index, size)
    if len(proof) != expected:
        raise VerificationError(f"inclusion: proof has {len(proof)} hashes, expected {expected}")
    # (3) the §2.1.3.2 fold.
    fn, sn = index, size - 1
    r = leaf_hash_
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion: proof is longer than the path")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # (4) the path must end at the top and at the given root.
    if sn != 0:
        raise VerificationError("inclusion: proof is shorter than the path")
    if r != root:
        raise VerificationError("inclusion: computed root does not match the checkpoint root")


def _inclusion_length(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner + border


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Verify a consistency proof (RFC 9162 §2.1.4.2); return ``None`` or raise.

    ``old_size == new_size`` requires an empty proof and equal roots;
    ``old_size == 0`` requires an empty proof and the empty tree's hash as
    ``old_root`` (the empty tree is a prefix of every tree). A shrinking tree
    is a rollback and is refused.
    """
    _check_hash("consistency: old root", old_root)
    _check_hash("consistency: new root", new_root)
    for h in proof:
        _check_hash("consistency: proof", h)
    # (1) sizes: no rollback.
    if old_size < 0:
        raise VerificationError(f"consistency: old size {old_size} is negative")
    if new_size < old_size:
        raise VerificationError(
            f"consistency: new size {new_size} is smaller than old size {old_size} (rollback)"
        )
    # (2) trivial cases. A size-0 tree can only have the empty tree's hash.
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise VerificationError("consistency: old root of size 0 is not the empty tree's hash")
    if old_size == new_size:
        if proof:
            raise VerificationError("consistency: proof must be empty for equal sizes")
        if old_root != new_root:
            raise VerificationError(f"consistency: two different roots for size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise VerificationError("consistency: proof must be empty from the empty tree")
        return
    # (3) length fixed by the sizes.
    expected = _consistency_length(old_size, new_size)
    if len(proof) != expected:
        raise VerificationError(f"consistency: proof has {len(proof)} hashes, expected {expected}")
    # (4) the §2.1.4.2 fold.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency: proof is longer than the path")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # (5) both roots must be reproduced.
    if sn != 0:
        raise VerificationError("consistency: proof is shorter than the path")
    if fr != old_root:
        raise VerificationError("consistency: proof does not reproduce the old root")
    if sr != new_root:
        raise VerificationError("consistency: proof does not reproduce the new root")


def _consistency_length(old_size: int, new_size: int) -> int:
    # Levels shared by the two trees above the old tree's last leaf are free;
    # a power-of-two old tree is itself a node of the new one.
    shift = (old_size & -old_size).bit_length() - 1
    m, n = (old_size - 1) >> shift, (new_size - 1) >> shift
    inner = (m ^ n).bit_length()
    border = bin(m >> inner).count("1")
    first = 0 if old_size >> shift == 1 else 1
    return inner + border + first
