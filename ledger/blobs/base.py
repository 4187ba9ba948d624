"""The blob store contract: everything but where the bytes go is done here, once.

A backend implements a few primitives (:class:`Staging` for the bytes of one
write, and ``_open``/``_exists``/``_delete``/``_sweep_partials``/``_stored``);
:class:`BlobStore` does the rest for every backend alike: streamed writes
hashed with SHA-256 and SM3, the size limit, content addressing, the small
inline path, reads, deletion, sweeps and re-verification.

A write is staged until it is committed: a refused or failed upload is
aborted and leaves nothing behind, and staged bytes are private to their
writer, so aborting one never touches another upload of the same content.

Once published, a blob is shared by every deposit of the same content. A
deposit publishes through a :class:`BlobHold`, which *pins* each blob before
publishing it and unpins it once the deposit's event is appended (or
refused). A failed deposit removes what it published only through
:meth:`BlobStore.discard`, which, under a lock on the address (one that
pinning takes too), keeps a blob that another deposit has pinned or that a
committed entry refers to. A deposit pins before it publishes and unpins
only after its entry is committed, so at every moment a blob someone needs
is either pinned or referenced: two deposits of the same file, one failing,
never remove the other's.

Small deposits may be kept inline (``inline_max``): their bytes are stored
in the ledger's database with their deposit event, in the same transaction,
and never reach the backend. ``open``/``exists`` also look there.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from ledger.errors import InvalidInput, LedgerError, NotFound, StorageError, TooLarge
from ledger.observe import Observer

__all__ = [
    "CHUNK",
    "BlobHold",
    "BlobInfo",
    "BlobStore",
    "BlobWriter",
    "Staging",
    "StreamHasher",
    "Swept",
    "age_cutoff",
    "check_address",
]

CHUNK = 1 << 20
"""Bytes per read when streaming a blob out."""

_ADDRESS = re.compile(r"[0-9a-f]{64}")


def check_address(sha256: str) -> str:
    """A blob address: 64 lower-case hex digits (nothing that could name a path)."""
    if not isinstance(sha256, str) or not _ADDRESS.fullmatch(sha256):
        raise InvalidInput("blob: bad sha256")
    return sha256


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """Digests and size of a stored (or staged) blob."""

    sha256: str
    sm3: str
    size: int
    data: bytes | None = None
    """The content itself when it was kept inline (not written to the backend):
    the caller stores it with the deposit's event."""


@dataclass(frozen=True, slots=True)
class Swept:
    """What a sweep removed."""

    partials: int
    """Staged writes (and pins) of interrupted uploads."""
    orphans: int
    """Stored blobs that nothing refers to."""


