"""``audit`` speed in entries/s and storage bytes per entry, beside a baseline.

python bench/audit.py --n 100000 [--backend postgresql] [--workers 2]
    [--baseline-rev REV] [--files 200]

Builds a ledger of ``n`` hash deposits (owned by an account, so the
projections have rows to compare) plus ``--files`` small file deposits,
seals it in batches, then times on the same store, side by side:

- ``baseline``: ``ledger/audit.py`` as it was at ``--baseline-rev`` (entries,
  tiles, checkpoint roots and consistency only), loaded from git;
- ``new, no projections``: this audit without step (7);
- ``new``: this audit, with checkpoint and publication links and every
  projection row compared with a replay of the log;
- ``files``: the stored-file audit (SHA-256 and SM3 of each file);

and the peak memory (RSS) of this process after each, to show it stays bounded.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import digests, drop_pg, fresh_home, pg_url
from ledger.audit import audit
from ledger.blobs.audit import audit_blobs
from ledger.core import Ledger
from ledger.events import account_registered, evidence_deposited
from ledger.services import OPERATOR, Services

ROOT = Path(__file__).resolve().parents[1]
BASELINE_REV = "260a66e"
"""The last revision before linked checkpoints and the projection replay."""


def baseline_module(rev: str) -> ModuleType | None:
    """``ledger/audit.py`` at ``rev``, imported under another name (None if git
    or the revision is not available)."""
    try:
        src = subprocess.run(
            ["git", "show", f"{rev}:ledger/audit.py"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    where = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    (where / "audit_baseline.py").write_bytes(src)
    # On sys.path, so that its worker processes (spawned) import it too.
    sys.path.insert(0, str(where))
    return importlib.import_module("audit_baseline")


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--workers", type=int, default=2, help="0: single process")
    ap.add_argument("--files", type=int, default=200, help="small file deposits added")
    ap.add_argument("--batch", type=int, default=10_000, help="entries per checkpoint")
    ap.add_argument("--baseline-rev", default=BASELINE_REV)
    a = ap.parse_args()
    url = pg_url("audit") if a.backend == "postgresql" else None
    try:
        with Ledger.init(fresh_home(f"audit-{a.backend}"), "bench.local/audit", url) as ledger:
            t = time.perf_counter()
            owner = account_registered(role="rights_holder", name="Bench Owner")
            ledger.append([owner])
            drafts = (
                evidence_deposited(kind="hash", sha256=h, owner=owner.ref, title="bench")
                for h in digests(0, a.n)
            )
            for _ in Services(ledger).deposits.bulk(drafts):
                pass
            deposits = Services(ledger).deposits
            for i in range(a.files):
                deposits.deposit_file(OPERATOR, io.BytesIO(os.urandom(64 << 10)), title=f"f{i}")
            ledger.seal(batch_max=a.batch)
            size = ledger.store.size()
            print(f"built {size:,} entries in {time.perf_counter() - t:.1f} s")
            if hasattr(ledger.store, "checkpoint_wal"):
                ledger.store.checkpoint_wal()
            store, key, origin = ledger.store, ledger.verifier_key, ledger.config.origin
            rows: list[tuple[str, float]] = []
            old = baseline_module(a.baseline_rev)
            if old is not None:
                rows.append(
                    (
                        f"baseline ({a.baseline_rev})",
                        timed(lambda: old.audit(store, key, origin, workers=a.workers)),
                    )
                )
            rows.append(
                (
                    "new, no projections",
                    timed(lambda: audit(store, key, origin, workers=a.workers, projections=False)),
                )
            )
            rows.append(("new", timed(lambda: audit(store, key, origin, workers=a.workers))))
            rows.append(("files", timed(lambda: audit_blobs(store, ledger.blobs))))
            storage = store.storage_bytes()
        print(
            f"audit[{a.backend}] n={size:,} workers={a.workers} "
            f"files={a.files} x 64 KiB, checkpoints every {a.batch:,}"
        )
        base = rows[0][1]
        for name, seconds in rows:
            print(
                f"  {name:<24} {seconds:7.2f} s  {size / seconds:>10,.0f} entries/s  "
                f"x{seconds / base:.2f}"
            )
        print(f"  peak RSS {rss_mib():.0f} MiB; storage {storage / size:.0f} bytes/entry")
    finally:
        if url:
            drop_pg(url)


if __name__ == "__main__":
    main()
