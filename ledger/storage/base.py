"""The storage contract every backend implements, and the logic they share.

Backends own transactions, locking and SQL; this module owns what goes into a
row. ``append`` runs one transaction per group of drafts: take the sequencing
lock, read the head, build records with contiguous indices and the hash chain,
insert events, private bodies and projection rows, commit. It returns only
after the commit, so a receipt always names a durable entry.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ledger.events import Draft, format_time
from ledger.projections import PROJECTIONS, Insert, Op, Update, project, project_event
from ledger.storage.search import SearchSql
from verifier.merkle import leaf_hash
from verifier.record import GENESIS_PREV, encode_record

__all__ = [
    "FORMAT",
    "Appended",
    "CheckpointRow",
    "JobRecord",
    "Publication",
    "SealTxn",
    "Store",
    "TileRow",
    "build_rows",
]

FORMAT = "evidence-ledger/1"


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
class JobRecord:
    """A stored capture job (:mod:`ledger.capture.jobs`) and how fresh it is."""

    job_id: str
    record: str
    """The job as JSON."""
    age: float
    """Seconds since its last heartbeat, by the database's clock (the same
    for every host, whatever their own clocks say)."""


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
class Rows:
    """Rows of one append transaction."""

    events: list[tuple[int, str, str, bytes, bytes]]
    private: list[tuple[int, bytes, bytes]]
    ops: list[Op]
    appended: list[Appended]
    blobs: list[tuple[str, bytes]]
    """Inline content ``(sha256, bytes)`` of small file deposits (``blob_data``)."""


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
    for i, d in enumerate(drafts):
        index = start + i
        leaf = encode_record(index, d.type, time, prev_hex, d.commitment, d.body_json)
        h = leaf_hash(leaf)
        events.append((index, d.type, time, leaf, h))
        private.append((index, d.salt, d.private_json))
        ops.extend(project_event(d.event, index, time))
        appended.append(Appended(index, d.type, time, h, d.ref))
        if d.blob is not None:
            blobs.append((d.private["sha256"], d.blob))
        prev_hex = h.hex()
    return Rows(events=events, private=private, ops=ops, appended=appended, blobs=blobs)


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
        """Sequence and durably commit ``drafts`` in one transaction."""

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
    def rebuild(self) -> int:
        """Drop and replay all projections; return the number of events replayed."""

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
