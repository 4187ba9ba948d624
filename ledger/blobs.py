"""Content-addressed blob store: streamed writes hashed with SHA-256 and SM3.

A blob is written to a temporary file while both digests are computed, then
fsynced and renamed to ``blobs/<sha256[:2]>/<sha256>``. Memory stays constant
whatever the size; an interrupted write leaves only a temporary file, which
``sweep`` removes.

Small uploads may instead be kept inline (``inline_max``): their bytes are
stored in the ledger's database in the same transaction as their deposit
event, which spares a file creation and two fsyncs per deposit and can never
leave an orphan. ``open``/``exists`` look in the database when no file exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ledger.errors import InvalidInput, NotFound, TooLarge

__all__ = ["BlobInfo", "BlobStore", "StreamHasher"]

CHUNK = 1 << 20
WRITE_BLOCK = 512 * 1024  # small writes are gathered into blocks of this size


@dataclass(frozen=True, slots=True)
class BlobInfo:
    sha256: str
    sm3: str
    size: int
    data: bytes | None = None
    """The content itself when it was kept inline (not written to a file):
    the caller stores it with the deposit's event (see :class:`BlobStore`)."""


class StreamHasher:
    """SHA-256 and SM3 over a stream, with a byte limit.

    SM3 is several times slower than SHA-256 here, so large chunks are hashed
    with SM3 on a helper thread while SHA-256 runs on the caller's (hashlib
    releases the GIL on large buffers): the stream goes at the speed of the
    slower digest, not of the sum of both.
    """

    PARALLEL_MIN = 256 * 1024

    def __init__(self, limit: int | None = None) -> None:
        self._sha = hashlib.sha256()
        self._sm3 = hashlib.new("sm3")
        self.size = 0
        self.limit = limit
        self._pending: Future[None] | None = None

    def update(self, chunk: bytes | bytearray) -> None:
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise TooLarge(f"upload: larger than the limit of {self.limit} bytes")
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        if len(chunk) >= self.PARALLEL_MIN:
            self._pending = _HASH_POOL.submit(self._sm3.update, chunk)
        else:
            self._sm3.update(chunk)
        self._sha.update(chunk)

    def info(self) -> BlobInfo:
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        return BlobInfo(self._sha.hexdigest(), self._sm3.hexdigest(), self.size)


_HASH_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sm3")


class BlobWriter:
    """A blob being written: ``write`` chunks, then ``commit`` or ``abort``.

    Until ``commit`` the data lives in a temporary file that ``abort`` (or a
    crash, followed by ``BlobStore.sweep``) removes; a committed blob is
    fsynced and renamed to its content address. The file is created only
    once a block is full: content of at most ``inline_max`` bytes (0: none)
    never touches the disk here and comes back in :attr:`BlobInfo.data`.
    """

    def __init__(self, store: BlobStore, limit: int | None, inline_max: int = 0) -> None:
        self._store = store
        self._path: Path | None = None
        self._file: BinaryIO | None = None
        self._open = True
        self._hasher = StreamHasher(limit)
        self._buf = bytearray()
        self._inline_max = min(inline_max, WRITE_BLOCK - 1)

    @property
    def size(self) -> int:
        return self._hasher.size + len(self._buf)

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; small writes are gathered into blocks of WRITE_BLOCK bytes."""
        if not self._open:
            raise InvalidInput("blob: write after commit or abort")
        self._buf += chunk
        if len(self._buf) >= WRITE_BLOCK:
            self._flush()

    def _flush(self) -> None:
        try:
            if self._file is None:
                tmp = self._store._tmp
                tmp.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(dir=tmp, prefix="up-")
                self._path = Path(name)
                self._file = os.fdopen(fd, "wb")
            # Hand the block over without copying; SM3 may still be reading the
            # previous one on its thread, so each block is a fresh buffer.
            block, self._buf = self._buf, bytearray()
            self._hasher.update(block)
            self._file.write(block)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> BlobInfo:
        if not self._open:
            raise InvalidInput("blob: commit after commit or abort")
        if self._inline_max and self._file is None and len(self._buf) <= self._inline_max:
            data = bytes(self._buf)
            try:
                self._hasher.update(data)
            except BaseException:
                self.abort()
                raise
            self._open = False
            info = self._hasher.info()
            return BlobInfo(info.sha256, info.sm3, info.size, data)
        if self._buf or self._file is None:
            self._flush()
        try:
            assert self._file is not None
            assert self._path is not None
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            self._open = False
            info = self._hasher.info()
            dest = self._store.path_for(info.sha256)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._path, dest)
            _fsync_dir(dest.parent)
            return info
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self._open = False
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()


class BlobStore:
    """Filesystem blob store under one directory."""

    def __init__(self, root: Path, inline: Callable[[str], bytes | None] | None = None) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._inline = inline

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise InvalidInput("blob: bad sha256")
        return self.root / sha256[:2] / sha256

    def writer(self, limit: int | None = None, inline_max: int = 0) -> BlobWriter:
        """Start a streamed write (push style); see :class:`BlobWriter` for ``inline_max``."""
        return BlobWriter(self, limit, inline_max)

    def put_stream(self, chunks: Iterable[bytes], limit: int | None = None) -> BlobInfo:
        """Store a stream of chunks; return its digests. Nothing remains on failure."""
        w = self.writer(limit)
        try:
            for chunk in chunks:
                w.write(chunk)
        except BaseException:
            w.abort()
            raise
        return w.commit()

    def put_file(self, f: BinaryIO, limit: int | None = None) -> BlobInfo:
        return self.put_stream(iter(lambda: f.read(CHUNK), b""), limit)

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self.path_for(sha256).open("rb")
        except FileNotFoundError as e:
            data = self._inline(sha256) if self._inline is not None else None
            if data is None:
                raise NotFound(f"blob: {sha256} is not stored") from e
            return io.BytesIO(data)

    def exists(self, sha256: str) -> bool:
        if self.path_for(sha256).exists():
            return True
        return self._inline is not None and self._inline(sha256) is not None

    def delete(self, sha256: str) -> None:
        """Remove a stored file (inline contents live and die with their event)."""
        self.path_for(sha256).unlink(missing_ok=True)

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        with self.open(sha256) as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def sweep(self, older_than: float = 3600.0) -> int:
        """Remove temporary files of interrupted uploads older than ``older_than`` s."""
        n = 0
        if self._tmp.exists():
            cutoff = time.time() - older_than
            for p in self._tmp.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if p.stat().st_mtime < cutoff:
                        p.unlink()
                        n += 1
        return n


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
