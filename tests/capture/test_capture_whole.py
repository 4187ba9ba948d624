"""A capture that fails after storing artefacts keeps none of them.

Real captures (Chromium) of the local test site through the API's job pool:

- the blob store (``HOME/blobs``) is a small tmpfs that fills up while the
  second capture stores its artefacts: the job ends ``storage_full`` with a
  one-line detail, the artefacts it had stored are gone at once (no
  ``sweep``), and those it shares with the first capture (the same
  screenshot) are kept, whole, for the first capture's evidence;
- the depositing account is revoked while its capture runs: the log refuses
  the deposit, the job ends ``error`` naming why, and nothing is kept.

Mounting needs root; without it the disk test is skipped (it fails under CI).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from capture_support import serve

from ledger.accounts import revoke_account
from ledger.config import CaptureConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api_v1"))
from v1_support import Service, service

PAGE = 4096
CFG = CaptureConfig(allow=("127.0.0.0/8",))


@contextmanager
def tmpfs(at: Path, size: str) -> Iterator[None]:
    """A tmpfs mounted at ``at`` (an empty directory), unmounted afterwards."""
    at.mkdir(parents=True, exist_ok=True)
    assert not any(at.iterdir()), at
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(at)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        reason = f"cannot mount a tmpfs (needs root): {r.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set: the disk-full tests must run)", pytrace=False)
        pytest.skip(reason)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(at)], check=False)


def fill(path: Path) -> int:
    """Write ``path`` until the file system refuses another byte; its size."""
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            block = b"\0" * size
            try:
                while True:
                    f.write(block)
            except OSError:
                continue
    return path.stat().st_size


def pages(n: int) -> int:
    return -(-n // PAGE) * PAGE


def capture(svc: Service, url: str, who: str = "rights_holder") -> str:
    r = svc.client.post("/v1/captures", json={"url": url}, headers=svc.auth(who))
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def finished(svc: Service, job_id: str, limit: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        r = svc.client.get(f"/v1/captures/{job_id}", headers=svc.auth("admin"))
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["status"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def stored(root: Path) -> tuple[set[str], list[str]]:
    """Committed blobs, and anything else left in the staging area (staged
    writes, pins), counted outside the ledger's code."""
    blobs = {p.name for p in root.glob("??/*") if p.is_file()}
    tmp = root / "tmp"
    return blobs, sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def test_a_capture_on_a_full_disk_keeps_none_of_its_artefacts() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="capture-full-") as tmp,
        serve() as site,
        service(Path(tmp) / "home", capture=CFG) as svc,
    ):
        root = svc.ledger.config.blob_dir
        with tmpfs(root, "4m"):
            # (1) with room: the page's artefacts, in the order they are stored
            first = finished(svc, capture(svc, site.base + "/page.html"))
            assert first["status"] == "complete", first
            artefacts = first["receipt"]["artefacts"]
            assert [a["name"] for a in artefacts][:3] == [
                "wacz",
                "screenshot_viewport",
                "screenshot_full",
            ]
            size = {
                a["name"]: (root / a["sha256"][:2] / a["sha256"]).stat().st_size for a in artefacts
            }
            before, left = stored(root)
            assert left == [] and len(before) == len(artefacts) + 1  # and the manifest
            # (2) room for the archive (new) and the viewport screenshot (the
            # same image again), not for the full-page screenshot
            room = pages(size["wacz"]) + pages(size["screenshot_viewport"]) + PAGE
            assert pages(size["screenshot_full"]) > room - pages(size["wacz"])
            filler = root / "filler"
            full = fill(filler)
            os.truncate(filler, full - room)
            job = finished(svc, capture(svc, site.base + "/page.html"))
            os.unlink(filler)
            # (3) the job says why, in one line; nothing of it is kept, and the
            # first capture's artefacts (one of them stored again meanwhile)
            # are all there, whole
            assert job["status"] == "storage_full", job
            assert "disk is full" in job["detail"] and "\n" not in job["detail"]
            assert job.get("evidence_id") is None
            after, left = stored(root)
            assert after == before and left == []
            for sha256 in before:
                assert svc.ledger.blobs.verify(sha256).sha256 == sha256
            kinds = [r["kind"] for r in svc.ledger.store.query("select kind from evidence")]
            assert kinds == ["capture"]
            # (4) with room again, the same capture succeeds
            again = finished(svc, capture(svc, site.base + "/page.html"))
            assert again["status"] == "complete", again


def test_a_capture_whose_account_is_revoked_meanwhile_keeps_nothing() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="capture-revoked-") as tmp,
        serve() as site,
        service(Path(tmp) / "home", capture=CFG) as svc,
    ):
        root = svc.ledger.config.blob_dir
        job_id = capture(svc, site.base + "/many.html", who="other")
        # The capture takes seconds (a browser starts): the operator is faster.
        revoke_account(svc.ledger, svc.ids["other"])
        job = finished(svc, job_id)
        assert job["status"] == "error", job
        assert "was revoked" in job["detail"] and "\n" not in job["detail"]
        blobs, left = stored(root)
        assert blobs == set() and left == []
        assert svc.ledger.store.query("select 1 from evidence") == []
