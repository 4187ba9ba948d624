"""Capture jobs: a bounded worker pool per process, job records in the database.

``POST /v1/captures`` submits a job and answers at once; a capture takes
seconds. At most ``capture.concurrency`` captures run at a time in a process
(each is a Chromium process) and at most ``capture.queue_max`` more wait;
beyond that :meth:`CapturePool.submit` raises :class:`QueueFull` (HTTP 429).

Job records live in the ledger's database (table ``capture_jobs``) and the
artefacts in its blob store, so any API process on any host answers ``GET``
for a job another one runs, and a record survives a restart. The pool
renews a heartbeat on the jobs it holds; a record still ``queued`` or
``running`` whose heartbeat stopped (or, on the same host, whose process is
gone) reads as ``interrupted``: the capture never produced evidence and can
be submitted again.

A job may also be **scheduled** (``POST /v1/captures`` with ``start_at``, or a
batch of URLs): its record waits in the database with a due time, as
``scheduled``, and the first worker (:meth:`CapturePool.start_worker`, run
by every ``serve`` process) with a free slot once that time has come claims
it, atomically across hosts, and runs it like any other job.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ledger.capture.errors import CaptureFailed
from ledger.capture.options import CaptureOptions
from ledger.errors import LedgerError, StorageError
from ledger.events import format_time, new_id
from ledger.storage.base import Store

__all__ = [
    "ACTIVE",
    "HEARTBEAT",
    "STALE_AFTER",
    "CaptureJob",
    "CapturePool",
    "JobStore",
    "QueueFull",
]

ACTIVE = ("queued", "running")
HEARTBEAT = 10.0
"""Seconds between two renewals of the heartbeat of the jobs a pool holds."""
STALE_AFTER = 60.0
"""Seconds without a heartbeat after which an active job reads as interrupted."""
WORKER_POLL = 1.0
"""Seconds between two looks for scheduled jobs whose time has come."""
_ID = re.compile(r"[0-9a-f]{32}")


def _host_id() -> str:
    """Names this machine and process namespace, so that a job's pid is only
    checked where it means the same process."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id") as f:
        parts.append(f.read().strip())
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    return "/".join(parts)


HOST = _host_id()


class QueueFull(LedgerError):
    """Every worker is busy and the queue is full; retry later."""


@dataclass(frozen=True, slots=True)
class CaptureJob:
    """One capture request and how it ended."""

    job_id: str
    owner: str | None
    url: str
    options: dict[str, Any]
    title: str | None
    status: str
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    detail: str | None = None
    limit: str | None = None
    capture_id: str | None = None
    evidence_id: str | None = None
    receipt: dict[str, Any] | None = None
    start_at: str | None = None
    """When a scheduled job was asked to start (UTC); it waits as ``scheduled``."""
    pid: int = field(default_factory=os.getpid)
    host: str = HOST

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return format_time(datetime.now(UTC))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobStore:
    """Job records in the ledger's database (any host reads any job)."""

    def __init__(self, store: Store, stale_after: float = STALE_AFTER) -> None:
        self.store = store
        self.stale_after = stale_after

    def save(self, job: CaptureJob, due: float | None = None) -> None:
        """Write the job's record; with ``due`` (epoch seconds), it waits until
        then for a worker to claim it (:meth:`claim_due`)."""
        record = json.dumps(job.to_json(), ensure_ascii=False, sort_keys=True)
        self.store.put_capture_job(job.job_id, job.owner, job.status, record, due)

    def claim_due(self, limit: int) -> list[CaptureJob]:
        """Up to ``limit`` scheduled jobs whose time has come, each handed to
        this caller only (an unreadable record is skipped, and stays claimed)."""
        out = []
        for row in self.store.claim_due_capture_jobs(limit):
            try:
                out.append(CaptureJob(**json.loads(row.record)))
            except (ValueError, TypeError):
                continue
        return out

    def touch(self, job_ids: list[str]) -> None:
        """Renew the heartbeat of jobs this process holds."""
        self.store.touch_capture_jobs(job_ids)

    def load(self, job_id: str) -> CaptureJob | None:
        """The job, or None; an active job whose holder is gone reads as interrupted."""
        if not _ID.fullmatch(job_id):
            return None
        row = self.store.capture_job(job_id)
        if row is None:
            return None
        try:
            job = CaptureJob(**json.loads(row.record))
        except (ValueError, TypeError) as e:
            raise StorageError(f"capture: job record {job_id} is unreadable ({e})") from e
        if job.status in ACTIVE and (
            row.age > self.stale_after or (job.host == HOST and not _alive(job.pid))
        ):
            return replace(
                job,
                status="interrupted",
                detail="the service stopped before the capture finished; submit it again",
            )
        return job


Runner = Callable[[CaptureJob, CaptureOptions], dict[str, Any]]
"""Runs one capture; returns the receipt JSON (with ``evidence_id`` and
``capture_id``) or raises :class:`CaptureFailed`."""


