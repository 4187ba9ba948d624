"""Captures (在线取证): start a capture job, follow it.

Rights holders start captures of their own; a job is visible to its owner and
to the roles that see everything (another account's job is not found).
Each process runs its jobs in a bounded pool, created on first use.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ledger.capture import CaptureOptions
from ledger.capture.jobs import CaptureJob, CapturePool, JobStore
from ledger.errors import NotFound
from ledger.services.policy import Actor, authorize, sees_all

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = ["CaptureService"]


class CaptureService:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._pool: CapturePool | None = None
        self._lock = threading.Lock()

    @property
    def pool(self) -> CapturePool:
        """This process's capture pool (created on first use)."""
        with self._lock:
            if self._pool is None:
                cfg = self._ledger.config.capture
                self._pool = CapturePool(
                    JobStore(self._ledger.store),
                    self._run,
                    concurrency=cfg.concurrency,
                    queue_max=cfg.queue_max,
                )
            return self._pool

    def _run(self, job: CaptureJob, options: CaptureOptions) -> dict[str, Any]:
        from ledger.capture.service import capture_evidence

        result = capture_evidence(
            self._ledger,
            job.url,
            options,
            owner=job.owner,
            title=job.title,
            capture_id=job.job_id,
        )
        return result.to_json()

    def create(
        self, actor: Actor, url: str, options: CaptureOptions, title: str | None = None
    ) -> CaptureJob:
        """Queue a capture of ``url`` for ``actor``; QueueFull when busy;
        InvalidInput when the options exceed the operator's limits."""
        authorize(actor, "capture.create")
        options.check_limits(self._ledger.config.capture)
        return self.pool.submit(url, options, actor.account_id or None, title)

    def get(self, actor: Actor, job_id: str) -> CaptureJob:
        """A job the caller may see; NotFound otherwise."""
        authorize(actor, "capture.read")
        job = self.pool.get(job_id)
        if job is None or not (sees_all(actor) or job.owner == actor.account_id):
            raise NotFound(f"capture: job {job_id} not found")
        return job

    def shutdown(self) -> None:
        """Stop the pool (running captures finish; queued ones become interrupted)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()
