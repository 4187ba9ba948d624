"""Re-verify everything the ledger has stored, trusting none of it.

The audit (1) checks every checkpoint's signature with the log key, and the
sequence of checkpoints: each row's ``prev`` is the link hash of the row
before it and the latest is the one recorded in meta
(:func:`~ledger.storage.base.checkpoint_link`), so a checkpoint removed
anywhere, the latest included, is named; (2) walks every entry in order:
canonical record, index, hash chain, stored leaf hash, commitment opening
against the private body; (3) rebuilds every tile from the recomputed leaf
hashes and compares it, inner nodes included, and requires that the stored
tiles cover exactly the latest checkpoint (the sealer writes both in one
transaction); (4) compares the recomputed root with every checkpoint; (5)
checks that each checkpoint is consistent with the previous one using proofs
generated from storage; (6) checks the sequence of publications the same way
as (1), and that each one publishes a sealed checkpoint; (7) replays the log
into scratch projection tables and compares every stored projection row,
column by column (:mod:`ledger.projection_audit`). The first failure is
reported with the index where it happened. Stored files are checked by
:func:`ledger.blobs.audit.audit_blobs`, publications' cosignatures and tokens
by :func:`ledger.anchoring.audit_publications`.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ledger.errors import AuditError, StorageError
from ledger.projections import Op, project
from ledger.storage.base import (
    CHECKPOINTS_HEAD,
    LINK_GENESIS,
    PUBLICATIONS_HEAD,
    CheckpointRow,
    LinkedCheckpoint,
    Store,
    TileRow,
)
from ledger.tree import NodeReader, _inner_offset, make_tile, tile_root
from verifier.checkpoint import open_checkpoint
from verifier.errors import Error as VerifierError
from verifier.merkle import HASH_SIZE, leaf_hash, verify_consistency
from verifier.note import VerifierKey
from verifier.record import GENESIS_PREV, commitment, decode_record
from verifier.tiles import TILE_HEIGHT, TILE_WIDTH

__all__ = ["AuditReport", "audit", "audit_ledger", "check_publications"]

_T = TypeVar("_T")

if TYPE_CHECKING:
    from ledger.core import Ledger

CHUNK = 20_000
PAGE = 1000
"""Checkpoints and publications read per query."""


@dataclass(frozen=True, slots=True)
class AuditReport:
    entries: int
    checkpoints: int
    tiles: int
    seconds: float
    publications: int = 0
    projection_rows: int = 0

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
    ops: list[Op]
    """Projection operations of the chunk's entries, for step (7)."""


def check_entries(store: Store, start: int, end: int, replay: bool = True) -> _Chunk:
    """Step (2) for entries ``[start, end)``: record, index, chain inside the
    chunk, stored leaf hash, commitment opening. Returns the leaf hashes (and,
    with ``replay``, the projection operations of the entries)."""
    rows = _read(lambda: store.entries(start, end))
    privs = _read(lambda: store.privates(start, end))
    if len(rows) != end - start or len(privs) != end - start:
        gap = min(_first_gap(start, [r[0] for r in rows]), _first_gap(start, [p[0] for p in privs]))
        raise AuditError(f"entry {gap}: entry or private body is missing", gap)
    out = bytearray()
    # The chain is checked across the chunk's start too, from the entry before
    # it, so the first failure is named the same however the log is chunked.
    before = _read(lambda: store.entries(start - 1, start)) if start else []
    prev = leaf_hash(before[0][3]).hex() if before else GENESIS_PREV
    first_prev = first_time = last_time = ""
    ops: list[Op] = []
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
        if replay:
            ops += _replay(idx, rec.type, rec.time, rec.body, body)
        prev, last_time = h.hex(), rec.time
        out += h
    return _Chunk(bytes(out), first_prev, first_time, prev, last_time, ops)


def _replay(idx: int, type_: str, t: str, body: dict[str, object], private: bytes) -> list[Op]:
    """The projection operations of one entry, as ``rebuild`` computes them."""
    try:
        opened = json.loads(private)
    except ValueError as e:
        raise AuditError(f"entry {idx}: private body is not JSON ({e})", idx) from e
    return project(type_, body, opened, idx, t)


def _read(fn: Callable[[], list[_T]]) -> list[_T]:
    """A store read whose rows may hold values of the wrong SQL type."""
    try:
        return fn()
    except StorageError as e:
        raise AuditError(str(e), getattr(e, "index", None)) from e


_worker_store: Store | None = None


def _init_worker(url: str) -> None:
    global _worker_store
    from ledger.storage import open_store

    _worker_store = open_store(url)


def _check_in_worker(start: int, end: int, replay: bool) -> _Chunk:
    assert _worker_store is not None
    return check_entries(_worker_store, start, end, replay)


def _checked_chunks(
    store: Store, chunks: Sequence[tuple[int, int]], workers: int, replay: bool
) -> Iterator[_Chunk]:
    """Results of :func:`check_entries` in order, computed here or in a pool."""
    if workers <= 0 or len(chunks) < 4:  # starting processes costs more than it saves
        for start, end in chunks:
            yield check_entries(store, start, end, replay)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, ctx, _init_worker, (store.url,)) as pool:
        window: deque[Future[_Chunk]] = deque()
        todo = iter(chunks)
        for start, end in itertools.islice(todo, 2 * workers):
            window.append(pool.submit(_check_in_worker, start, end, replay))
        while window:
            result = window.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                window.append(pool.submit(_check_in_worker, *nxt, replay))
            yield result


