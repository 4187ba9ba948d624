"""Tiles, sealing, checkpoints and proofs, on every backend.

Roots are cross-checked against ``verifier.merkle`` and against pymerkle (an
independent RFC 9162 implementation); tiles against hashes recomputed here
from the leaves with the reference tree-head function.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from ledger_helpers import ORIGIN, hash_drafts
from pymerkle import InmemoryTree

from ledger.core import Ledger
from ledger.errors import NotFound
from ledger.services import Services
from ledger.tree import NodeReader
from verifier.checkpoint import open_checkpoint
from verifier.errors import VerificationError
from verifier.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from verifier.note import VerifierKey
from verifier.tiles import TILE_HEIGHT, TILE_WIDTH


def tile_levels(size: int) -> int:
    """Number of tile levels holding hashes for a tree of ``size`` leaves."""
    n = 0
    while size >> (TILE_HEIGHT * n):
        n += 1
    return n


def level_hashes(hashes: list[bytes], level: int) -> list[bytes]:
    """Hashes at tile level ``level``: roots of perfect subtrees of 256**level leaves."""
    span = TILE_WIDTH**level
    return [
        root_from_leaf_hashes(hashes[i : i + span]) for i in range(0, len(hashes) - span + 1, span)
    ]


def expected_inner(tile_hashes: list[bytes]) -> bytes:
    """Inner nodes of a tile: complete aligned subtrees of heights 1..7, by height."""
    out = b""
    for s in range(1, TILE_HEIGHT):
        span = 1 << s
        out += b"".join(
            root_from_leaf_hashes(tile_hashes[k : k + span])
            for k in range(0, len(tile_hashes) - span + 1, span)
        )
    return out


def check_tiles(led: Ledger, hashes: list[bytes], size: int, only_edge: bool = False) -> None:
    """Stored tiles for a tree of ``size`` leaves equal tiles recomputed from leaves."""
    for level in range(tile_levels(size)):
        lh = level_hashes(hashes[:size], level) if level else hashes[:size]
        count = len(lh)
        first = max(0, (count - 1) // TILE_WIDTH - 1) if only_edge else 0
        for index in range(first, (count + TILE_WIDTH - 1) // TILE_WIDTH):
            want = lh[index * TILE_WIDTH : (index + 1) * TILE_WIDTH]
            row = led.store.tiles([(level, index)]).get((level, index))
            assert row is not None, f"tile {level}/{index} missing at size {size}"
            assert row.width == len(want), f"tile {level}/{index} width at size {size}"
            assert row.hashes == b"".join(want)
            assert row.inner == expected_inner(want), f"tile {level}/{index} inner nodes"


def seal_in_batches(led: Ledger, hashes: list[bytes], batch_max: int) -> None:
    """Seal everything pending, checking the right edge of the tiles after each batch."""
    while True:
        cp, more = led.seal_batch(batch_max)
        check_tiles(led, hashes, cp.size, only_edge=True)
        if not more:
            return


# (target log size, batch_max): crosses tile boundaries at levels 0, 1 and 2.
GROWTH = [
    (1, 1),
    (255, 100),
    (256, 100),
    (257, 100),
    (511, 200),
    (512, 1000),
    (513, 1000),
    (1000, 300),
    (65536 + 3, 20000),
]


def test_roots_proofs_and_checkpoints_as_the_log_grows(ledger: Ledger) -> None:
    hashes: list[bytes] = []
    for target, batch_max in GROWTH:
        receipts = list(Services(ledger).deposits.bulk(hash_drafts(target - len(hashes))))
        assert [r.index for r in receipts] == list(range(len(hashes), target))
        hashes.extend(bytes.fromhex(r.leaf_hash) for r in receipts)
        seal_in_batches(ledger, hashes, batch_max)
    size = len(hashes)
    entries = ledger.store.entries(0, size)
    assert [e[0] for e in entries] == list(range(size))
    assert [e[4] for e in entries] == hashes
    assert all(leaf_hash(e[3]) == e[4] for e in entries)
    check_tiles(ledger, hashes, size)

    cps = ledger.store.checkpoints()
    assert cps[0].size == 0
    assert cps[0].root == EMPTY_ROOT
    assert cps[-1].size == size
    sizes = [cp.size for cp in cps]
    assert sizes == sorted(set(sizes))
    assert {t for t, _ in GROWTH} <= set(sizes)
    assert all(b - a <= 20000 for a, b in itertools.pairwise(sizes))

    # Roots: the reference tree head and pymerkle agree with every checkpoint.
    peer = InmemoryTree()
    for e in entries:
        peer.append_entry(e[3])
    vkey = VerifierKey.from_text(ledger.verifier_key.to_text())
    for cp in cps:
        assert cp.root == root_from_leaf_hashes(hashes[: cp.size]), cp.size
        if cp.size:
            assert cp.root == peer.get_root(cp.size), cp.size
        signed = open_checkpoint(cp.note, [vkey], ORIGIN)
        assert signed.checkpoint.size == cp.size
        assert signed.checkpoint.root == cp.root
        assert signed.checkpoint.origin == ORIGIN

    # Inclusion: sampled indices, including tile edges, in every checkpoint.
    rnd = random.Random(7)
    edges = [0, 1, 254, 255, 256, 257, 511, 512, 65535, 65536, 65537]
    for cp in cps[1:]:
        n = cp.size
        picks = {i for i in edges if i < n} | {n - 1, n // 2} | {rnd.randrange(n) for _ in range(4)}
        for i in sorted(picks):
            got_cp, proof = ledger.inclusion_proof(i, n)
            assert got_cp == cp
            verify_inclusion(hashes[i], i, n, proof, cp.root)
            reader = NodeReader(ledger.store.tiles)
            assert reader.inclusion_proof(i, n) == proof
            assert reader.reads <= 2 * tile_levels(n) + 2, (i, n, reader.reads)
            if n <= 1000 or i == n - 1:
                assert proof == inclusion_proof(i, hashes[:n])

    # Consistency between every pair of published checkpoints.
    for a, b in itertools.combinations(cps, 2):
        old, new, proof = ledger.consistency_proof(a.size, b.size)
        assert (old, new) == (a, b)
        verify_consistency(a.size, b.size, proof, a.root, b.root)
        reader = NodeReader(ledger.store.tiles)
        assert reader.consistency_proof(a.size, b.size) == proof
        assert reader.reads <= 2 * tile_levels(b.size) + 2, (a.size, b.size, reader.reads)
        if b.size <= 1000 or (a.size, b.size) == (257, size):
            assert proof == consistency_proof(a.size, hashes[: b.size])


def test_every_proof_of_a_small_log(ledger: Ledger) -> None:
    """Every inclusion and every consistency proof, equal to the reference ones."""
    hashes = [a.leaf_hash for a in ledger.append(hash_drafts(40))]
    ledger.seal(batch_max=1)
    cps = ledger.store.checkpoints()
    assert [cp.size for cp in cps] == list(range(41))
    for cp in cps[1:]:
        for i in range(cp.size):
            _, proof = ledger.inclusion_proof(i, cp.size)
            assert proof == inclusion_proof(i, hashes[: cp.size])
    for a, b in itertools.combinations(cps, 2):
        _, _, proof = ledger.consistency_proof(a.size, b.size)
        assert proof == consistency_proof(a.size, hashes[: b.size])


def test_sealing_with_nothing_pending_returns_the_same_checkpoint(ledger: Ledger) -> None:
    empty = ledger.latest_checkpoint()
    assert empty.size == 0
    assert ledger.seal() == empty
    ledger.append(hash_drafts(3))
    cp = ledger.seal()
    assert cp.size == 3
    count = len(ledger.store.checkpoints())
    assert ledger.seal() == cp
    assert ledger.seal_batch(1) == (cp, False)
    assert len(ledger.store.checkpoints()) == count
    assert ledger.latest_checkpoint() == cp


def test_partial_tiles_extend_across_seals(ledger: Ledger) -> None:
    """A partial tile grows by whatever each seal brings, never rewriting what it has."""
    hashes: list[bytes] = []
    seen: dict[tuple[int, int], bytes] = {}
    for step in (1, 2, 5, 120, 128, 1, 300, 7):
        hashes.extend(a.leaf_hash for a in ledger.append(hash_drafts(step)))
        ledger.seal()
        check_tiles(ledger, hashes, len(hashes))
        for t in ledger.store.all_tiles():
            before = seen.get((t.level, t.index), b"")
            assert t.hashes.startswith(before)
            seen[(t.level, t.index)] = t.hashes
    assert len(hashes) == 564
    assert sorted(seen) == [(0, 0), (0, 1), (0, 2), (1, 0)]


def test_proof_requests_outside_the_tree_are_refused(ledger: Ledger) -> None:
    ledger.append(hash_drafts(5))
    cp = ledger.seal()
    ledger.append(hash_drafts(2))  # pending, not yet in any checkpoint
    with pytest.raises(NotFound):
        ledger.inclusion_proof(5)
    with pytest.raises(NotFound):
        ledger.inclusion_proof(0, 4)  # no checkpoint of that size
    with pytest.raises(NotFound):
        ledger.consistency_proof(0, 7)
    _, proof = ledger.inclusion_proof(4)
    with pytest.raises(VerificationError):
        verify_inclusion(ledger.store.entries(3, 4)[0][4], 4, cp.size, proof, cp.root)


def test_concurrent_sealers_never_store_a_stale_plan(ledger: Ledger, home: Path) -> None:
    """Two sealers (as in two service processes) race while deposits arrive.

    Each plans its checkpoint without the write lock; one whose starting
    checkpoint was superseded meanwhile must plan again, so the stored
    checkpoints grow strictly, each consistent with the one before, and every
    tile matches the leaves.
    """
    import threading

    from ledger.audit import audit

    other = Ledger.open(home)
    stop = threading.Event()
    errors: list[BaseException] = []

    def seal_until_stopped(led: Ledger) -> None:
        try:
            while not stop.is_set():
                led.seal_batch(batch_max=97)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    sealers = [threading.Thread(target=seal_until_stopped, args=(x,)) for x in (ledger, other)]
    for t in sealers:
        t.start()
    try:
        for _ in range(40):
            ledger.append(hash_drafts(50))
    finally:
        stop.set()
        for t in sealers:
            t.join()
        other.close()
    assert not errors, errors
    cp = ledger.seal()
    assert cp.size == 2000
    sizes = [c.size for c in ledger.store.checkpoints()]
    assert sizes == sorted(set(sizes))
    report = audit(ledger.store, ledger.verifier_key, ledger.config.origin)
    assert report.entries == 2000
    assert report.checkpoints == len(sizes)


def test_shared_node_cache_serves_repeat_proofs_and_stays_right_as_the_tree_grows(
    ledger: Ledger,
) -> None:
    """Ledger.reader() shares full tiles and right-edge range hashes between
    proofs; what it remembers never goes stale, because the tree only grows."""
    hashes: list[bytes] = []
    for batch in (700, 300, 1):
        hashes += [a.leaf_hash for a in ledger.append(hash_drafts(batch))]
        cp = ledger.seal()
        for i in (0, 255, 256, 511, cp.size - 1):
            cold = NodeReader(ledger.store.tiles).inclusion_proof(i, cp.size)
            warm = ledger.reader()
            assert warm.inclusion_proof(i, cp.size) == cold == inclusion_proof(i, hashes)
            again = ledger.reader()
            assert again.inclusion_proof(i, cp.size) == cold
            assert again.reads <= tile_levels(cp.size)  # only partial (growing) tiles
        for old in (1, 256, 700):
            if old < cp.size:
                assert ledger.reader().consistency_proof(old, cp.size) == consistency_proof(
                    old, hashes
                )