class CapturePool:
    """At most ``concurrency`` captures at once, ``queue_max`` more waiting."""

    def __init__(
        self,
        store: JobStore,
        run: Runner,
        *,
        concurrency: int,
        queue_max: int,
        heartbeat: float = HEARTBEAT,
    ) -> None:
        self.store = store
        self._run = run
        self._capacity = concurrency + queue_max
        self._slots = threading.BoundedSemaphore(self._capacity)
        self._worker: threading.Thread | None = None
        self._stop_worker = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="capture")
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self._held: set[str] = set()
        self._stop = threading.Event()
        self._beat = threading.Thread(
            target=self._heartbeat, args=(heartbeat,), name="capture-heartbeat", daemon=True
        )
        self._beat.start()

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                held = sorted(self._held)
            if held:
                # A missed beat is harmless; only a long silence marks jobs interrupted.
                with contextlib.suppress(LedgerError):
                    self.store.touch(held)

    def submit(
        self, url: str, options: CaptureOptions, owner: str | None, title: str | None
    ) -> CaptureJob:
        """Record a queued job and schedule it; :class:`QueueFull` if no slot is free."""
        if not self._slots.acquire(blocking=False):
            raise QueueFull("capture: every worker is busy and the queue is full; retry later")
        job = CaptureJob(
            job_id=new_id(),
            owner=owner,
            url=url,
            options=options.to_json(),
            title=title,
            status="queued",
            created_at=_now(),
        )
        self._enqueue(job, options)
        return job

    def schedule(
        self,
        urls: Sequence[str],
        options: CaptureOptions,
        owner: str | None,
        title: str | None,
        due: float,
        start_at: str | None,
    ) -> list[CaptureJob]:
        """Record one ``scheduled`` job per URL, due at ``due`` (epoch seconds):
        any worker (:meth:`start_worker`, on any host) claims it then."""
        jobs = []
        for url in urls:
            job = CaptureJob(
                job_id=new_id(),
                owner=owner,
                url=url,
                options=options.to_json(),
                title=title,
                status="scheduled",
                created_at=_now(),
                start_at=start_at,
            )
            self.store.save(job, due=due)
            jobs.append(job)
        return jobs

    def start_worker(self, every: float = WORKER_POLL) -> None:
        """Start claiming scheduled jobs whose time has come, as slots free up
        (idempotent)."""
        with self._lock:
            if self._worker is not None:
                return
            self._worker = threading.Thread(
                target=self._claim_loop, args=(every,), name="capture-scheduler", daemon=True
            )
            self._worker.start()

    def _claim_loop(self, every: float) -> None:
        while not self._stop_worker.wait(every):
            with contextlib.suppress(LedgerError):
                self.run_due()

    def run_due(self) -> int:
        """Claim as many due jobs as there are free slots and queue them; how many."""
        with self._lock:
            free = self._capacity - len(self._held)
        if free <= 0:
            return 0
        started = 0
        for job in self.store.claim_due(free):
            try:
                options = CaptureOptions.from_json(job.options)
            except LedgerError as e:
                self.store.save(replace(job, status="error", detail=str(e), finished_at=_now()))
                continue
            if not self._slots.acquire(blocking=False):  # a direct submit took it meanwhile
                self.store.save(job, due=0.0)  # back to the queue of due jobs
                continue
            self._enqueue(replace(job, status="queued"), options)
            started += 1
        return started

    def _enqueue(self, job: CaptureJob, options: CaptureOptions) -> None:
        """Record ``job`` as queued and hand it to a worker (a slot is held)."""
        try:
            self.store.save(job)
            with self._lock:
                self._queued.add(job.job_id)
                self._held.add(job.job_id)
            self._executor.submit(self._work, job, options)
        except BaseException:
            with self._lock:
                self._queued.discard(job.job_id)
                self._held.discard(job.job_id)
            self._slots.release()
            raise

    def get(self, job_id: str) -> CaptureJob | None:
        return self.store.load(job_id)

    def _work(self, job: CaptureJob, options: CaptureOptions) -> None:
        try:
            with self._lock:
                self._queued.discard(job.job_id)
            job = replace(job, status="running", started_at=_now())
            self.store.save(job)
            try:
                receipt = self._run(job, options)
            except CaptureFailed as e:
                job = replace(job, status=e.status, detail=e.detail, limit=e.limit)
            except LedgerError as e:
                job = replace(job, status="error", detail=str(e))
            except Exception as e:  # a bug must not leave the job running forever
                job = replace(job, status="error", detail=f"internal error: {type(e).__name__}")
            else:
                job = replace(
                    job,
                    status=str(receipt.get("capture_status", "complete")),
                    limit=receipt.get("limit_reached"),
                    capture_id=receipt.get("capture_id"),
                    evidence_id=receipt.get("evidence_id"),
                    receipt=receipt,
                )
            self.store.save(replace(job, finished_at=_now()))
        finally:
            with self._lock:
                self._held.discard(job.job_id)
            self._slots.release()

    def shutdown(self) -> None:
        """Stop: running captures finish; queued ones are recorded as interrupted
        (scheduled ones stay in the database for the next worker)."""
        self._stop_worker.set()
        worker = self._worker
        if worker is not None:
            worker.join()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._stop.set()
        with self._lock:
            left, self._queued = self._queued, set()
            self._held.clear()
        for job_id in left:
            job = self.store.load(job_id)
            if job is not None and job.status in ACTIVE:
                self.store.save(
                    replace(
                        job,
                        status="interrupted",
                        detail="the service stopped before the capture ran; submit it again",
                        finished_at=_now(),
                    )
                )
