"""Cross-check RFC 9162 hashing and proofs against pymerkle (an independent
implementation; a test-only dependency). pymerkle 7's ``InmemoryTree`` with its
default settings (SHA-256, ``security=True``) uses the RFC 9162 0x00/0x01
prefixes; its indexes are 1-based and its inclusion path starts with the
leaf's own hash, followed by the RFC 9162 path. Its consistency proofs use a
different path format, so for those we compare roots and check that our
verifier accepts the RFC 9162 proof between pymerkle's roots.
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

pymerkle = pytest.importorskip("pymerkle")

N = 150
LEAVES = [b"entry %d" % i for i in range(N)]
HASHES = [leaf_hash(x) for x in LEAVES]


@pytest.fixture(scope="module")
def tree() -> object:
    t = pymerkle.InmemoryTree()
    for x in LEAVES:
        t.append_entry(x)
    return t


def test_leaf_hashes_agree(tree: object) -> None:
    for i in range(N):
        assert tree.get_leaf(i + 1) == HASHES[i]  # type: ignore[attr-defined]


def test_roots_agree_for_every_size(tree: object) -> None:
    from verifier.merkle import root_from_leaf_hashes

    for n in range(1, N + 1):
        assert tree.get_root(n) == root_from_leaf_hashes(HASHES[:n])  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_inclusion_paths_agree(tree: object, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, N))
    index = data.draw(st.integers(0, size - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        proof = tree.prove_inclusion(index + 1, size)  # type: ignore[attr-defined]
    path = [bytes.fromhex(x) for x in proof.serialize()["path"]]
    assert path[0] == HASHES[index]
    assert path[1:] == inclusion_proof(index, HASHES[:size])
    # and our verifier accepts pymerkle's proof against pymerkle's root.
    verify_inclusion(HASHES[index], index, size, path[1:], tree.get_root(size))  # type: ignore[attr-defined]
    pymerkle.verify_inclusion(HASHES[index], tree.get_root(size), proof)  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_consistency_between_pymerkle_roots(tree: object, data: st.DataObject) -> None:
    new = data.draw(st.integers(1, N))
    old = data.draw(st.integers(1, new))
    old_root = tree.get_root(old)  # type: ignore[attr-defined]
    new_root = tree.get_root(new)  # type: ignore[attr-defined]
    verify_consistency(old, new, consistency_proof(old, HASHES[:new]), old_root, new_root)
    # pymerkle's own proof between the same roots verifies with pymerkle.
    proof = tree.prove_consistency(old, new)  # type: ignore[attr-defined]
    pymerkle.verify_consistency(old_root, new_root, proof)
