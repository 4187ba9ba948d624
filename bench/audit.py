"""``audit`` speed in entries/s and storage bytes per entry.

python bench/audit.py --n 1000000 [--backend postgresql]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import digests, drop_pg, fresh_home, pg_url
from ledger.audit import audit
from ledger.core import Ledger
from ledger.events import evidence_deposited
from ledger.services import Services


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--workers", type=int, default=2, help="0: single process")
    a = ap.parse_args()
    url = pg_url("audit") if a.backend == "postgresql" else None
    try:
        with Ledger.init(fresh_home(f"audit-{a.backend}"), "bench.local/audit", url) as ledger:
            t = time.perf_counter()
            drafts = (evidence_deposited(kind="hash", sha256=h) for h in digests(0, a.n))
            for _ in Services(ledger).deposits.bulk(drafts):
                pass
            ledger.seal()
            print(f"built {a.n:,} entries in {time.perf_counter() - t:.1f} s")
            if hasattr(ledger.store, "checkpoint_wal"):
                ledger.store.checkpoint_wal()
            report = audit(
                ledger.store, ledger.verifier_key, ledger.config.origin, workers=a.workers
            )
            size = ledger.store.storage_bytes()
        print(
            f"audit[{a.backend}] n={a.n:,} workers={a.workers}: "
            f"{report.entries_per_second:,.0f} entries/s "
            f"({report.seconds:.1f} s, {report.tiles:,} tiles, {report.checkpoints} checkpoints); "
            f"storage {size / a.n:.0f} bytes/entry"
        )
    finally:
        if url:
            drop_pg(url)


if __name__ == "__main__":
    main()