def _immutable(chunk: bytes | bytearray | memoryview) -> bool:
    """Whether nobody can change ``chunk``'s bytes after handing it over."""
    if isinstance(chunk, bytes):
        return True
    return isinstance(chunk, memoryview) and chunk.readonly and isinstance(chunk.obj, bytes)


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

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Hash ``chunk``; :class:`TooLarge` once the total exceeds the limit."""
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


class Staging(ABC):
    """A backend's place for the bytes of one write until it is committed.

    Blocks arrive in order, each at most the store's ``block_size`` bytes
    (only the last may be shorter). Staged bytes are invisible to readers and
    private to this write.
    """

    @abstractmethod
    def write(self, block: bytes | memoryview) -> None:
        """Append one block."""

    @abstractmethod
    def commit(self, info: BlobInfo) -> None:
        """Make the staged bytes readable at ``info.sha256``, durably.

        When that content is already stored (another write committed it
        first), the staged copy is discarded and the stored one kept.
        """

    @abstractmethod
    def abort(self) -> None:
        """Discard the staged bytes; harmless when called twice or after commit."""


class BlobWriter:
    """A blob being written: ``write`` chunks, ``finish``, then ``commit`` or ``abort``.

    ``finish`` hashes the last bytes and makes the data durable in the
    backend's staging area without publishing it: the caller can check what
    goes with the blob (a title, say) and still ``abort`` leaving nothing.
    ``commit`` publishes it under its SHA-256. Content of at most
    ``inline_max`` bytes (0: none) never reaches the backend and comes back in
    :attr:`BlobInfo.data`.
    """

    def __init__(self, store: BlobStore, limit: int | None, inline_max: int = 0) -> None:
        self._store = store
        self._block = store.block_size
        self._staging: Staging | None = None
        self._state = "open"  # open -> finished -> committed | aborted
        self._hasher = StreamHasher(limit)
        self._buf = bytearray()
        self._inline_max = min(inline_max, self._block - 1)
        self._info: BlobInfo | None = None

    @property
    def size(self) -> int:
        return self._hasher.size + len(self._buf)

    @property
    def info(self) -> BlobInfo | None:
        """Digests and size once finished."""
        return self._info

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Append ``chunk``; small writes are gathered into blocks.

        Whole blocks of an immutable chunk (``bytes``, or a read-only view of
        ``bytes``) go to the hashers and the backend as views, without a copy;
        anything else is copied first, since the caller may reuse it.
        """
        if self._state != "open":
            raise InvalidInput(f"blob: write after {self._state}")
        if not self._buf and len(chunk) >= self._block and _immutable(chunk):
            view = memoryview(chunk)
            whole = len(view) - len(view) % self._block

            def blocks() -> None:
                for pos in range(0, whole, self._block):
                    self._send(view[pos : pos + self._block])

            self._guarded(blocks)
            self._buf += view[whole:]
            return
        self._buf += chunk
        if len(self._buf) >= self._block:
            self._guarded(self._flush_full)

    def _flush_full(self) -> None:
        block = self._block
        if len(self._buf) == block:
            self._send(bytes(self._buf))
            self._buf = bytearray()
            return
        view = memoryview(self._buf)
        pos = 0
        while len(self._buf) - pos >= block:
            self._send(bytes(view[pos : pos + block]))
            pos += block
        rest = bytearray(view[pos:])
        view.release()
        self._buf = rest

    def _send(self, block: bytes | memoryview) -> None:
        # Hash before staging: a write over the limit stops before it is stored.
        # Each block is a fresh object: SM3 may still read the previous one.
        self._hasher.update(block)
        if self._staging is None:
            self._staging = self._store._stage()
        self._staging.write(block)

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except BaseException:
            self.abort()
            raise

    def finish(self) -> BlobInfo:
        """Hash the rest and stage it durably; the blob is not yet readable."""
        if self._info is not None:
            return self._info
        if self._state != "open":
            raise InvalidInput(f"blob: finish after {self._state}")
        if self._inline_max and self._staging is None and len(self._buf) <= self._inline_max:
            data = bytes(self._buf)
            self._guarded(lambda: self._hasher.update(data))
            info = self._hasher.info()
            self._info = BlobInfo(info.sha256, info.sm3, info.size, data)
        else:

            def rest() -> None:
                if self._buf or self._staging is None:
                    self._send(bytes(self._buf))
                    self._buf = bytearray()

            self._guarded(rest)
            self._info = self._hasher.info()
        self._state = "finished"
        return self._info

    def commit(self) -> BlobInfo:
        """Finish if needed and publish the blob at its SHA-256."""
        if self._state == "committed" and self._info is not None:
            return self._info
        info = self.finish()
        if info.data is None:
            staging = self._staging
            assert staging is not None
            try:
                staging.commit(info)
            except BaseException:
                self.abort()
                raise
        self._state = "committed"
        self._store.observer.blob_stored(info.size)
        return info

    def abort(self) -> None:
        """Discard everything written; harmless after a commit or twice."""
        if self._state == "committed":
            return
        self._state = "aborted"
        self._buf = bytearray()
        if self._staging is not None:
            staging, self._staging = self._staging, None
            staging.abort()


Referenced = Callable[[str], bool]
"""Whether a committed entry of the ledger refers to a blob (by SHA-256)."""


