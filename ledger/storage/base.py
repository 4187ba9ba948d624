"""The storage contract every backend implements, and the logic they share.

Backends own transactions, locking and SQL; this module owns what goes into a
row. ``append`` runs one transaction per group of drafts: take the sequencing
lock, read the head, build records with contiguous indices and the hash chain,
check what "only once" drafts require of the state (:mod:`ledger.guards`),
insert events, private bodies and projection rows, commit. It returns only
after the commit, so a receipt always names a durable entry.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ledger.events import Draft, format_time
from ledger.guards import Require, requirements
from ledger.projections import PROJECTIONS, Insert, Op, Update, project, project_event
from ledger.storage.search import SearchSql
from verifier.merkle import leaf_hash
from verifier.record import GENESIS_PREV, encode_record

__all__ = [
    "CHECKPOINTS_HEAD",
    "FORMAT",
    "LINK_GENESIS",
    "PUBLICATIONS_HEAD",
    "Appended",
    "CheckpointRow",
    "JobRecord",
    "LinkedCheckpoint",
    "LinkedPublication",
    "LiveRow",
    "ProjectionView",
    "Publication",
    "RenewalBatch",
    "RenewalRow",
    "SealTxn",
    "Store",
    "TileRow",
    "build_rows",
    "checkpoint_link",
    "publication_link",
]

FORMAT = "evidence-ledger/1"

LINK_GENESIS = "0" * 64
"""The ``prev`` of the first checkpoint and of the first publication."""
CHECKPOINTS_HEAD = "checkpoints_head"
PUBLICATIONS_HEAD = "publications_head"
"""Meta keys holding ``"<size> <link>"`` of the latest checkpoint and publication,
written in the transaction that inserts it (see :func:`checkpoint_link`)."""


def _link(tag: bytes, fields: Sequence[bytes]) -> str:
    h = hashlib.sha256(tag)
    for f in fields:
        h.update(len(f).to_bytes(8, "big"))
        h.update(f)
    return h.hexdigest()


def checkpoint_link(prev: str | None, size: int, root: bytes, note: str, time: str) -> str:
    """The hash that the next checkpoint row stores as its ``prev``.

    It covers every column of the row, ``prev`` included, so each row commits
    to the whole sequence before it: removing or changing a row breaks the
    link of the row after it. The latest row is covered by the meta record
    :data:`CHECKPOINTS_HEAD` (and by the tiles, written with it).
    """
    fields = [(prev or "").encode(), str(size).encode(), root, note.encode(), time.encode()]
    return _link(b"evidence-ledger checkpoint link\n", fields)


def publication_link(prev: str | None, size: int, note: str, token: bytes | None, time: str) -> str:
    """The hash that the next publication row stores as its ``prev`` (see
    :func:`checkpoint_link`); a null token and an empty one differ."""
    tok = b"-" if token is None else b"+" + token
    fields = [(prev or "").encode(), str(size).encode(), note.encode(), tok, time.encode()]
    return _link(b"evidence-ledger publication link\n", fields)


@dataclass(frozen=True, slots=True)
class Appended:
    """What the log assigned to one draft."""

    index: int
    type: str
    time: str
    leaf_hash: bytes
    ref: str


@dataclass(frozen=True, slots=True)
class TileRow:
    """A stored hash tile: its hashes and the inner nodes of complete subtrees."""

    level: int
    index: int
    width: int
    hashes: bytes
    inner: bytes


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """A checkpoint (the full signed-note text)."""

    size: int
    root: bytes
    note: str
    time: str


@dataclass(frozen=True, slots=True)
class LinkedCheckpoint:
    """A checkpoint row as stored, with the link it holds to the row before."""

    row: CheckpointRow
    prev: str | None

    @property
    def link(self) -> str:
        r = self.row
        return checkpoint_link(self.prev, r.size, r.root, r.note, r.time)


@dataclass(frozen=True, slots=True)
class LinkedPublication:
    """A publication row as stored (not joined: an orphan shows), its link to
    the row before, and the sealed checkpoint of its size if there is one."""

    size: int
    note: str
    token: bytes | None
    time: str
    prev: str | None
    sealed: CheckpointRow | None

    @property
    def link(self) -> str:
        return publication_link(self.prev, self.size, self.note, self.token, self.time)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A stored capture job (:mod:`ledger.capture.jobs`) and how fresh it is."""

    job_id: str
    record: str
    """The job as JSON."""
    age: float
    """Seconds since its last heartbeat, by the database's clock (the same
    for every host, whatever their own clocks say)."""


