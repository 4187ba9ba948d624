"""Group commit: concurrent appends share one durable transaction.

Callers hand their drafts to one writer thread and wait. The writer takes
everything queued (up to ``group_max`` drafts), commits it in one transaction
and only then wakes the callers, so every receipt names a durable entry while
the cost of a commit (an fsync) is shared by the whole group. Indices across
processes stay contiguous because each transaction takes the store's
sequencing lock before reading the head.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future

from ledger.errors import LedgerError, StorageError
from ledger.events import Draft
from ledger.storage.base import Appended, Store

__all__ = ["Sequencer"]

_STOP = object()


class Sequencer:
    """A writer thread that appends queued drafts in groups."""

    def __init__(self, store: Store, group_max: int = 10_000) -> None:
        self._store = store
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
        with self._lock:
            if self._closed:
                raise StorageError("sequencer: the ledger is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sequencer", daemon=True)
                self._thread.start()
            self._queue.put((list(drafts), fut))
        return fut

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

    def _commit(self, group: list[tuple[list[Draft], Future[list[Appended]]]]) -> None:
        drafts = [d for ds, _ in group for d in ds]
        try:
            appended = self._store.append(drafts)
        except Exception as e:
            if len(group) > 1:
                # One caller's conflicting event (a duplicate id) must not fail the
                # others it happened to be grouped with: commit each on its own.
                for item in group:
                    self._commit([item])
                return
            self._fail(group, e)
            return
        self.groups += 1
        pos = 0
        for ds, fut in group:
            fut.set_result(appended[pos : pos + len(ds)])
            pos += len(ds)

    @staticmethod
    def _fail(group: list[tuple[list[Draft], Future[list[Appended]]]], e: Exception) -> None:
        err = e
        if not isinstance(e, LedgerError):  # never leave a caller waiting forever
            err = StorageError(f"sequencer: append failed ({type(e).__name__}: {e})")
        for _, fut in group:
            fut.set_exception(err)