class BlobHold:
    """The blobs one deposit publishes, kept from every clean-up until it is settled.

    :meth:`publish` pins a blob, then publishes it; :meth:`settle` unpins
    them all once the deposit's event is appended (``failed=False``) or
    refused (``failed=True``: each blob it published is then discarded,
    unless another deposit pinned it or a committed entry refers to it).
    Content kept inline (:attr:`BlobInfo.data`) is neither pinned nor
    published: it is stored with its event.
    """

    def __init__(self, store: BlobStore, referenced: Referenced) -> None:
        self._store = store
        self._referenced = referenced
        self._pins: list[tuple[str, str]] = []
        self._published: list[str] = []

    @property
    def published(self) -> list[str]:
        """SHA-256 of the blobs published through this hold and not yet settled."""
        return list(self._published)

    def publish(self, writer: BlobWriter) -> BlobInfo:
        """Finish ``writer`` and publish its blob, pinned (see :class:`BlobHold`)."""
        info = writer.finish()
        if info.data is not None:
            return writer.commit()
        try:
            # Pinned before it is readable: a clean-up that runs from now on
            # sees the pin and keeps the blob, whoever published it first.
            self._pins.append((info.sha256, self._store._pin(check_address(info.sha256))))
        except BaseException:
            writer.abort()
            raise
        info = writer.commit()
        self._published.append(info.sha256)
        return info

    def put_stream(self, chunks: Iterable[bytes], limit: int | None = None) -> BlobInfo:
        """Store a stream of chunks through this hold; nothing staged remains on failure."""
        with self._store.staged(chunks, limit) as w:
            return self.publish(w)

    def put_file(self, f: BinaryIO, limit: int | None = None) -> BlobInfo:
        """Store the rest of ``f`` through this hold; see :meth:`put_stream`."""
        return self.put_stream(iter(lambda: f.read(CHUNK), b""), limit)

    def settle(self, *, failed: bool) -> int:
        """Unpin every blob; when the deposit ``failed``, discard each one it
        published that nothing else needs. Returns how many were removed.

        Never raises a ledger error: the deposit's own outcome is what its
        caller reports, and a pin or blob left by a store that could not be
        reached is removed by the sweep later.
        """
        pins, self._pins = self._pins, []
        published, self._published = self._published, []
        for sha256, pin in pins:
            with contextlib.suppress(LedgerError):
                self._store._unpin(sha256, pin)
        removed = 0
        if failed:
            for sha256 in dict.fromkeys(published):
                with contextlib.suppress(LedgerError):
                    removed += self._store.discard(sha256, self._referenced)
        return removed


