"""Durable hash-only deposits per second through the library (group commit).

Each process opens the ledger and streams hash-only drafts through
``Ledger.deposit_hashes``; every receipt is returned only after its group is
committed (SQLite: WAL + synchronous=FULL; PostgreSQL: synchronous_commit on).

    python bench/deposits.py --backend sqlite --n 1000000 --procs 2
    python bench/deposits.py --backend postgresql --n 1000000 --procs 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import digests, drop_pg, fresh_home, pg_url
from ledger.core import Ledger
from ledger.events import evidence_deposited
from ledger.services import Services


def worker(home: str, start: int, n: int, q: mp.Queue[float]) -> None:
    with Ledger.open(Path(home)) as ledger:
        drafts = (evidence_deposited(kind="hash", sha256=h) for h in digests(start, n))
        count = sum(1 for _ in Services(ledger).deposits.bulk(drafts))
        assert count == n
    q.put(time.time())


def run(backend: str, n: int, procs: int) -> dict[str, float]:
    home = fresh_home(f"deposits-{backend}")
    url = pg_url("dep") if backend == "postgresql" else None
    Ledger.init(home, "bench.local/deposits", url).close()
    try:
        q: mp.Queue[float] = mp.Queue()
        per = n // procs
        ps = [mp.Process(target=worker, args=(str(home), i * per, per, q)) for i in range(procs)]
        t0 = time.time()
        for p in ps:
            p.start()
        ends = [q.get() for _ in ps]
        for p in ps:
            p.join()
        elapsed = max(ends) - t0
        with Ledger.open(home) as ledger:
            size = ledger.store.size()
            assert size == per * procs, size
            t1 = time.perf_counter()
            ledger.seal()
            seal_s = time.perf_counter() - t1
            storage = ledger.store.storage_bytes()
        return {
            "deposits_per_s": size / elapsed,
            "seconds": elapsed,
            "seal_entries_per_s": size / seal_s,
            "bytes_per_entry": storage / size,
        }
    finally:
        if url:
            drop_pg(url)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--procs", type=int, default=2)
    a = ap.parse_args()
    r = run(a.backend, a.n, a.procs)
    print(
        f"deposits[{a.backend}] n={a.n} procs={a.procs}: {r['deposits_per_s']:,.0f} durable "
        f"deposits/s ({r['seconds']:.1f} s); seal {r['seal_entries_per_s']:,.0f} entries/s; "
        f"{r['bytes_per_entry']:.0f} bytes/entry"
    )


if __name__ == "__main__":
    main()
