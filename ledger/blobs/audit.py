"""Check stored files against the digests the log committed to, and find orphans.

Every ``file`` or ``capture`` deposit names its content by SHA-256 and SM3
(and size) in its private body; a capture's manifest names its artefacts the
same way. :func:`audit_blobs` re-reads each of them from the blob store;
:func:`referenced` tells the sweep which stored blobs something refers to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ledger.blobs.base import BlobStore
from ledger.errors import AuditError, LedgerError, StorageError
from ledger.storage.base import Store
from ledger.storage.queries import ReadModel
from verifier.capture import MAX_MANIFEST_SIZE, CaptureManifest
from verifier.errors import Error as VerifierError

__all__ = ["BlobAudit", "audit_blobs", "referenced"]

_PAGE = 1000
_SEEN_MAX = 100_000


@dataclass(frozen=True, slots=True)
class BlobAudit:
    """What :func:`audit_blobs` checked."""

    files: int
    bytes: int
    seconds: float


@dataclass(frozen=True, slots=True)
class _Expected:
    what: str
    index: int
    sha256: str
    sm3: str | None
    size: int | None


def _deposits(store: Store) -> Iterator[dict[str, object]]:
    """File and capture deposits by content (SHA-256), then log order, a page at
    a time: deposits of the same content come together, so each content is
    read once without remembering every digest seen."""
    reads = ReadModel(store)
    after_sha, after_idx = "", -1
    while True:
        rows = reads.deposits_by_content(after_sha, after_idx, _PAGE)
        yield from rows
        if len(rows) < _PAGE:
            return
        after_sha, after_idx = str(rows[-1]["sha256"]), int(str(rows[-1]["idx"]))


def _manifest(blobs: BlobStore, sha256: str) -> CaptureManifest:
    with blobs.open(sha256) as f:
        return CaptureManifest.from_json(f.read(MAX_MANIFEST_SIZE + 1))


def _expected(store: Store, blobs: BlobStore) -> Iterator[_Expected]:
    for row in _deposits(store):
        eid, index = str(row["evidence_id"]), int(str(row["idx"]))
        sm3, size = row["sm3"], row["size"]
        yield _Expected(
            f"evidence {eid}",
            index,
            str(row["sha256"]),
            None if sm3 is None else str(sm3),
            None if size is None else int(str(size)),
        )
        if row["kind"] == "capture":
            try:
                manifest = _manifest(blobs, str(row["sha256"]))
            except (VerifierError, LedgerError) as e:
                raise AuditError(f"evidence {eid}: capture manifest unreadable ({e})", index) from e
            for a in manifest.artefacts:
                yield _Expected(
                    f"evidence {eid}: artefact {a.path}", index, a.sha256, a.sm3, a.size
                )


def audit_blobs(
    store: Store, blobs: BlobStore, progress: Callable[[int], None] | None = None
) -> BlobAudit:
    """Re-read every stored file the log refers to; raise :class:`AuditError`
    naming the first deposit whose file is missing or differs.

    (1) every file or capture deposit's content is stored; (2) it hashes to the
    SHA-256 and SM3 and has the size its deposit recorded; (3) for a capture,
    each artefact its manifest lists passes (1) and (2). Content stored for
    several deposits is read once: deposits come sorted by content, and the
    last :data:`_SEEN_MAX` contents read are remembered (artefacts shared by
    captures). Memory stays bounded: files are streamed, digests not all kept.
    """
    started = time.perf_counter()
    seen: dict[tuple[str, str | None, int | None], None] = {}  # oldest first
    files = total = 0
    for exp in _expected(store, blobs):
        key = (exp.sha256, exp.sm3, exp.size)
        if key in seen:
            continue
        try:  # (1) (3)
            info = blobs.verify(exp.sha256)
        except LedgerError as e:
            raise AuditError(f"{exp.what}: stored file: {e}", exp.index) from e
        if (exp.sm3 is not None and info.sm3 != exp.sm3) or (  # (2)
            exp.size is not None and info.size != exp.size
        ):
            raise AuditError(
                f"{exp.what}: stored file does not match its recorded SM3 or size", exp.index
            )
        seen[key] = None
        if len(seen) > _SEEN_MAX:
            del seen[next(iter(seen))]
        files += 1
        total += info.size
        if progress:
            progress(files)
    return BlobAudit(files, total, time.perf_counter() - started)


def referenced(store: Store, blobs: BlobStore) -> Callable[[str], bool]:
    """Whether a deposit, or an artefact of a captured page, refers to a blob.

    Captures' artefacts are read from their manifests once, here; deposits
    are looked up per blob asked about. A manifest that cannot be read is an
    error: its artefacts could not be told from orphans.
    """
    artefacts: set[str] = set()
    for row in _deposits(store):
        if row["kind"] == "capture":
            try:
                artefacts.update(a.sha256 for a in _manifest(blobs, str(row["sha256"])).artefacts)
            except (VerifierError, LedgerError) as e:
                raise StorageError(
                    f"sweep: evidence {row['evidence_id']}: capture manifest unreadable ({e}); "
                    "no orphan removed"
                ) from e

    reads = ReadModel(store)

    def is_referenced(sha256: str) -> bool:
        # The projection also names artefacts of captures committed after
        # the manifests above were read.
        return sha256 in artefacts or reads.blob_in_use(sha256)

    return is_referenced
