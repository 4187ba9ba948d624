"""Audit of a static C2SP tlog-tiles export of the evidence log.

An export directory holds ``checkpoint`` (a C2SP signed note whose body is a
C2SP tlog-checkpoint), the entry bundles ``tile/entries/<N>[.p/<W>]`` and the
hash tiles ``tile/<L>/<N>[.p/<W>]`` (C2SP tlog-tiles). :func:`audit_log`
recomputes everything from the entries and compares it with what is stored and
signed; it returns a :class:`LogAudit` report instead of stopping at the first
failure, so that a reader learns every check that failed and where.

Memory stays bounded: the entries are streamed one bundle at a time into a
:class:`~verifier.tiles.CompactRange`, which keeps one hash per level.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Collection
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verifier.canonical import loads_canonical, loads_strict
from verifier.checkpoint import Checkpoint
from verifier.errors import MalformedError, VerificationError
from verifier.merkle import EMPTY_ROOT, HASH_SIZE
from verifier.note import Note, VerifierKey, parse_note, verify_note
from verifier.tiles import (
    MAX_ENTRY_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    CompactRange,
    decode_bundle,
    tile_path,
)

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

__all__ = [
    "FAILED",
    "MAX_CHECKPOINT_SIZE",
    "PASSED",
    "SKIPPED",
    "CheckResult",
    "LogAudit",
    "audit_log",
]

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"

GENESIS_PREV = "0" * 64
_FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one audit check: ``passed``, ``failed`` or ``skipped``."""

    name: str
    status: str
    detail: str

    @property
    def ok(self) -> bool:
        """True only for a check that ran and passed."""
        return self.status == PASSED