def _linked_checkpoints(store: Store) -> Iterator[LinkedCheckpoint]:
    """Every checkpoint row by size, a page at a time."""
    after = -1
    while True:
        page = _read(partial(store.checkpoint_page, after, PAGE))
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].row.size


def _head(store: Store, key: str, what: str) -> tuple[int, str] | None:
    """The ``(size, link)`` that meta records for the latest row of a sequence."""
    raw = store.get_meta(key)
    if raw is None:
        return None
    size, _, link = raw.partition(" ")
    if not size.isdigit() or len(link) != 64:
        raise AuditError(f"{what}: the record of the latest one is malformed ({raw[:80]!r})")
    return int(size), link


def _check_sequence(
    what: str, rows: Iterator[tuple[int, str | None, str]], head: tuple[int, str] | None
) -> int:
    """Steps (1) and (6): ``rows`` are ``(size, stored prev, own link)`` by size.
    Each row's prev must be the link of the row before it (the genesis value
    for the first), and the last row must be the one meta records."""
    expected, last, count = LINK_GENESIS, None, 0
    for size, prev, link in rows:
        if prev != expected:
            before = "the start of the sequence" if last is None else f"{what} {last}"
            raise AuditError(
                f"{what} {size}: not linked to {before} (prev is "
                f"{_short(prev)}, expected {_short(expected)}): a {what} between them "
                "was removed, or one was changed"
            )
        expected, last, count = link, size, count + 1
    if count == 0 and head is None:
        return 0
    if head is None:
        raise AuditError(f"{what}s: the latest {what} ({last}) is not recorded in meta")
    if head != (last, expected):
        if last is None or head[0] > last:
            raise AuditError(
                f"{what}s: the latest {what} recorded is of size {head[0]}, but the latest "
                f"stored is {'none' if last is None else last}: a {what} was removed"
            )
        raise AuditError(
            f"{what} {last}: not the latest {what} recorded (size {head[0]}, link "
            f"{_short(head[1])}): the latest was removed, or one was changed"
        )
    return count


def _short(link: str | None) -> str:
    return "null" if link is None else repr(link[:16] + ("..." if len(link) > 16 else ""))


def audit(
    store: Store,
    log_key: VerifierKey,
    origin: str,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
    chunk: int = CHUNK,
    projections: bool = True,
    publications: bool = True,
) -> AuditReport:
    """Verify the whole store; raise :class:`AuditError` naming the first failure.

    With ``workers > 0`` the per-entry checks of step (2) run in that many
    processes, each reading its own chunks from the database, while this
    process rebuilds the tree from the leaf hashes they return. Without
    ``projections`` step (7) is skipped, without ``publications`` step (6).
    """
    from ledger.projection_audit import compare_projections
    from ledger.storage.replay import ProjectionReplay

    started = time.perf_counter()
    # (1) signatures, the checkpoint text against its row, and the sequence.
    integrated = 0

    def signed_checkpoints() -> Iterator[tuple[int, str | None, str]]:
        nonlocal integrated
        for linked in _linked_checkpoints(store):
            cp = linked.row
            try:
                signed = open_checkpoint(cp.note, [log_key], origin)
            except VerifierError as e:
                raise AuditError(f"checkpoint {cp.size}: {e}") from e
            if signed.checkpoint.size != cp.size or signed.checkpoint.root != cp.root:
                raise AuditError(f"checkpoint {cp.size}: signed text does not match the stored row")
            integrated = cp.size
            yield cp.size, linked.prev, linked.link

    head = _head(store, CHECKPOINTS_HEAD, "checkpoint")
    n_checkpoints = _check_sequence("checkpoint", signed_checkpoints(), head)
    size = _read(lambda: [store.size()])[0]
    if integrated > size:
        raise AuditError(f"checkpoint {integrated}: larger than the log ({size} entries)")

    builders: list[bytearray] = []  # per tile level, hashes of the current tile
    checked: dict[tuple[int, int], int] = {}  # tile -> width, as the entries make it
    prev = GENESIS_PREV
    last_time = ""
    stored_tiles = store.tiles
    full = TILE_WIDTH * HASH_SIZE

    def check_tile(level: int, index: int, hashes: bytes) -> bytes:
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
        checked[(level, index)] = expected.width
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

    with ProjectionReplay() as replay:
        chunks = [(s, min(size, s + chunk)) for s in range(0, size, chunk)]
        results = _checked_chunks(store, chunks, workers, projections)
        for (start, end), part in zip(chunks, results, strict=True):
            # The chain and the clock continue across chunks.
            if part.first_prev != prev:
                raise AuditError(f"entry {start}: hash chain broken (prev does not match)", start)
            if part.first_time < last_time:
                raise AuditError(f"entry {start}: time goes back", start)
            prev, last_time = part.last_hash, part.last_time
            if projections:
                replay.apply(part.ops)
            # (3) tiles: only the integrated part of the log is in tiles.
            take = max(0, min(end, integrated) - start)
            if take:
                feed(0, part.hashes[: take * HASH_SIZE])
            if progress:
                progress(end)
        # (3) the partial tiles on the right edge of the integrated tree, and
        # no stored tile beyond it: tiles and the latest checkpoint are written
        # together, so tiles past it mean a later checkpoint was removed.
        for level, buf in enumerate(builders):
            if buf:
                check_tile(level, next_tile[level], bytes(buf))
        _check_extent(store, checked, integrated)
        # (4) every stored tile now matches the entries, so roots read from
        # tiles are the entries' roots: each checkpoint must carry exactly that
        # root. (5) consecutive checkpoints are consistent, with proofs served
        # from storage.
        reader = NodeReader(store.tiles)
        before: CheckpointRow | None = None
        for linked in _linked_checkpoints(store):
            cp = linked.row
            if reader.root(cp.size) != cp.root:
                raise AuditError(
                    f"checkpoint {cp.size}: root does not match the entries", cp.size - 1
                )
            if before is not None:
                try:
                    proof = reader.consistency_proof(before.size, cp.size)
                    verify_consistency(before.size, cp.size, proof, before.root, cp.root)
                except (VerifierError, AuditError) as e:
                    raise AuditError(
                        f"checkpoint {cp.size}: not consistent with {before.size} ({e})"
                    ) from e
            before = cp
        # (6) publications: linked, the latest recorded, each of a sealed
        # checkpoint (after their signatures, in audit_ledger, when asked).
        n_publications = check_publications(store) if publications else 0
        # (7) projections against the replay of the log.
        rows = compare_projections(store, replay, size) if projections else 0
    return AuditReport(
        size,
        n_checkpoints,
        len(checked),
        time.perf_counter() - started,
        n_publications,
        rows,
    )


