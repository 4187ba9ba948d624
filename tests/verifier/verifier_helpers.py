"""Test helpers: deterministic Ed25519 keys, note signing, tlog-tiles exports.

The export writer is deliberately simple (whole lists in memory, one
``root_from_leaf_hashes`` per full tile) so that it is an independent check on
the streaming audit in ``verifier.logaudit``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verifier.canonical import canonicalize
from verifier.checkpoint import Checkpoint
from verifier.merkle import leaf_hash, root_from_leaf_hashes
from verifier.note import Note, NoteSignature, VerifierKey
from verifier.tiles import TILE_WIDTH, encode_bundle, tile_path

ORIGIN = "ledger.test/log"


def private_key(seed: str) -> Ed25519PrivateKey:
    """A fixed Ed25519 key derived from a label (tests and vectors only)."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())


def verifier_key(name: str, key: Ed25519PrivateKey) -> VerifierKey:
    return VerifierKey.from_public_key(name, key.public_key().public_bytes_raw())


def signature(text: str, name: str, key: Ed25519PrivateKey) -> NoteSignature:
    vk = verifier_key(name, key)
    return NoteSignature(name=name, key_id=vk.key_id, signature=key.sign(text.encode()))


def sign_note(text: str, *signers: tuple[str, Ed25519PrivateKey]) -> str:
    """Return ``text`` signed by each ``(name, key)`` as a C2SP signed note."""
    return Note(text, tuple(signature(text, n, k) for n, k in signers)).to_text()


Mutate = Callable[[int, dict[str, Any]], bytes | None]


def make_entries(n: int, mutate: Mutate | None = None) -> list[bytes]:
    """``n`` hash-chained canonical JSON entries shaped like ledger records.

    ``mutate(i, record)`` may change record ``i`` in place (after its correct
    ``prev`` is set) or return the leaf bytes to use instead; the entries after
    it chain from whatever leaf ``i`` ends up being.
    """
    out: list[bytes] = []
    prev = "0" * 64
    for i in range(n):
        record: dict[str, Any] = {
            "v": 1,
            "index": i,
            "type": "evidence.deposited",
            "time": f"2025-01-01T00:00:{i % 60:02d}.{i % 1000000:06d}Z",
            "prev": prev,
            "commitment": hashlib.sha256(b"c%d" % i).hexdigest(),
            "body": {"kind": "hash", "n": i, "note": "存证 ok"},
        }
        leaf = mutate(i, record) if mutate is not None else None
        if leaf is None:
            leaf = canonicalize(record)
        out.append(leaf)
        prev = leaf_hash(leaf).hex()
    return out


def write_tiles(root: Path, entries: list[bytes]) -> None:
    """Write entry bundles and hash tiles (C2SP tlog-tiles) for ``entries``."""
    for b in range(0, len(entries), TILE_WIDTH):
        chunk = entries[b : b + TILE_WIDTH]
        _write(root / tile_path(-1, b // TILE_WIDTH, len(chunk)), encode_bundle(chunk))
    hashes = [leaf_hash(e) for e in entries]
    level = 0
    while hashes:
        full: list[bytes] = []
        for t in range(0, len(hashes), TILE_WIDTH):
            chunk = hashes[t : t + TILE_WIDTH]
            _write(root / tile_path(level, t // TILE_WIDTH, len(chunk)), b"".join(chunk))
            if len(chunk) == TILE_WIDTH:
                full.append(root_from_leaf_hashes(chunk))
        hashes = full
        level += 1


def checkpoint_text(
    entries: list[bytes], key: Ed25519PrivateKey, origin: str = ORIGIN, size: int | None = None
) -> str:
    """A signed checkpoint for the first ``size`` entries (all by default)."""
    n = len(entries) if size is None else size
    root = root_from_leaf_hashes([leaf_hash(e) for e in entries[:n]])
    body = Checkpoint(origin=origin, size=n, root=root).to_text()
    return sign_note(body, (origin, key))


def write_export(
    root: Path, entries: list[bytes], key: Ed25519PrivateKey, origin: str = ORIGIN
) -> str:
    """Write a whole export directory; return its checkpoint text."""
    root.mkdir(parents=True, exist_ok=True)
    write_tiles(root, entries)
    text = checkpoint_text(entries, key, origin)
    (root / "checkpoint").write_text(text, "utf-8")
    return text


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