@dataclass(frozen=True, slots=True)
class LiveRow:
    """An interactive capture session as the database relays it
    (:mod:`ledger.services.interactive`)."""

    owner: str
    session_id: str
    holder: str
    """The process that runs the session's browser."""
    state: str
    """What the page shows, as JSON, as the holder last wrote it."""
    age: float
    """Seconds since the holder last wrote the state (database clock)."""
    seen: float
    """Seconds since a page last asked for a frame or the state, anywhere."""
    watched: float
    """Seconds since a process other than the holder last asked for a frame."""
    ending: str | None
    """``finish`` or ``abandon`` once asked for."""
    sent: int
    """Input actions accepted so far."""
    outcome: str | None
    """Once the session has ended: ``{"result": ..., "error": ...}`` as JSON."""


@dataclass(frozen=True, slots=True)
class Publication:
    """A published checkpoint: the log-signed note with the witnesses'
    cosignature lines appended, and the RFC 3161 token over its body."""

    size: int
    root: bytes
    note: str
    time: str
    token: bytes | None = None

    def checkpoint_row(self) -> CheckpointRow:
        return CheckpointRow(self.size, self.root, self.note, self.time)


@dataclass(frozen=True, slots=True)
class RenewalBatch:
    """One renewal timestamp (RFC 4998 archive timestamp) over a hash tree of
    earlier timestamps: the token as the TSA sent it and what it says."""

    batch: str
    """Hex SHA-256 of the token."""
    time: str
    algorithm: str
    """hashlib name of the hash tree's algorithm."""
    token: bytes
    gen_time: str
    not_after: str
    """When the certificate of the TSA that made it expires."""
    tsa: str
    hash_tree_renewal: bool


