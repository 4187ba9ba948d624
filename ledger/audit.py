"""Re-verify everything the ledger has stored, trusting none of it.

The audit (1) checks every checkpoint's signature with the log key; (2) walks
every entry in order: canonical record, index, hash chain, stored leaf hash,
commitment opening against the private body; (3) rebuilds every tile from the
recomputed leaf hashes and compares it, inner nodes included; (4) compares the
recomputed root with every checkpoint; (5) checks that each checkpoint is
consistent with the previous one using proofs generated from storage. The
first failure is reported with the index where it happened.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from ledger.errors import AuditError
from ledger.storage.base import CheckpointRow, Store, TileRow
from ledger.tree import NodeReader, _inner_offset, make_tile, tile_root
from verifier.checkpoint import open_checkpoint
from verifier.errors import Error as VerifierError
from verifier.merkle import HASH_SIZE, leaf_hash, verify_consistency
from verifier.note import VerifierKey
from verifier.record import GENESIS_PREV, commitment, decode_record
from verifier.tiles import TILE_HEIGHT, TILE_WIDTH

__all__ = ["AuditReport", "audit"]

CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class AuditReport:
    entries: int
    checkpoints: int
    tiles: int
    seconds: float

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds else float("inf")


def _first_gap(start: int, indices: list[int]) -> int:
    """The first index from ``start`` on that ``indices`` (ascending) lacks."""
    for expected, got in zip(itertools.count(start), indices, strict=False):
        if got != expected:
            return expected
    return start + len(indices)


def _first_bad_hash(row: TileRow, expected: TileRow) -> int:
    """Position in the tile of the first hash that a wrong stored hash or inner
    node covers, so the error names the first entry that fails."""
    bad: list[int] = []
    for k in range(expected.width):
        at = k * HASH_SIZE
        if row.hashes[at : at + HASH_SIZE] != expected.hashes[at : at + HASH_SIZE]:
            bad.append(k)
            break
    if row.width == expected.width:
        for s in range(1, TILE_HEIGHT):
            off = _inner_offset(expected.width, s) * HASH_SIZE
            for j in range(expected.width >> s):
                at = off + j * HASH_SIZE
                if row.inner[at : at + HASH_SIZE] != expected.inner[at : at + HASH_SIZE]:
                    bad.append(j << s)
                    break
    return min(bad, default=0)


@dataclass(frozen=True, slots=True)
class _Chunk:
    """What the per-entry checks of one chunk hand to the tree checks."""

    hashes: bytes
    first_prev: str
    first_time: str
    last_hash: str
    last_time: str


def check_entries(store: Store, start: int, end: int) -> _Chunk:
    """Step (2) for entries ``[start, end)``: record, index, chain inside the
    chunk, stored leaf hash, commitment opening. Returns the leaf hashes."""
    rows = store.entries(start, end)
    privs = store.privates(start, end)
    if len(rows) != end - start or len(privs) != end - start:
        gap = min(_first_gap(start, [r[0] for r in rows]), _first_gap(start, [p[0] for p in privs]))
        raise AuditError(f"entry {gap}: entry or private body is missing", gap)
    out = bytearray()
    # The chain is checked across the chunk's start too, from the entry before
    # it, so the first failure is named the same however the log is chunked.
    before = store.entries(start - 1, start) if start else []
    prev = leaf_hash(before[0][3]).hex() if before else GENESIS_PREV
    first_prev = first_time = last_time = ""
    for (idx, type_, t, leaf, stored_hash), (pidx, salt, body) in zip(rows, privs, strict=True):
        try:
            rec = decode_record(leaf)
        except VerifierError as e:
            raise AuditError(f"entry {idx}: {e}", idx) from e
        if rec.index != idx or pidx != idx:
            raise AuditError(f"entry {idx}: record says index {rec.index}", idx)
        if idx == start:
            first_prev, first_time = rec.prev, rec.time
        if rec.prev != prev:
            raise AuditError(f"entry {idx}: hash chain broken (prev does not match)", idx)
        if rec.type != type_ or rec.time != t or rec.time < last_time:
            raise AuditError(f"entry {idx}: type or time column disagrees or goes back", idx)
        h = leaf_hash(leaf)
        if h != stored_hash:
            raise AuditError(f"entry {idx}: stored leaf hash does not match the leaf", idx)
        if commitment(salt, body) != rec.commitment:
            raise AuditError(f"entry {idx}: private body does not open the commitment", idx)
        prev, last_time = h.hex(), rec.time
        out += h
    return _Chunk(bytes(out), first_prev, first_time, prev, last_time)


_worker_store: Store | None = None


def _init_worker(url: str) -> None:
    global _worker_store
    from ledger.storage import open_store

    _worker_store = open_store(url)


def _check_in_worker(start: int, end: int) -> _Chunk:
    assert _worker_store is not None
    return check_entries(_worker_store, start, end)


def _checked_chunks(
    store: Store, chunks: Sequence[tuple[int, int]], workers: int
) -> Iterator[_Chunk]:
    """Results of :func:`check_entries` in order, computed here or in a pool."""
    if workers <= 0 or len(chunks) < 4:  # starting processes costs more than it saves
        for start, end in chunks:
            yield check_entries(store, start, end)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, ctx, _init_worker, (store.url,)) as pool:
        window: deque[Future[_Chunk]] = deque()
        todo = iter(chunks)
        for start, end in itertools.islice(todo, 2 * workers):
            window.append(pool.submit(_check_in_worker, start, end))
        while window:
            result = window.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                window.append(pool.submit(_check_in_worker, *nxt))
            yield result


def audit(
    store: Store,
    log_key: VerifierKey,
    origin: str,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
    chunk: int = CHUNK,
) -> AuditReport:
    """Verify the whole store; raise :class:`AuditError` naming the first failure.

    With ``workers > 0`` the per-entry checks of step (2) run in that many
    processes, each reading its own chunks from the database, while this
    process rebuilds the tree from the leaf hashes they return.
    """
    started = time.perf_counter()
    cps = store.checkpoints()
    # (1) signatures, and the checkpoint text must match its row.
    by_size: dict[int, CheckpointRow] = {}
    for cp in cps:
        try:
            signed = open_checkpoint(cp.note, [log_key], origin)
        except VerifierError as e:
            raise AuditError(f"checkpoint {cp.size}: {e}") from e
        if signed.checkpoint.size != cp.size or signed.checkpoint.root != cp.root:
            raise AuditError(f"checkpoint {cp.size}: signed text does not match the stored row")
        by_size[cp.size] = cp
    integrated = cps[-1].size if cps else 0
    size = store.size()
    if integrated > size:
        raise AuditError(f"checkpoint {integrated}: larger than the log ({size} entries)")

    builders: list[bytearray] = []  # per tile level, hashes of the current tile
    tiles_checked = 0
    prev = GENESIS_PREV
    last_time = ""
    stored_tiles = store.tiles
    full = TILE_WIDTH * HASH_SIZE

    def check_tile(level: int, index: int, hashes: bytes) -> bytes:
        nonlocal tiles_checked
        expected = make_tile(level, index, hashes)
        row = stored_tiles([(level, index)]).get((level, index))
        if row is None or row.width < expected.width:
            width = 0 if row is None else row.width
            first = (index * TILE_WIDTH + width) << (TILE_HEIGHT * level)
            raise AuditError(f"tile {level}/{index}: missing or too narrow", first)
        if row.hashes[: len(hashes)] != expected.hashes or (
            row.width == expected.width and row.inner != expected.inner
        ):
            bad = _first_bad_hash(row, expected)
            first = (index * TILE_WIDTH + bad) << (TILE_HEIGHT * level)
            raise AuditError(
                f"tile {level}/{index}: stored hashes do not match the entries from {first}",
                first,
            )
        tiles_checked += 1
        return tile_root(expected) if expected.width == TILE_WIDTH else b""

    next_tile: list[int] = []  # per level: index of the next full tile to check

    def feed(level: int, data: bytes) -> None:
        """Add hashes at ``level``; check each tile they complete, feed its root up."""
        while len(builders) <= level:
            builders.append(bytearray())
            next_tile.append(0)
        buf = builders[level]
        buf += data
        ups = bytearray()
        pos = 0
        while len(buf) - pos >= full:
            ups += check_tile(level, next_tile[level], bytes(buf[pos : pos + full]))
            next_tile[level] += 1
            pos += full
        del buf[:pos]
        if ups:
            feed(level + 1, bytes(ups))

    chunks = [(s, min(size, s + chunk)) for s in range(0, size, chunk)]
    for (start, end), part in zip(chunks, _checked_chunks(store, chunks, workers), strict=True):
        # The chain and the clock continue across chunks.
        if part.first_prev != prev:
            raise AuditError(f"entry {start}: hash chain broken (prev does not match)", start)
        if part.first_time < last_time:
            raise AuditError(f"entry {start}: time goes back", start)
        prev, last_time = part.last_hash, part.last_time
        # (3) tiles: only the integrated part of the log is in tiles.
        take = max(0, min(end, integrated) - start)
        if take:
            feed(0, part.hashes[: take * HASH_SIZE])
        if progress:
            progress(end)
    # (3) the partial tiles on the right edge of the integrated tree.
    for level, buf in enumerate(builders):
        if buf:
            check_tile(level, next_tile[level], bytes(buf))
    # (4) every stored tile now matches the entries, so roots read from tiles
    # are the entries' roots: each checkpoint must carry exactly that root.
    reader = NodeReader(store.tiles)
    for cp in cps:
        if reader.root(cp.size) != cp.root:
            raise AuditError(f"checkpoint {cp.size}: root does not match the entries", cp.size - 1)
    # (5) consecutive checkpoints are consistent, with proofs served from storage.
    for a, b in itertools.pairwise(cps):
        try:
            proof = reader.consistency_proof(a.size, b.size)
            verify_consistency(a.size, b.size, proof, a.root, b.root)
        except (VerifierError, AuditError) as e:
            raise AuditError(f"checkpoint {b.size}: not consistent with {a.size} ({e})") from e
    return AuditReport(size, len(cps), tiles_checked, time.perf_counter() - started)