def _check_extent(store: Store, checked: dict[tuple[int, int], int], integrated: int) -> None:
    """Step (3): the stored tiles are exactly those of the latest checkpoint."""
    for level, index, width in _read(store.tile_extent):
        want = checked.get((level, index))
        if want is None or width != want:
            first = (index * TILE_WIDTH + (want or 0)) << (TILE_HEIGHT * level)
            raise AuditError(
                f"tile {level}/{index}: holds {width} hashes, the latest checkpoint "
                f"({integrated} entries) accounts for {want or 0}: a later checkpoint "
                "was removed, or the tile was changed",
                first,
            )


def check_publications(store: Store) -> int:
    """Step (6): the publication rows (not joined with checkpoints, so an orphan
    shows), each publishing a sealed checkpoint, linked like the checkpoints."""

    def rows() -> Iterator[tuple[int, str | None, str]]:
        after = -1
        while True:
            page = _read(partial(store.publication_page, after, PAGE))
            for pub in page:
                if pub.sealed is None:
                    raise AuditError(
                        f"publication {pub.size}: no sealed checkpoint of that size "
                        "(the checkpoint was removed)"
                    )
                yield pub.size, pub.prev, pub.link
            if len(page) < PAGE:
                return
            after = page[-1].size

    head = _head(store, PUBLICATIONS_HEAD, "publication")
    return _check_sequence("publication", rows(), head)


_UNREADABLE = (TypeError, ValueError, KeyError, IndexError, UnicodeError, OverflowError)
"""What stored values of an unexpected shape can raise in the checks."""


def audit_ledger(
    ledger: Ledger,
    *,
    workers: int = 0,
    files: bool = True,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Everything the ``audit`` command checks, as its JSON summary; raises
    :class:`AuditError` (never another exception on bad stored data): the log
    (:func:`audit`), the publications' cosignatures and tokens
    (:func:`ledger.anchoring.audit_publications`) and, with ``files``, every
    stored file (:func:`ledger.blobs.audit.audit_blobs`)."""
    from ledger.anchoring import audit_publications
    from ledger.blobs.audit import audit_blobs

    try:
        report = audit(
            ledger.store,
            ledger.verifier_key,
            ledger.config.origin,
            progress=progress,
            workers=workers,
            publications=False,
        )
        # Signatures first: an edited publication is named by what is wrong
        # with it, before the link that its edit breaks.
        published = audit_publications(ledger)
        check_publications(ledger.store)
        out: dict[str, Any] = {
            "ok": True,
            "entries": report.entries,
            "checkpoints": report.checkpoints,
            "publications": published,
            "tiles": report.tiles,
            "projection_rows": report.projection_rows,
            "seconds": round(report.seconds, 3),
            "entries_per_second": round(report.entries_per_second),
        }
        if files:
            checked = audit_blobs(ledger.store, ledger.blobs)
            out |= {"files": checked.files, "file_bytes": checked.bytes}
    except StorageError as e:
        raise AuditError(str(e), getattr(e, "index", None)) from e
    except _UNREADABLE as e:
        why = f"{type(e).__name__}: {e}"
        raise AuditError(f"audit: stored data of an unexpected form ({why})") from e
    return out
