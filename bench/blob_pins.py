"""What pinning costs a file deposit: publish + unpin, side by side with a plain publish.

A file deposit over the inline limit publishes its blob through a
:class:`~ledger.blobs.BlobHold` (pin, publish, and once the entry is
committed, unpin). The baseline publishes the same blobs without the hold
(the path before pins). Both run in one process on a fresh store, one file
after another, 200 KiB each; the figures are milliseconds per file.

    python bench/blob_pins.py --n 300
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import drop_pg, fresh_home, pg_url
from ledger.blobs import BlobStore, FsBlobStore

SIZE = 200 * 1024


def _one(store: BlobStore, pinned: bool) -> float:
    data = os.urandom(SIZE)
    t0 = time.perf_counter()
    w = store.writer()
    w.write(data)
    if pinned:
        hold = store.hold(lambda sha256: True)
        hold.publish(w)
        hold.settle(failed=False)
    else:
        w.commit()
    return (time.perf_counter() - t0) * 1000


def run(store: BlobStore, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for _ in range(10):  # warm up
        _one(store, True)
    for pinned in (False, True):
        times = [_one(store, pinned) for _ in range(n)]
        key = "pinned" if pinned else "baseline"
        out[f"{key}_median_ms"] = statistics.median(times)
        out[f"{key}_p95_ms"] = statistics.quantiles(times, n=20)[18]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--backends", default="fs,postgresql")
    args = parser.parse_args()
    print(f"{'store':<12} {'baseline ms (median/p95)':>26} {'pinned ms (median/p95)':>24}")
    for kind in args.backends.split(","):
        url = None
        store: BlobStore
        if kind == "fs":
            store = FsBlobStore(fresh_home("blob-pins") / "blobs")
        else:
            from ledger.blobs.postgres import PgBlobStore

            url = pg_url("pins")
            store = PgBlobStore(url)
        try:
            r = run(store, args.n)
        finally:
            store.close()
            if url is not None:
                drop_pg(url)
        base = f"{r['baseline_median_ms']:.2f} / {r['baseline_p95_ms']:.2f}"
        pinned = f"{r['pinned_median_ms']:.2f} / {r['pinned_p95_ms']:.2f}"
        print(f"{kind:<12} {base:>26} {pinned:>24}")


if __name__ == "__main__":
    main()
