"""Group commit: concurrent appends share one durable transaction.

Callers hand their drafts to one writer thread and wait. The writer takes
everything queued (up to ``group_max`` drafts), commits it in one transaction
and only then wakes the callers, so every receipt names a durable entry while
the cost of a commit (an fsync) is shared by the whole group. Indices across
processes stay contiguous because each transaction takes the store's
sequencing lock before reading the head. A draft whose requirement on the
state fails in that transaction (:mod:`ledger.guards`) is refused to its
caller alone; the rest of its group is committed without it.

Waiters are either thread futures (:meth:`Sequencer.submit`) or asyncio
futures (:meth:`Sequencer.submit_async`); the latter are settled with one
wake-up of their event loop per group, not one per caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError

from ledger.errors import LedgerError, StateConflict, StorageError
from ledger.events import Draft
from ledger.observe import Observer
from ledger.storage.base import Appended, Store

__all__ = ["Sequencer"]

_STOP = object()

Waiter = Future[list[Appended]] | asyncio.Future[list[Appended]]
Item = tuple[list[Draft], Waiter]
Outcome = tuple[Waiter, list[Appended] | None, Exception | None]


class Sequencer:
    """A writer thread that appends queued drafts in groups."""

    def __init__(
        self, store: Store, group_max: int = 10_000, observer: Observer | None = None
    ) -> None:
        self._store = store
        self.observer = observer or Observer()
        self._group_max = group_max
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.groups = 0

    def append(self, drafts: Sequence[Draft], timeout: float | None = None) -> list[Appended]:
        """Append ``drafts`` (contiguously, in order); return once they are durable."""
        if not drafts:
            return []
        return self.submit(drafts).result(timeout)

    def submit(self, drafts: Sequence[Draft]) -> Future[list[Appended]]:
        """Queue ``drafts``; the future resolves once they are durable."""
        fut: Future[list[Appended]] = Future()
        self._put(list(drafts), fut)
        return fut

    def submit_async(self, drafts: Sequence[Draft]) -> asyncio.Future[list[Appended]]:
        """Like :meth:`submit`, for a caller on the running event loop."""
        fut: asyncio.Future[list[Appended]] = asyncio.get_running_loop().create_future()
        self._put(list(drafts), fut)
        return fut

    def _put(self, drafts: list[Draft], fut: Waiter) -> None:
        with self._lock:
            if self._closed:
                raise StorageError("sequencer: the ledger is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sequencer", daemon=True)
                self._thread.start()
            self._queue.put((drafts, fut))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
            self._queue.put(_STOP)
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._store.close()  # this thread's connection
                return
            group = [item]
            count = len(item[0])  # type: ignore[index]
            stop = False
            while count < self._group_max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                group.append(nxt)
                count += len(nxt[0])  # type: ignore[index]
            self._commit(group)  # type: ignore[arg-type]
            if stop:
                self._store.close()
                return

    def _commit(self, group: list[Item]) -> None:
        while group:
            try:
                self._commit_group(group)
                return
            except StateConflict as e:
                # One caller's "only once" event found the state changed (a
                # certificate revoked meanwhile): refuse that caller alone and
                # commit the others again without it.
                refused = _item_at(group, e.position)
                _settle([(refused[1], None, e)])
                group = [item for item in group if item is not refused]

    def _commit_group(self, group: list[Item]) -> None:
        """Commit ``group`` in one transaction and settle its waiters; raise
        :class:`StateConflict` (settling nobody) when a requirement fails."""
        drafts = [d for ds, _ in group for d in ds]
        try:
            appended = self._store.append(drafts)
        except StateConflict:
            raise
        except Exception as e:
            if len(group) > 1:
                # One caller's conflicting event (a duplicate id) must not fail the
                # others it happened to be grouped with: commit each on its own.
                for item in group:
                    self._commit([item])
                return
            err = e
            if not isinstance(e, LedgerError):  # never leave a caller waiting forever
                err = StorageError(f"sequencer: append failed ({type(e).__name__}: {e})")
            _settle([(fut, None, err) for _, fut in group])
            return
        self.groups += 1
        self.observer.appended(drafts)
        outcomes: list[Outcome] = []
        pos = 0
        for ds, fut in group:
            outcomes.append((fut, appended[pos : pos + len(ds)], None))
            pos += len(ds)
        _settle(outcomes)


def _item_at(group: list[Item], position: int) -> Item:
    """The item of ``group`` holding the draft at ``position`` of the whole group."""
    for item in group:
        if position < len(item[0]):
            return item
        position -= len(item[0])
    return group[-1]


def _settle(outcomes: list[Outcome]) -> None:
    """Wake every waiter: thread futures directly, asyncio ones once per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        fut = outcome[0]
        if isinstance(fut, asyncio.Future):
            by_loop.setdefault(fut.get_loop(), []).append(outcome)
        else:
            _resolve(outcome)
    for loop, items in by_loop.items():
        # A closed loop raises RuntimeError: nobody waits there any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve_all, items)


def _resolve_all(items: list[Outcome]) -> None:
    for item in items:
        _resolve(item)


def _resolve(outcome: Outcome) -> None:
    fut, result, err = outcome
    if fut.done():  # cancelled: its caller went away (the entries stay durable)
        return
    with contextlib.suppress(InvalidStateError, asyncio.InvalidStateError):  # cancelled meanwhile
        if err is None:
            fut.set_result(result)  # type: ignore[arg-type]
        else:
            fut.set_exception(err)
