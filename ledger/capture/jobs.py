"""Capture jobs: a bounded worker pool, with job records on disk.

``POST /v1/captures`` submits a job and answers at once; a capture takes
seconds. At most ``capture.concurrency`` captures run at a time (each is a
Chromium process) and at most ``capture.queue_max`` more wait; beyond that
:meth:`CapturePool.submit` raises :class:`QueueFull` (HTTP 429).

Job records are small JSON files in ``HOME/captures/jobs/`` written
atomically, so any API process on the host can answer ``GET`` for a job
another process runs, and a record survives a restart. A record still
``queued`` or ``running`` whose process is gone reads as ``interrupted``: the
capture never produced evidence and can be submitted again.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.capture.errors import CaptureFailed
from ledger.capture.options import CaptureOptions
from ledger.errors import LedgerError, StorageError
from ledger.events import format_time, new_id

__all__ = ["ACTIVE", "CaptureJob", "CapturePool", "JobStore", "QueueFull"]

ACTIVE = ("queued", "running")
_ID = re.compile(r"[0-9a-f]{32}")


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
    pid: int = field(default_factory=os.getpid)

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
    """Job records as ``<job_id>.json`` files in one directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def save(self, job: CaptureJob) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{job.job_id}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(job.to_json(), ensure_ascii=False, sort_keys=True), "utf-8")
        os.replace(tmp, self.dir / f"{job.job_id}.json")

    def load(self, job_id: str) -> CaptureJob | None:
        """The job, or None; an active job whose process died reads as interrupted."""
        if not _ID.fullmatch(job_id):
            return None
        try:
            raw = json.loads((self.dir / f"{job_id}.json").read_text("utf-8"))
            job = CaptureJob(**raw)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as e:
            raise StorageError(f"capture: job record {job_id} is unreadable ({e})") from e
        if job.status in ACTIVE and not _alive(job.pid):
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

    def __init__(self, store: JobStore, run: Runner, *, concurrency: int, queue_max: int) -> None:
        self.store = store
        self._run = run
        self._slots = threading.BoundedSemaphore(concurrency + queue_max)
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="capture")
        self._lock = threading.Lock()
        self._queued: set[str] = set()

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
        try:
            self.store.save(job)
            with self._lock:
                self._queued.add(job.job_id)
            self._executor.submit(self._work, job, options)
        except BaseException:
            self._slots.release()
            raise
        return job

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
            self._slots.release()

    def shutdown(self) -> None:
        """Stop: running captures finish; queued ones are recorded as interrupted."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            left, self._queued = self._queued, set()
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
