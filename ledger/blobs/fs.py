"""Filesystem blob store (the default with SQLite): one file per blob.

A write goes to a temporary file in ``ROOT/tmp``; finishing it fsyncs the
file, committing renames it to ``ROOT/<sha256[:2]>/<sha256>`` and fsyncs the
directory. An interrupted write leaves only a temporary file, which the
sweep removes once it has not been touched for a while.

A pin is an empty file ``ROOT/tmp/pin-<sha256>-<random>``; pinning and
discarding take an exclusive ``flock`` on the ``ROOT`` directory itself (no
lock file to lose, and ``flock`` excludes threads of one process as well as
processes, since each holder opens the directory anew). A crashed deposit's
pin is an old file in ``tmp``, removed by the sweep like a stalled write.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from ledger.blobs.base import (
    BlobInfo,
    BlobStore,
    Referenced,
    Staging,
    age_cutoff,
    check_address,
)
from ledger.errors import StorageError, os_errors

__all__ = ["FsBlobStore"]


def _disk(what: str) -> contextlib.AbstractContextManager[None]:
    """Operating system errors as ledger errors (:func:`ledger.errors.os_errors`)."""
    return os_errors("blobs", what, "nothing was stored")


# A large upload is flushed to disk while it is still arriving: otherwise every
# byte waits in the page cache for the one fsync before the receipt, and that
# fsync alone takes as long as writing the whole file (seconds per GiB).
SYNC_EVERY = 32 << 20
_SYNC_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="blob-sync")


class _FileStaging(Staging):
    """A temporary file in the store's ``tmp`` directory."""

    def __init__(self, store: FsBlobStore) -> None:
        self._store = store
        with _disk("create a staging file"):
            store.tmp.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=store.tmp, prefix="up-")
        self._path: Path | None = Path(name)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._unsynced = 0
        self._sync: Future[None] | None = None

    def write(self, block: bytes | memoryview) -> None:
        assert self._file is not None
        with _disk("write the upload"):
            self._file.write(block)
            self._unsynced += len(block)
            if self._unsynced >= SYNC_EVERY and (self._sync is None or self._sync.done()):
                # Start writing back what arrived so far (on a helper thread: the
                # upload goes on meanwhile); at most one such flush at a time.
                self._settle()
                self._file.flush()
                self._unsynced = 0
                self._sync = _SYNC_POOL.submit(os.fdatasync, self._file.fileno())

    def _settle(self) -> None:
        """Wait for the background flush (before the file is closed or synced)."""
        sync, self._sync = self._sync, None
        if sync is not None:
            with contextlib.suppress(OSError):
                sync.result()

    def commit(self, info: BlobInfo) -> None:
        assert self._file is not None
        assert self._path is not None
        self._settle()
        with _disk("write the upload"):
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        self._file = None
        dest = self._store.path_for(info.sha256)
        with _disk("store the upload"):
            dest.parent.mkdir(parents=True, exist_ok=True)
            # Same content, same name: replacing an existing copy is harmless.
            try:
                os.replace(self._path, dest)
            except FileNotFoundError as e:
                raise StorageError("blobs: the upload was swept as stalled; send it again") from e
            self._path = None
            _fsync_dir(dest.parent)

    def abort(self) -> None:
        self._settle()
        if self._file is not None:
            file, self._file = self._file, None
            # Closing flushes what is buffered: on a full disk that fails, and
            # the bytes are being discarded anyway.
            with contextlib.suppress(OSError):
                file.close()
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
            self._path = None


class FsBlobStore(BlobStore):
    """Blobs as files under one directory."""

    kind = "fs"

    def __init__(self, root: Path, inline: Callable[[str], bytes | None] | None = None) -> None:
        super().__init__(inline)
        self.root = root
        self.tmp = root / "tmp"

    def path_for(self, sha256: str) -> Path:
        """Where the blob of ``sha256`` lives (whether or not it exists)."""
        check_address(sha256)
        return self.root / sha256[:2] / sha256

    def _stage(self) -> Staging:
        return _FileStaging(self)

    def _open(self, sha256: str) -> BinaryIO | None:
        try:
            return self.path_for(sha256).open("rb")
        except FileNotFoundError:
            return None

    def _exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def _delete(self, sha256: str) -> bool:
        path = self.path_for(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive use of the pins and of removal, across threads and processes."""
        with _disk("lock the blob store"):
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _pin_prefix(self, sha256: str) -> str:
        return f"pin-{sha256}-"

    def _pin(self, sha256: str) -> str:
        name = self._pin_prefix(sha256) + secrets.token_hex(8)
        with self._locked(), _disk("pin the upload"):
            self.tmp.mkdir(parents=True, exist_ok=True)
            (self.tmp / name).touch(exist_ok=False)
        return name

    def _unpin(self, sha256: str, pin: str) -> None:
        (self.tmp / pin).unlink(missing_ok=True)

    def _pinned(self, sha256: str) -> bool:
        prefix = self._pin_prefix(sha256)
        try:
            with os.scandir(self.tmp) as it:
                return any(e.name.startswith(prefix) for e in it)
        except FileNotFoundError:
            return False

    def _discard(self, sha256: str, referenced: Referenced) -> bool:
        with self._locked():
            if self._pinned(sha256) or referenced(sha256):
                return False
            return self._delete(sha256)

    def _sweep_partials(self, older_than: float) -> int:
        n = 0
        if self.tmp.exists():
            cutoff = age_cutoff(older_than)
            for p in self.tmp.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if p.stat().st_mtime < cutoff:
                        p.unlink()
                        n += 1
        return n

    def _stored(self, older_than: float) -> Iterator[str]:
        if not self.root.exists():
            return
        cutoff = age_cutoff(older_than)
        for sub in sorted(self.root.iterdir()):
            if len(sub.name) != 2 or not sub.is_dir():
                continue
            for p in sorted(sub.iterdir()):
                with contextlib.suppress(FileNotFoundError):
                    if p.name.startswith(sub.name) and p.stat().st_mtime < cutoff:
                        yield p.name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
