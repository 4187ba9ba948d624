"""Captures (在线取证): start a capture job, schedule jobs, follow them.

Rights holders start captures of their own; a job is visible to its owner and
to the roles that see everything (another account's job is not found).
Each process runs its jobs in a bounded pool, created on first use.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ledger.capture import CaptureOptions
from ledger.capture.jobs import CaptureJob, CapturePool, JobStore
from ledger.errors import InvalidInput, NotFound
from ledger.events import format_time
from ledger.services.policy import Actor, authorize, sees_all

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = ["MAX_AHEAD", "MAX_BATCH", "CaptureService", "parse_start_at"]

MAX_BATCH = 20
"""URLs in one request."""
MAX_AHEAD = timedelta(days=30)
"""How far ahead a capture may be scheduled."""
_URL = re.compile(r"[hH][tT][tT][pP][sS]?://\S{1,8185}")


def parse_start_at(text: str) -> datetime:
    """An RFC 3339 date-time with its offset (``2026-03-01T09:00:00Z``,
    ``2026-03-01T17:00:00+08:00``); InvalidInput otherwise."""
    if not re.fullmatch(
        r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})", text
    ):
        raise InvalidInput(f"capture: start_at {text[:40]!r} is not RFC 3339 with a time zone")
    try:
        return datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError as e:
        raise InvalidInput(f"capture: start_at {text[:40]!r} is not a valid time ({e})") from e


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
        self,
        actor: Actor,
        url: str,
        options: CaptureOptions,
        title: str | None = None,
        start_at: datetime | None = None,
    ) -> CaptureJob:
        """Queue a capture of ``url`` for ``actor``, or with ``start_at`` schedule
        it; QueueFull when busy; InvalidInput when the options exceed the
        operator's limits or the start time is not in the allowed window."""
        if start_at is not None:
            return self.create_batch(actor, [url], options, title, start_at)[0]
        authorize(actor, "capture.create")
        options.check_limits(self._ledger.config.capture)
        return self.pool.submit(url, options, actor.account_id or None, title)

    def create_batch(
        self,
        actor: Actor,
        urls: Sequence[str],
        options: CaptureOptions,
        title: str | None = None,
        start_at: datetime | None = None,
    ) -> list[CaptureJob]:
        """Schedule captures of up to :data:`MAX_BATCH` URLs with the same options,
        at ``start_at`` (at most :data:`MAX_AHEAD` ahead) or as soon as a worker
        is free. The jobs wait in the database as ``scheduled``; any ``serve``
        process's worker runs them when their time comes.

        (1) the role; (2) one to MAX_BATCH distinct http(s) URLs; (3) no step
        typing a secret: a job's record never holds its text, so it could not
        be typed later; (4) the operator's limits; (5) the start in the future,
        within MAX_AHEAD, as an aware time.
        """
        authorize(actor, "capture.create")  # (1)
        if not 1 <= len(urls) <= MAX_BATCH:  # (2)
            raise InvalidInput(f"capture: a batch has 1 to {MAX_BATCH} URLs (not {len(urls)})")
        if len(set(urls)) != len(urls):
            raise InvalidInput("capture: a batch names each URL once")
        for url in urls:
            if not _URL.fullmatch(url):
                raise InvalidInput(f"capture: {url[:100]!r} is not an http or https URL")
        if options.secrets:  # (3)
            raise InvalidInput(
                "capture: a scheduled capture cannot type a secret (its text is never "
                "stored, so it could not be typed later); run it now instead"
            )
        options.check_limits(self._ledger.config.capture)  # (4)
        now = datetime.now(UTC)
        due = now
        if start_at is not None:  # (5)
            if start_at.tzinfo is None or start_at.utcoffset() is None:
                raise InvalidInput("capture: start_at needs a time zone (RFC 3339, e.g. ...Z)")
            if start_at <= now:
                raise InvalidInput("capture: start_at is in the past")
            if start_at > now + MAX_AHEAD:
                raise InvalidInput(f"capture: start_at is more than {MAX_AHEAD.days} days ahead")
            due = start_at.astimezone(UTC)
        return self.pool.schedule(
            list(urls),
            options,
            actor.account_id or None,
            title,
            due.timestamp(),
            None if start_at is None else format_time(due),
        )

    def start_worker(self) -> None:
        """Run scheduled jobs of every host's making in this process, as their
        time comes (the ``serve`` command does)."""
        self.pool.start_worker()

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
