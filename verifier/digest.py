"""Digests of evidence files: SHA-256 and SM3 in one streaming pass.

SM3 (GB/T 32905) is several times slower than SHA-256 in OpenSSL, so it runs
in a second thread on the same chunks (``hashlib`` releases the GIL while it
hashes): the pass takes as long as the slower digest, not their sum. Memory
stays bounded by a small queue of chunks, whatever the file size.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from verifier.errors import MalformedError

__all__ = ["CHUNK", "FileDigest", "digest_file", "digest_stream", "sm3_available"]

CHUNK = 1 << 20
_QUEUE_CHUNKS = 8


def sm3_available() -> bool:
    """True when this Python's OpenSSL provides SM3."""
    try:
        hashlib.new("sm3")
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class FileDigest:
    """Size and digests of one file; ``sm3`` is None when SM3 is unavailable."""

    name: str
    size: int
    sha256: str
    sm3: str | None
    crc32: int = 0


class _Sm3Thread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="sm3", daemon=True)
        self.chunks: queue.Queue[bytes | None] = queue.Queue(_QUEUE_CHUNKS)
        self.hash = hashlib.new("sm3")

    def run(self) -> None:
        update, get = self.hash.update, self.chunks.get
        while (chunk := get()) is not None:
            update(chunk)


def digest_stream(read: Callable[[int], bytes], name: str, *, crc: bool = False) -> FileDigest:
    """Read ``read(CHUNK)`` until it returns ``b""``; return size and digests.

    With ``crc``, also compute the CRC-32 (zip members carry one).
    """
    sha = hashlib.sha256()
    sm3 = _Sm3Thread() if sm3_available() else None
    if sm3 is not None:
        sm3.start()
    size = 0
    crc_value = 0
    try:
        while chunk := read(CHUNK):
            size += len(chunk)
            sha.update(chunk)
            if crc:
                crc_value = zlib.crc32(chunk, crc_value)
            if sm3 is not None:
                sm3.chunks.put(chunk)
    finally:
        if sm3 is not None:
            sm3.chunks.put(None)
            sm3.join()
    return FileDigest(
        name=name,
        size=size,
        sha256=sha.hexdigest(),
        sm3=sm3.hash.hexdigest() if sm3 is not None else None,
        crc32=crc_value,
    )


def digest_file(path: str | Path) -> FileDigest:
    """Digest a file on disk; an unreadable file is a :class:`MalformedError`."""
    try:
        with open(path, "rb") as f:
            return digest_stream(f.read, Path(path).name)
    except OSError as e:
        raise MalformedError(f"evidence: cannot read {str(path)!r}: {e.strerror}") from e
