"""Capture a page and deposit it: artefacts to the blob store, manifest to the log."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.blobs import BlobHold
from ledger.capture.browser import PageCapture, capture_page
from ledger.capture.driver import discard_thread_driver, thread_driver
from ledger.capture.errors import CaptureFailed
from ledger.capture.guard import Resolver
from ledger.capture.jail import sweep_browser_dirs
from ledger.capture.live import LiveSession
from ledger.capture.manifest import build_manifest
from ledger.capture.options import CaptureOptions
from ledger.core import Ledger
from ledger.errors import StorageFull
from ledger.events import evidence_deposited, new_id
from ledger.storage.queries import ReadModel
from verifier.canonical import canonicalize
from verifier.capture import MANIFEST_FILE_NAME, CaptureManifest

if TYPE_CHECKING:
    from ledger.services.deposits import Receipt

__all__ = ["CaptureResult", "capture_evidence", "sweep_work"]


@dataclass(frozen=True, slots=True)
class CaptureResult:
    """A deposited capture: its receipt and its manifest."""

    capture_id: str
    receipt: Receipt
    manifest: CaptureManifest

    def to_json(self) -> dict[str, Any]:
        """The receipt, with the capture's id, status and URLs."""
        m = self.manifest
        return {
            **self.receipt.to_json(),
            "kind": "capture",
            "capture_id": self.capture_id,
            "capture_status": m.status,
            "limit_reached": m.data["limit_reached"],
            "requested_url": m.requested_url,
            "final_url": m.final_url,
            "artefacts": [
                {"name": a.name, "path": a.path, "sha256": a.sha256} for a in m.artefacts
            ],
        }


STALE_WORK = 6 * 3600
"""Seconds after which a work directory can only be a crashed capture's."""


def sweep_work(root: Path, older_than: float = STALE_WORK) -> int:
    """Remove work directories of captures that died (killed process, power loss).

    A live capture's directory is far younger: captures are bounded by the
    wall-time limit (at most ten minutes) plus the time to write artefacts.
    """
    cutoff = time.time() - older_than
    removed = 0
    for entry in root.iterdir():
        try:
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def capture_evidence(
    ledger: Ledger,
    url: str,
    options: CaptureOptions | None = None,
    *,
    owner: str | None = None,
    title: str | None = None,
    allow: Sequence[str] = (),
    out_dir: Path | None = None,
    resolver: Resolver | None = None,
    capture_id: str | None = None,
    live: LiveSession | None = None,
) -> CaptureResult:
    """Capture ``url`` and deposit it as ``capture`` evidence.

    (1) capture into a private work directory (:func:`capture_page`; raises
    :class:`~ledger.capture.errors.CaptureFailed`, and nothing is stored);
    (2) store every artefact in the blob store, which gives its size, SHA-256
    and SM3; (3) build the manifest and check it with :mod:`verifier.capture`;
    (4) store the manifest and append ``evidence.deposited`` (kind
    ``capture``) committing to the manifest's digests; (5) with ``out_dir``,
    also write the public artefacts and the manifest there (private ones,
    holding secrets, stay in the blob store for a package that asks for them).

    Steps (2) to (4) store through one :class:`~ledger.blobs.BlobHold`: if
    any of them fails, every artefact stored so far is removed again (unless
    another capture or deposit of the same content needs it), and a full
    disk ends the capture as ``storage_full``.

    ``live``: an interactive capture (:mod:`ledger.capture.live`); abandoned,
    it raises ``CaptureFailed("abandoned")`` at (1) and nothing is stored.

    Blocking: runs on this thread's event loop and Playwright driver
    (:mod:`ledger.capture.driver`), so call it from a thread that runs no event loop.
    """
    options = options or CaptureOptions()
    cid = capture_id or new_id()
    cfg = ledger.config.capture
    options.check_limits(cfg)  # before anything runs
    root = ledger.config.home / "captures" / "work"
    root.mkdir(parents=True, exist_ok=True)
    sweep_work(root)
    sweep_browser_dirs(STALE_WORK)
    work = Path(tempfile.mkdtemp(prefix=f"{cid}-", dir=root))
    try:
        driver = thread_driver()
        try:  # (1)
            pc = driver.run(
                capture_page(
                    url,
                    options,
                    cfg,
                    work,
                    resolver=resolver,
                    extra_allow=allow,
                    driver=driver,
                    live=live,
                )
            )
        except CaptureFailed as e:
            if e.status == "browser_error":
                discard_thread_driver()
            raise
        except BaseException:
            discard_thread_driver()
            raise
        hold = ledger.blobs.hold(ReadModel(ledger.store).blob_in_use)
        try:
            receipt, raw, manifest = _deposit(
                ledger, hold, url, pc, cid, options, allow, owner, title
            )
        except StorageFull as e:
            hold.settle(failed=True)
            raise CaptureFailed(
                "storage_full",
                "the disk is full: the capture kept nothing; retry once space is freed",
            ) from e
        except BaseException:
            hold.settle(failed=True)
            raise
        hold.settle(failed=False)
        if out_dir is not None:  # (5)
            out_dir.mkdir(parents=True, exist_ok=True)
            for name, (path, _) in pc.files.items():
                if name not in pc.private:
                    shutil.copyfile(path, out_dir / path.name)
            (out_dir / MANIFEST_FILE_NAME).write_bytes(raw)
        return CaptureResult(cid, receipt, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _deposit(
    ledger: Ledger,
    hold: BlobHold,
    url: str,
    pc: PageCapture,
    cid: str,
    options: CaptureOptions,
    allow: Sequence[str],
    owner: str | None,
    title: str | None,
) -> tuple[Receipt, bytes, CaptureManifest]:
    """Steps (2) to (4) of :func:`capture_evidence`: the receipt, the
    manifest's bytes and the manifest."""
    cfg = ledger.config.capture
    artefacts: list[dict[str, Any]] = []
    for name, (path, media_type) in pc.files.items():  # (2)
        with path.open("rb") as f:
            info = hold.put_file(f)
        artefacts.append(
            {
                "name": name,
                "path": path.name,
                "media_type": media_type,
                "size": info.size,
                "sha256": info.sha256,
                "sm3": info.sm3,
                **({"private": True} if name in pc.private else {}),
            }
        )
    allowed = sorted({*cfg.allow, *allow})
    raw = canonicalize(build_manifest(cid, pc, options, allowed, artefacts))  # (3)
    manifest = CaptureManifest.from_json(raw)
    info = hold.put_stream([raw])  # (4)
    draft = evidence_deposited(
        kind="capture",
        sha256=info.sha256,
        sm3=info.sm3,
        size=info.size,
        title=(title or manifest.data["page_title"] or manifest.final_url)[:1000],
        file_name=MANIFEST_FILE_NAME,
        media_type="application/json",
        owner=owner,
        extra={
            "capture_id": cid,
            "requested_url": url,
            "final_url": manifest.final_url,
            "capture_status": pc.status,
            "artefacts": [{"name": a["name"], "sha256": a["sha256"]} for a in artefacts],
        },
    )
    from ledger.services.deposits import DepositService

    receipt = DepositService.receipt_for(draft, ledger.append([draft])[0])
    return receipt, raw, manifest