@dataclass(frozen=True, slots=True)
class LogAudit:
    """The report of :func:`audit_log`: what was audited and every check's result."""

    directory: str
    origin: str
    size: int
    root: bytes
    old_size: int | None
    checks: tuple[CheckResult, ...]
    entries_read: int
    seconds: float
    events: tuple[tuple[int, bytes], ...] = ()
    """``(index, leaf)`` of entries of the types asked for with ``collect_types``."""
    roots: tuple[tuple[int, bytes], ...] = ()
    """``(size, root)`` of the tree at each size asked for with ``roots_at``."""

    @property
    def valid(self) -> bool:
        """True when every check ran and passed (a skipped check is not a pass)."""
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary, checks numbered from 1."""
        return {
            "valid": self.valid,
            "directory": self.directory,
            "origin": self.origin,
            "size": self.size,
            "root": base64.b64encode(self.root).decode("ascii"),
            "old_size": self.old_size,
            "entries_read": self.entries_read,
            "seconds": round(self.seconds, 6),
            "checks": [
                {"number": i, "name": c.name, "status": c.status, "detail": c.detail}
                for i, c in enumerate(self.checks, 1)
            ],
        }


class _Check:
    """Accumulates failures of one check; keeps the first and counts the rest."""

    __slots__ = ("failures", "first", "name", "skipped")

    def __init__(self, name: str) -> None:
        self.name = name
        self.failures = 0
        self.first = ""
        self.skipped = ""

    def fail(self, detail: str) -> None:
        if not self.failures:
            self.first = detail
        self.failures += 1

    def skip(self, reason: str) -> None:
        if not self.failures:
            self.skipped = reason

    def result(self, passed: str) -> CheckResult:
        if self.failures:
            more = f" (and {self.failures - 1} more)" if self.failures > 1 else ""
            return CheckResult(self.name, FAILED, self.first + more)
        if self.skipped:
            return CheckResult(self.name, SKIPPED, self.skipped)
        return CheckResult(self.name, PASSED, passed)


# Read no more than a valid file can hold: a hostile export must not exhaust memory.
MAX_CHECKPOINT_SIZE = 1 << 20
_MAX_BUNDLE_SIZE = TILE_WIDTH * (2 + MAX_ENTRY_SIZE)


def _read_input(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CHECKPOINT_SIZE + 1)
    except OSError as e:
        raise MalformedError(f"log: cannot read {what} {str(path)!r}: {e.strerror}") from e
    if len(data) > MAX_CHECKPOINT_SIZE:
        raise MalformedError(f"log: {what} {str(path)!r} is larger than {MAX_CHECKPOINT_SIZE}")
    return data


def _read_tile(root: Path, rel: str, limit: int = _FULL_TILE_BYTES) -> bytes | str:
    """Return a stored file's bytes, or a message saying why it cannot be used."""
    try:
        with open(root / rel, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        return f"{rel}: missing"
    except OSError as e:
        return f"{rel}: cannot read ({e.strerror})"
    if len(data) > limit:
        return f"{rel}: more than {limit} bytes"
    return data


def _open_note(data: bytes, what: str) -> tuple[Note, Checkpoint]:
    try:
        note = parse_note(data)
        return note, Checkpoint.from_text(note.text)
    except MalformedError as e:
        raise MalformedError(f"{what}: {e}") from e


def _check_signature(check: _Check, note: Note, cp: Checkpoint, key: VerifierKey) -> str:
    if cp.origin != key.name:
        check.fail(f"origin {cp.origin!r} is not the log key's name {key.name!r}")
        return ""
    try:
        verify_note(note, [key])
    except VerificationError as e:
        check.fail(str(e))
        return ""
    return f"signed by {key.name}+{key.key_id.hex()}"


class _TileChecker:
    """Compares stored hash tiles with recomputed ones, level by level."""

    def __init__(self, root: Path, check: _Check) -> None:
        self.root = root
        self.check = check
        self.compared = 0
        # Hashes of height 8*L collected for the level-L tile being filled (L >= 1).
        self.upper: dict[int, bytearray] = {}

    def compare(self, level: int, index: int, expected: bytes) -> None:
        width = len(expected) // HASH_SIZE
        rel = tile_path(level, index, width)
        stored = _read_tile(self.root, rel)
        self.compared += 1
        if isinstance(stored, str):
            self.check.fail(stored)
        elif stored != expected:
            self.check.fail(f"{rel}: {_first_difference(stored, expected)}")
        if width == TILE_WIDTH:
            _check_stale_partials(self.root, rel, expected, self.check, hashes=True)

    def add_nodes(self, completed: list[tuple[int, int, bytes]]) -> None:
        """Collect subtree roots of height 8*L; compare each level-L tile once full."""
        for height, index, node in completed:
            if height % TILE_HEIGHT:
                continue
            level = height // TILE_HEIGHT
            buf = self.upper.setdefault(level, bytearray())
            buf += node
            if len(buf) == _FULL_TILE_BYTES:
                self.compare(level, index // TILE_WIDTH, bytes(buf))
                buf.clear()
        completed.clear()

    def finish(self, size: int) -> None:
        """Compare the partial tile at every level above 0 (level 0 is done per bundle)."""
        for level, buf in sorted(self.upper.items()):
            if buf:
                count = size >> (TILE_HEIGHT * level)
                self.compare(level, count // TILE_WIDTH, bytes(buf))


def _check_stale_partials(
    root: Path, rel: str, full: bytes, check: _Check, *, hashes: bool
) -> None:
    """Partial tiles left beside a full one must be prefixes of it: C2SP
    tlog-tiles lets a client fetch either, so both must say the same thing."""
    partial_dir = root / (rel + ".p")
    if not partial_dir.is_dir():
        return
    for name in sorted(os.listdir(partial_dir)):
        label = f"{rel}.p/{name}"
        stored = _read_tile(partial_dir, name, _FULL_TILE_BYTES if hashes else _MAX_BUNDLE_SIZE)
        if isinstance(stored, str):
            check.fail(f"{label}: cannot read")
            continue
        if not (name.isdigit() and name.isascii() and 1 <= int(name) < TILE_WIDTH):
            check.fail(f"{label}: not a partial tile width")
            continue
        if hashes:
            ok = stored == full[: int(name) * HASH_SIZE]
        else:
            ok = full.startswith(stored) and _bundle_count(stored) == int(name)
        if not ok:
            check.fail(f"{label}: partial tile is not a prefix of the full tile")


def _bundle_count(data: bytes) -> int:
    try:
        return len(decode_bundle(data))
    except MalformedError:
        return -1


def _first_difference(stored: bytes, expected: bytes) -> str:
    if len(stored) != len(expected):
        return f"{len(stored)} bytes, expected {len(expected)}"
    for i in range(0, len(expected), HASH_SIZE):
        if stored[i : i + HASH_SIZE] != expected[i : i + HASH_SIZE]:
            return f"hash {i // HASH_SIZE} differs from the recomputed one"
    return "differs"  # pragma: no cover - equal lengths and equal hashes


class _BundleError(Exception):
    """An entry bundle is missing, unreadable or does not split as expected."""


def _load_bundle(root: Path, index: int, size: int) -> tuple[str, bytes, list[bytes]]:
    """Read entry bundle ``index`` of a tree of ``size``: (path, bytes, entries)."""
    width = min(TILE_WIDTH, size - index * TILE_WIDTH)
    rel = tile_path(-1, index, width)
    data = _read_tile(root, rel, _MAX_BUNDLE_SIZE)
    if isinstance(data, str):
        raise _BundleError(data)
    try:
        return rel, data, decode_bundle(data, width)
    except MalformedError as e:
        raise _BundleError(f"{rel}: {e}") from e


class _EntryChecks:
    """Checks (5), (6) and (7) over a run of consecutive entries."""

    __slots__ = ("canonical", "chain", "indexes", "prev_hex")

    def __init__(self, prev_hex: str | None) -> None:
        self.canonical = _Check("canonical entries")
        self.indexes = _Check("entry indexes")
        self.chain = _Check("hash chain")
        # None: the entry before the run could not be read (reported elsewhere).
        self.prev_hex = prev_hex

    def run(self, entries: list[bytes], hashes: list[bytes], start: int) -> None:
        for offset, entry in enumerate(entries):
            self._one(entry, start + offset)
            self.prev_hex = hashes[offset].hex()

    def _one(self, entry: bytes, position: int) -> None:
        try:
            obj = loads_canonical(entry)
        except MalformedError as e:
            self.canonical.fail(f"entry {position}: {e}")
            try:
                obj = loads_strict(entry)  # still check index and chain if it parses
            except MalformedError:
                self.indexes.fail(f"entry {position}: not JSON")
                self.chain.fail(f"entry {position}: not JSON")
                return
        if type(obj) is not dict:
            for check in (self.canonical, self.indexes, self.chain):
                check.fail(f"entry {position}: not a JSON object")
            return
        index = obj.get("index")
        if type(index) is not int or index != position:
            self.indexes.fail(f"entry {position}: index is {index!r}")
        prev = obj.get("prev")
        if self.prev_hex is not None and prev != self.prev_hex:
            before = "64 zeros (first entry)" if position == 0 else f"entry {position - 1}"
            self.chain.fail(f"entry {position}: prev is {prev!r}, not the leaf hash of {before}")

    def state(self) -> tuple[tuple[int, str], ...]:
        return tuple((c.failures, c.first) for c in (self.canonical, self.indexes, self.chain))

    def merge(self, state: tuple[tuple[int, str], ...]) -> None:
        """Add the failures of a later run (its first failure comes after ours)."""
        for check, (failures, first) in zip(
            (self.canonical, self.indexes, self.chain), state, strict=True
        ):
            if failures:
                check.fail(first)
                check.failures += failures - 1


def _check_entry_chunk(directory: str, first: int, last: int, size: int) -> _ChunkState:
    """Run checks (5)-(7) on bundles ``first`` to ``last - 1`` (a worker's share).

    Stops silently at a bundle it cannot read: the main process reports that.
    """
    root = Path(directory)
    prev_hex: str | None = GENESIS_PREV
    if first:
        try:
            prev_entries = _load_bundle(root, first - 1, size)[2]
            prev_hex = hashlib.sha256(b"\x00" + prev_entries[-1]).hexdigest()
        except _BundleError:
            prev_hex = None
    checks = _EntryChecks(prev_hex)
    for b in range(first, last):
        try:
            entries = _load_bundle(root, b, size)[2]
        except _BundleError:
            break
        hashes = [hashlib.sha256(b"\x00" + e).digest() for e in entries]
        checks.run(entries, hashes, b * TILE_WIDTH)
    return checks.state()


# Bundles per worker task, and the least number of bundles worth a process pool.
_CHUNK_BUNDLES = 16
_PARALLEL_MIN_BUNDLES = 2 * _CHUNK_BUNDLES

_ChunkState = tuple[tuple[int, str], ...]


class _WorkerChunks:
    """Checks (5)-(7) in worker processes, a bounded number of chunks ahead of
    the main loop (a checkpoint may claim any size; only what exists is read)."""

    def __init__(self, pool: ProcessPoolExecutor, directory: str, size: int, window: int) -> None:
        self.pool = pool
        self.directory = directory
        self.size = size
        self.n_bundles = (size + TILE_WIDTH - 1) // TILE_WIDTH
        self.starts = iter(range(0, self.n_bundles, _CHUNK_BUNDLES))
        self.pending: deque[tuple[int, Future[_ChunkState] | None]] = deque()
        for _ in range(window):
            self._submit()

    def _submit(self) -> None:
        # Imported here: multiprocessing costs tens of milliseconds of start-up
        # that single-process uses of the verifier (a certificate) never need.
        from concurrent.futures.process import BrokenProcessPool

        first = next(self.starts, None)
        if first is not None:
            future: Future[_ChunkState] | None
            try:
                future = self.pool.submit(_check_entry_chunk, *self._args(first))
            except BrokenProcessPool:
                future = None  # done here when its turn comes
            self.pending.append((first, future))

    def _args(self, first: int) -> tuple[str, int, int, int]:
        last = min(first + _CHUNK_BUNDLES, self.n_bundles)
        return self.directory, first, last, self.size

    def _result(self, first: int, future: Future[_ChunkState] | None) -> _ChunkState:
        from concurrent.futures.process import BrokenProcessPool

        if future is not None:
            try:
                return future.result()
            except BrokenProcessPool:  # a worker died (killed, out of memory)
                pass
        return _check_entry_chunk(*self._args(first))

    def collect(self, checks: _EntryChecks, bundle: int) -> None:
        """Merge, in log order, the chunks that end before ``bundle``; submit more."""
        while self.pending and self.pending[0][0] + _CHUNK_BUNDLES <= bundle:
            checks.merge(self._result(*self.pending.popleft()))
            self._submit()

    def finish(self, checks: _EntryChecks, bad_bundle: int) -> None:
        """Merge the rest, up to the first bundle that could not be read."""
        if bad_bundle == self.n_bundles:
            self.collect(checks, self.n_bundles + _CHUNK_BUNDLES)
        for first, future in self.pending:
            if first < bad_bundle:
                checks.merge(self._result(first, future))
        self.pending.clear()


def audit_log(
    directory: str | os.PathLike[str],
    log_key: VerifierKey,
    old_checkpoint: bytes | None = None,
    *,
    workers: int = 1,
    collect_types: Collection[str] = (),
    roots_at: Collection[int] = (),
    progress: Callable[[int, int], None] | None = None,
) -> LogAudit:
    """Audit a tlog-tiles export directory (C2SP tlog-tiles, tlog-checkpoint).

    Raises :class:`MalformedError` when an input cannot be read or parsed at
    all (the directory, its checkpoint, the old checkpoint); every other
    problem is reported as a failed check. The checks, in report order:

    (1) the checkpoint is signed by ``log_key`` and its origin is the key name;
    (2) with ``old_checkpoint``: it is signed by the same key, same origin;
    (3) with ``old_checkpoint``: its size is not larger (no rollback);
    (4) every entry bundle, full and partial, exists and holds the expected
        number of entries (stale partial bundles are prefixes of full ones);
    (5) every entry is RFC 8785 canonical JSON of an object;
    (6) each entry's ``index`` is its position in the log;
    (7) each entry's ``prev`` is the lowercase hex RFC 9162 leaf hash of the
        previous entry (64 zeros for entry 0): the hash chain;
    (8) every hash tile, at every level, full and partial, equals the hashes
        recomputed from the entries;
    (9) the RFC 9162 root of all entries equals the checkpoint's root;
    (10) with ``old_checkpoint``: the root of the first ``old size`` entries
        equals the old checkpoint's root, so the old tree is a prefix.

    With ``workers > 1`` and a large log, checks (5)-(7), the JSON parsing,
    run in that many worker processes while this one hashes; the report is the
    same as with one process.

    In the same pass, entries whose record ``type`` is in ``collect_types``
    are returned in :attr:`LogAudit.events` (found by their canonical
    ``"type":"..."`` bytes; the caller decodes them) and the tree's root at
    each size in ``roots_at`` in :attr:`LogAudit.roots`, so a caller can look
    for revocations and compare other checkpoints without reading the log twice.

    ``progress``, if given, is called after each bundle with the entries read
    so far and the log's size.
    """
    started = time.perf_counter()
    root_dir = Path(directory)
    if not root_dir.is_dir():
        raise MalformedError(f"log: {str(root_dir)!r} is not a directory")
    note, cp = _open_note(_read_input(root_dir / "checkpoint", "checkpoint"), "checkpoint")
    size = cp.size

    results: list[CheckResult] = []
    sig = _Check("checkpoint signature")  # (1)
    signed = _check_signature(sig, note, cp, log_key)
    results.append(sig.result(f"{signed}; origin {cp.origin!r}, size {size}"))

    old_cp: Checkpoint | None = None
    if old_checkpoint is not None:
        old_note, old_cp = _open_note(old_checkpoint, "old checkpoint")
        old_sig = _Check("old checkpoint signature")  # (2)
        old_signed = _check_signature(old_sig, old_note, old_cp, log_key)
        results.append(old_sig.result(f"{old_signed}; size {old_cp.size}"))
        rollback = _Check("no rollback")  # (3)
        if old_cp.size > size:
            rollback.fail(
                f"old checkpoint has size {old_cp.size}, the export only {size}: "
                "the log was rolled back"
            )
        results.append(rollback.result(f"size {old_cp.size} -> {size}"))

    bundles = _Check("entry bundles")  # (4)
    entry_checks = _EntryChecks(GENESIS_PREV)  # (5), (6), (7)
    tiles = _Check("hash tiles")  # (8)
    tree_root = _Check("tree root")  # (9)
    prefix = _Check("old tree is a prefix")  # (10)

    n_bundles = (size + TILE_WIDTH - 1) // TILE_WIDTH
    old_size = old_cp.size if old_cp is not None else -1
    old_root = EMPTY_ROOT if old_size == 0 else None
    checker = _TileChecker(root_dir, tiles)
    cr = CompactRange()
    completed: list[tuple[int, int, bytes]] = []
    position = 0
    bad_bundle = n_bundles  # the first bundle that could not be read
    sha256 = hashlib.sha256
    markers = tuple(b'"type":' + json.dumps(t).encode() for t in sorted(collect_types))
    found: list[tuple[int, bytes]] = []
    wanted = {n for n in roots_at if 0 < n <= size}
    roots: dict[int, bytes] = {0: EMPTY_ROOT} if 0 in roots_at else {}

    with ExitStack() as stack:
        chunks: _WorkerChunks | None = None
        if workers > 1 and n_bundles >= _PARALLEL_MIN_BUNDLES:
            try:
                from concurrent.futures import ProcessPoolExecutor

                pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers))
            except (OSError, NotImplementedError):  # no process support: one process it is
                pass
            else:
                stack.callback(pool.shutdown, cancel_futures=True)
                chunks = _WorkerChunks(pool, str(root_dir), size, 2 * workers)

        for b in range(n_bundles):
            if chunks is not None:
                chunks.collect(entry_checks, b)
            try:
                rel, data, entries = _load_bundle(root_dir, b, size)
            except _BundleError as e:
                bundles.fail(str(e))
                bad_bundle = b
                break
            if len(entries) == TILE_WIDTH:
                _check_stale_partials(root_dir, rel, data, bundles, hashes=False)
            hashes = [sha256(b"\x00" + e).digest() for e in entries]
            if chunks is None:
                entry_checks.run(entries, hashes, position)
            if markers and any(m in data for m in markers):  # rare: look entry by entry
                found += [
                    (position + i, e) for i, e in enumerate(entries) if any(m in e for m in markers)
                ]
            for lh in hashes:
                cr.append(lh, completed)
                position += 1
                if position == old_size:
                    old_root = cr.root()
                if wanted and position in wanted:
                    roots[position] = cr.root()
            checker.compare(0, b, b"".join(hashes))
            checker.add_nodes(completed)
            if progress is not None:
                progress(position, size)

        if chunks is not None:
            chunks.finish(entry_checks, bad_bundle)

    if bad_bundle == n_bundles:
        checker.finish(size)
        computed = cr.root()
        if computed != cp.root:
            tree_root.fail(
                f"recomputed root {base64.b64encode(computed).decode()} is not the "
                f"checkpoint root {base64.b64encode(cp.root).decode()}"
            )
    else:
        reason = "not checked: the entries could not all be read"
        for check in (entry_checks.canonical, entry_checks.indexes, entry_checks.chain):
            check.skip(reason)
        tiles.skip(reason)
        tree_root.skip(reason)

    results += [
        bundles.result(f"{n_bundles} bundles, {position} entries"),
        entry_checks.canonical.result(f"{position} entries are RFC 8785 canonical JSON objects"),
        entry_checks.indexes.result(f"indexes 0..{size - 1} in order" if size else "no entries"),
        entry_checks.chain.result("every prev is the leaf hash of the entry before"),
        tiles.result(f"{checker.compared} hash tiles match the entries"),
        tree_root.result(f"root of {size} entries matches the checkpoint"),
    ]
    if old_cp is not None:
        if old_cp.size > size:
            prefix.skip("not checked: the old tree is larger than the export")
        elif old_root is None:
            prefix.skip("not checked: the entries could not all be read")
        elif old_root != old_cp.root:
            prefix.fail(
                f"root of the first {old_cp.size} entries is not the old checkpoint's root: "
                "the log was rewritten"
            )
        results.append(prefix.result(f"first {old_cp.size} entries give the old root"))

    return LogAudit(
        directory=str(root_dir),
        origin=cp.origin,
        size=size,
        root=cp.root,
        old_size=old_cp.size if old_cp is not None else None,
        checks=tuple(results),
        entries_read=position,
        seconds=time.perf_counter() - started,
        events=tuple(found),
        roots=tuple(sorted(roots.items())),
    )
