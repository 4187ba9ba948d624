"""Content-addressed blob store: streamed writes hashed with SHA-256 and SM3.

A blob is written to a temporary file while both digests are computed, then
fsynced and renamed to ``blobs/<sha256[:2]>/<sha256>``. Memory stays constant
whatever the size; an interrupted write leaves only a temporary file, which
``sweep`` removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ledger.errors import InvalidInput, NotFound, TooLarge

__all__ = ["BlobInfo", "BlobStore", "StreamHasher"]

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BlobInfo:
    sha256: str
    sm3: str
    size: int


class StreamHasher:
    """SHA-256 and SM3 over a stream, with a byte limit."""

    def __init__(self, limit: int | None = None) -> None:
        self._sha = hashlib.sha256()
        self._sm3 = hashlib.new("sm3")
        self.size = 0
        self.limit = limit

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise TooLarge(f"upload: larger than the limit of {self.limit} bytes")
        self._sha.update(chunk)
        self._sm3.update(chunk)

    def info(self) -> BlobInfo:
        return BlobInfo(self._sha.hexdigest(), self._sm3.hexdigest(), self.size)


class BlobStore:
    """Filesystem blob store under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise InvalidInput("blob: bad sha256")
        return self.root / sha256[:2] / sha256

    def put_stream(self, chunks: Iterable[bytes], limit: int | None = None) -> BlobInfo:
        """Store a stream of chunks; return its digests. Nothing remains on failure."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        hasher = StreamHasher(limit)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="up-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    hasher.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            info = hasher.info()
            dest = self.path_for(info.sha256)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
            _fsync_dir(dest.parent)
            return info
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def put_file(self, f: BinaryIO, limit: int | None = None) -> BlobInfo:
        return self.put_stream(iter(lambda: f.read(CHUNK), b""), limit)

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self.path_for(sha256).open("rb")
        except FileNotFoundError as e:
            raise NotFound(f"blob: {sha256} is not stored") from e

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

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