class BlobStore(ABC):
    """Content-addressed blob store: the public API, the same for every backend.

    Backends implement :meth:`_stage`, :meth:`_open`, :meth:`_exists`,
    :meth:`_delete`, :meth:`_pin`, :meth:`_unpin`, :meth:`_discard`,
    :meth:`_sweep_partials` and :meth:`_stored`, and may override
    :meth:`iter_chunks` to stream without a file object.
    """

    kind: str
    """``fs`` or ``postgresql``."""
    block_size: int = 512 * 1024
    """Bytes per :meth:`Staging.write`."""

    def __init__(self, inline: Callable[[str], bytes | None] | None = None) -> None:
        self._inline = inline
        self.observer = Observer()

    # -- primitives ------------------------------------------------------
    @abstractmethod
    def _stage(self) -> Staging:
        """Start staging one write."""

    @abstractmethod
    def _open(self, sha256: str) -> BinaryIO | None:
        """A stream over the stored blob, or None if the backend lacks it."""

    @abstractmethod
    def _exists(self, sha256: str) -> bool:
        """Whether the backend holds the blob."""

    @abstractmethod
    def _delete(self, sha256: str) -> bool:
        """Remove the blob from the backend; False if it was not there."""

    @abstractmethod
    def _pin(self, sha256: str) -> str:
        """Record that a deposit in flight needs ``sha256``; return the pin's
        name. Atomic with respect to :meth:`_discard` of the same address."""

    @abstractmethod
    def _unpin(self, sha256: str, pin: str) -> None:
        """Remove one pin (harmless when it is gone already)."""

    @abstractmethod
    def _discard(self, sha256: str, referenced: Referenced) -> bool:
        """Under the address's lock: unless ``sha256`` is pinned or
        ``referenced`` says an entry refers to it, remove it; True if removed."""

    @abstractmethod
    def _sweep_partials(self, older_than: float) -> int:
        """Remove staged writes and pins untouched for ``older_than`` seconds;
        return how many."""

    @abstractmethod
    def _stored(self, older_than: float) -> Iterator[str]:
        """Addresses of stored blobs committed at least ``older_than`` seconds ago."""

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release connections."""

    # -- writes ----------------------------------------------------------
    def writer(self, limit: int | None = None, inline_max: int = 0) -> BlobWriter:
        """Start a streamed write (push style); see :class:`BlobWriter`."""
        return BlobWriter(self, limit, inline_max)

    def hold(self, referenced: Referenced) -> BlobHold:
        """Publish a deposit's blobs pinned until it is settled (:class:`BlobHold`);
        ``referenced`` tells which blobs committed entries refer to."""
        return BlobHold(self, referenced)

    def put_stream(self, chunks: Iterable[bytes], limit: int | None = None) -> BlobInfo:
        """Store a stream of chunks; return its digests. Nothing remains on failure."""
        with self.staged(chunks, limit) as w:
            return w.commit()

    def put_file(self, f: BinaryIO, limit: int | None = None) -> BlobInfo:
        """Store the rest of ``f``; see :meth:`put_stream`."""
        return self.put_stream(iter(lambda: f.read(CHUNK), b""), limit)

    @contextmanager
    def staged(self, chunks: Iterable[bytes], limit: int | None = None) -> Iterator[BlobWriter]:
        """Write ``chunks`` and yield the finished writer (``info`` is set).

        The caller commits it once what goes with the blob is accepted; a
        writer left uncommitted (an exception, a refusal) is aborted on exit.
        """
        w = self.writer(limit)
        try:
            for chunk in chunks:
                w.write(chunk)
            w.finish()
            yield w
        finally:
            w.abort()

    # -- reads -----------------------------------------------------------
    def open(self, sha256: str) -> BinaryIO:
        """A stream over the blob's bytes; :class:`NotFound` if it is not stored."""
        f = self._open(check_address(sha256))
        if f is not None:
            return f
        data = self._inline(sha256) if self._inline is not None else None
        if data is None:
            raise NotFound(f"blob: {sha256} is not stored")
        return io.BytesIO(data)

    def exists(self, sha256: str) -> bool:
        if self._exists(check_address(sha256)):
            return True
        return self._inline is not None and self._inline(sha256) is not None

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        """The blob's bytes in chunks of at most :data:`CHUNK` bytes."""
        with self.open(sha256) as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def verify(self, sha256: str) -> BlobInfo:
        """Re-read a stored blob and return its digests; :class:`StorageError`
        if its content no longer hashes to its address."""
        hasher = StreamHasher()
        for chunk in self.iter_chunks(sha256):
            hasher.update(chunk)
        info = hasher.info()
        if info.sha256 != sha256:
            raise StorageError(f"blob: {sha256} is corrupt (its content hashes to {info.sha256})")
        return info

    # -- removal ---------------------------------------------------------
    def delete(self, sha256: str) -> bool:
        """Remove a stored blob (not inline content, which belongs to its event),
        unconditionally: a clean-up uses :meth:`discard` instead."""
        return self._delete(check_address(sha256))

    def discard(self, sha256: str, referenced: Referenced) -> bool:
        """Remove a stored blob unless a deposit in flight pinned it or
        ``referenced`` says a committed entry refers to it; True if removed."""
        return self._discard(check_address(sha256), referenced)

    def sweep(
        self, older_than: float = 3600.0, referenced: Callable[[str], bool] | None = None
    ) -> Swept:
        """Remove staged writes of interrupted uploads untouched for ``older_than``
        seconds and, given ``referenced``, stored blobs at least that old that it
        says nothing refers to and no deposit in flight has pinned (pins that
        old are a crashed deposit's, and go with the partials)."""
        partials = self._sweep_partials(older_than)
        orphans = 0
        if referenced is not None:
            for sha256 in list(self._stored(older_than)):
                if not referenced(sha256) and self._discard(sha256, referenced):
                    orphans += 1
        return Swept(partials, orphans)


def age_cutoff(older_than: float) -> float:
    """The epoch time before which something is ``older_than`` seconds old."""
    return time.time() - older_than