@dataclass(frozen=True, slots=True)
class RenewalRow:
    """A renewal of one token of a published checkpoint: the ``seq``-th archive
    timestamp after it, in ArchiveTimeStampChain ``chain``, made by ``batch``,
    with this record's reduced hash tree (the encoded PartialHashtree lists)."""

    size: int
    line: int
    """Position of the renewed token in the checkpoint's token set."""
    seq: int
    chain: int
    batch: str
    hashtree: bytes


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows of one append transaction."""

    events: list[tuple[int, str, str, bytes, bytes]]
    private: list[tuple[int, bytes, bytes]]
    ops: list[Op]
    appended: list[Appended]
    blobs: list[tuple[str, bytes]]
    """Inline content ``(sha256, bytes)`` of small file deposits (``blob_data``)."""
    checks: list[tuple[int, int, list[Require]]]
    """Requirements of "only once" drafts (:mod:`ledger.guards`): ``(position
    of the draft, number of ops of the drafts before it, requirements)``."""


def build_rows(drafts: Sequence[Draft], start: int, prev: bytes | None, last_time: str) -> Rows:
    """Assign indices, time and the hash chain to ``drafts``.

    Time never goes backwards in the log, even if the clock does.
    """
    now = format_time(datetime.now(UTC))
    time = max(now, last_time)
    prev_hex = prev.hex() if prev is not None else GENESIS_PREV
    events: list[tuple[int, str, str, bytes, bytes]] = []
    private: list[tuple[int, bytes, bytes]] = []
    ops: list[Op] = []
    appended: list[Appended] = []
    blobs: list[tuple[str, bytes]] = []
    checks: list[tuple[int, int, list[Require]]] = []
    for i, d in enumerate(drafts):
        index = start + i
        leaf = encode_record(index, d.type, time, prev_hex, d.commitment, d.body_json)
        h = leaf_hash(leaf)
        events.append((index, d.type, time, leaf, h))
        private.append((index, d.salt, d.private_json))
        required = requirements(d.event)
        if required:
            checks.append((i, len(ops), required))
        ops.extend(project_event(d.event, index, time))
        appended.append(Appended(index, d.type, time, h, d.ref))
        if d.blob is not None:
            blobs.append((d.private["sha256"], d.blob))
        prev_hex = h.hex()
    return Rows(
        events=events, private=private, ops=ops, appended=appended, blobs=blobs, checks=checks
    )


def replay_ops(
    rows: Iterator[tuple[int, str, str, bytes, bytes, bytes]],
) -> Iterator[Op]:
    """Projection operations for stored events ``(idx, type, time, leaf, salt, private)``."""
    for index, type_, time, leaf, _salt, private in rows:
        record = json.loads(leaf)
        yield from project(type_, record["body"], json.loads(private), index, time)


def insert_columns(table: str) -> tuple[str, ...]:
    return tuple(name for name, _ in PROJECTIONS[table])


class SealTxn(Protocol):
    """Reads and writes available to the sealer inside its locked transaction."""

    def size(self) -> int: ...
    def latest_checkpoint(self) -> CheckpointRow | None: ...
    def leaf_hashes(self, start: int, end: int) -> list[bytes]: ...
    def tiles(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], TileRow]: ...
    def put_tiles(self, rows: Sequence[TileRow]) -> None: ...
    def add_checkpoint(self, row: CheckpointRow) -> None: ...
    def publish(self, pub: Publication) -> None: ...


class ProjectionView(Protocol):
    """One committed state of the log and its projections, read without a lock."""

    def size(self) -> int: ...
    def log_rows(
        self, start: int, end: int
    ) -> Generator[tuple[int, str, str, bytes, bytes], None, None]:
        """``(idx, type, time, leaf, private body)`` in index order."""
        ...

    def projection_rows(self, table: str) -> Generator[tuple[Any, ...], None, None]:
        """Every row of a projection table, in PROJECTIONS column order, by ``idx``."""
        ...


class Store(ABC):
    """Abstract event store: the log, its tiles and checkpoints, projections."""

    kind: str
    url: str
    """The URL that opens this store again (``sqlite:///PATH`` or ``postgresql://...``)."""

    # -- lifecycle -------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None:
        """Read a value from the store's meta table."""

    # -- the log ---------------------------------------------------------
    @abstractmethod
    def append(self, drafts: Sequence[Draft]) -> list[Appended]:
        """Sequence and durably commit ``drafts`` in one transaction.

        Each draft's requirements (:func:`ledger.guards.requirements`) are
        checked in that transaction, in order, against the state left by the
        entries before it; the first that fails raises
        :class:`~ledger.errors.StateConflict` naming the draft's position,
        and nothing of the group is appended."""

    @abstractmethod
    def size(self) -> int:
        """Number of entries in the log."""

    @abstractmethod
    def entries(self, start: int, end: int) -> list[tuple[int, str, str, bytes, bytes]]:
        """Events ``(idx, type, time, leaf, leaf_hash)`` with ``start <= idx < end``."""

    @abstractmethod
    def inline_blob(self, sha256: str) -> bytes | None:
        """Content of a small deposit stored with its event, if there is one."""

    @abstractmethod
    def privates(self, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        """Private parts ``(idx, salt, private_json)`` with ``start <= idx < end``."""

    # -- tree ------------------------------------------------------------
    @abstractmethod
    def tiles(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], TileRow]:
        """Stored tiles for ``(level, index)`` keys; missing ones are absent."""

    @abstractmethod
    def all_tiles(self) -> Iterator[TileRow]:
        """Every stored tile, ordered by level then index."""

    @abstractmethod
    def latest_checkpoint(self) -> CheckpointRow | None:
        """The most recent published checkpoint."""

    @abstractmethod
    def checkpoint(self, size: int) -> CheckpointRow | None:
        """The checkpoint published for exactly ``size`` entries."""

    @abstractmethod
    def checkpoints(self) -> list[CheckpointRow]:
        """All checkpoints in increasing size."""

    @abstractmethod
    def checkpoint_page(self, after: int, limit: int) -> list[LinkedCheckpoint]:
        """Up to ``limit`` checkpoints of size > ``after`` (-1: from the first), by size."""

    @abstractmethod
    def tile_extent(self) -> list[tuple[int, int, int]]:
        """``(level, index, width)`` of every stored tile, by level then index."""

    # -- publication (anchoring) ------------------------------------------
    # ``checkpoints`` holds every checkpoint the sealer integrated and signed;
    # ``publications`` the ones whose anchoring policy was met, written after
    # the witnesses and the TSA answered, outside the sealing transaction.
    @abstractmethod
    def publish(self, pub: Publication) -> bool:
        """Record a published checkpoint; False if that size was already published."""

    @abstractmethod
    def latest_publication(self) -> Publication | None:
        """The published checkpoint of the largest size."""

    @abstractmethod
    def publication(self, size: int) -> Publication | None:
        """The published checkpoint of exactly ``size`` entries."""

    @abstractmethod
    def recent_publications(self, limit: int) -> list[Publication]:
        """The ``limit`` published checkpoints of the largest sizes, largest first."""

    @abstractmethod
    def publications(self) -> list[Publication]:
        """All published checkpoints in increasing size."""

    # -- timestamp renewal (RFC 4998) --------------------------------------
    # Append-only, beside the publications they renew.
    @abstractmethod
    def add_renewal(self, batch: RenewalBatch, rows: Sequence[RenewalRow]) -> int:
        """Record a renewal timestamp and the records it extends; return the rows
        added (a row another run added first is skipped)."""

    @abstractmethod
    def renewal_batches(self) -> list[RenewalBatch]:
        """Every renewal timestamp, oldest first."""

    @abstractmethod
    def renewals(self, size: int | None = None) -> list[RenewalRow]:
        """Renewal rows (of one checkpoint, or all) by size, line and seq."""

    @abstractmethod
    def publication_page(self, after: int, limit: int) -> list[LinkedPublication]:
        """Up to ``limit`` publication rows of size > ``after``, by size, each with
        the sealed checkpoint of its size (None for an orphan)."""

    @abstractmethod
    def sealing(self) -> AbstractContextManager[SealTxn]:
        """A transaction holding the sealing lock (one sealer at a time)."""

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[SealTxn]:
        """A read-only view of one committed state, taking no lock (writes fail)."""

    # -- capture jobs ----------------------------------------------------
    # Mutable records, not part of the log: any host answers for any job.
    @abstractmethod
    def put_capture_job(
        self, job_id: str, owner: str | None, status: str, record: str, due: float | None = None
    ) -> None:
        """Insert or replace a job's record; its heartbeat becomes now. ``due``
        (epoch seconds) marks a job that waits for a worker to claim it then."""

    @abstractmethod
    def claim_due_capture_jobs(self, limit: int) -> list[JobRecord]:
        """Take up to ``limit`` jobs whose due time has come (by the database's
        clock), earliest first, clearing their due time: each is handed to
        one claimer only, across processes and hosts."""

    @abstractmethod
    def capture_job(self, job_id: str) -> JobRecord | None:
        """A job's record, or None."""

    @abstractmethod
    def touch_capture_jobs(self, job_ids: Sequence[str]) -> None:
        """Renew the heartbeat of jobs this process still holds."""

    # -- interactive capture sessions ----------------------------------------
    # One row per rights holder: a lease the process running the browser
    # renews, with what the page needs; any process serves the page from it.
    @abstractmethod
    def live_take(self, owner: str, session_id: str, holder: str, ttl: float, state: str) -> bool:
        """Open a session for ``owner`` unless one that has not ended or
        expired holds the row; whether this one did (atomic across hosts)."""

    @abstractmethod
    def live_renew(self, session_id: str, ttl: float, state: str) -> LiveRow | None:
        """The holder's heartbeat: extend the lease, store the state; the row
        as it now stands, or None when the session lost its row."""

    @abstractmethod
    def live_row(self, owner: str) -> LiveRow | None:
        """``owner``'s session: live, or ended with its outcome kept; None when
        there is none or its lease expired."""

    @abstractmethod
    def live_touch(self, session_id: str, watched: bool) -> None:
        """A page asked for the state (or a frame, ``watched``: from another process)."""

    @abstractmethod
    def live_end(self, session_id: str, how: str) -> None:
        """Ask the holder to ``finish`` or ``abandon`` (the first request wins)."""

    @abstractmethod
    def live_count(self, session_id: str, n: int, most: int, rate: int) -> int | None:
        """Count ``n`` more inputs if the session takes input, stays within
        ``most`` in all and ``rate`` in the current second: the total, or None."""

    @abstractmethod
    def live_put_inputs(self, session_id: str, first: int, steps: Sequence[str]) -> None:
        """Inputs for the holder, numbered from ``first`` (as counted)."""

    @abstractmethod
    def live_take_inputs(self, session_id: str) -> list[tuple[int, str]]:
        """The holder takes the inputs waiting for it, in order (and removes them)."""

    @abstractmethod
    def live_put_frame(self, session_id: str, seq: int, at: str, jpeg: bytes) -> None:
        """The session's latest frame, for pages served by other processes."""

    @abstractmethod
    def live_frame(self, session_id: str, after: int) -> tuple[int, str, bytes] | None:
        """The latest frame (seq, time, JPEG) if newer than ``after``."""

    @abstractmethod
    def live_close(self, session_id: str, outcome: str, keep: float) -> None:
        """The session has ended: keep its outcome for ``keep`` seconds (for a
        page waiting on another process), drop its frame and inputs."""

    # -- rate limits -----------------------------------------------------
    # Token buckets shared by every worker and host (GCRA: one "theoretical
    # arrival time" per bucket, on the database's clock).
    @abstractmethod
    def take_rate(self, bucket: str, interval: float, tolerance: float) -> float:
        """Take one request from ``bucket`` atomically: 0.0 if it is allowed,
        else the seconds until one would be (and nothing is taken).

        One request every ``interval`` seconds, ``tolerance / interval + 1``
        at once (the burst).
        """

    @abstractmethod
    def rate_wait(self, bucket: str, tolerance: float) -> float:
        """Seconds until ``bucket`` would allow a request (0.0: now), taking nothing."""

    @abstractmethod
    def prune_rates(self) -> int:
        """Forget buckets that are full again (as good as absent); return how many."""

    # -- projections -----------------------------------------------------
    @abstractmethod
    def title_search(self, tokens: Sequence[str]) -> SearchSql:
        """How to join evidence with its title search rows
        (:mod:`ledger.storage.search`): through the index of ``tokens``, or
        row by row when there are none."""

    @abstractmethod
    def query(
        self, sql: str, params: Sequence[Any] = (), *, planned_each_time: bool = False
    ) -> list[dict[str, Any]]:
        """Read projection rows (portable SQL with ``?`` placeholders).

        ``planned_each_time``: never run it as a prepared statement, whose
        generic plan ignores the values; for queries whose best plan depends
        on them (a listing's filters)."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction; return the rows it changed.

        Only for operational tables outside the log (``sessions``): events,
        private bodies and projections change through ``append`` and ``rebuild``.
        """

    @abstractmethod
    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Drop and replay all projections; return the number of events replayed
        (``progress`` is told the count replayed so far, now and then)."""

    @abstractmethod
    def projection_view(self) -> AbstractContextManager[ProjectionView]:
        """A read-only snapshot of the log and its projections (for the audit)."""

    @abstractmethod
    def dump_projections(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every projection row, sorted, for comparisons."""

    @abstractmethod
    def storage_bytes(self) -> int:
        """Bytes the database occupies."""


def op_batches(ops: Sequence[Op]) -> Iterator[tuple[str, list[tuple[Any, ...]]] | Update]:
    """Group runs of inserts into the same table, keeping the order of operations."""
    table: str | None = None
    rows: list[tuple[Any, ...]] = []
    for op in ops:
        if isinstance(op, Insert) and op.table == table:
            rows.append(op.row)
            continue
        if table is not None:
            yield table, rows
            table, rows = None, []
        if isinstance(op, Insert):
            table, rows = op.table, [op.row]
        else:
            yield op
    if table is not None:
        yield table, rows
