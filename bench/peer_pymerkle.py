"""Side by side: our ledger and pymerkle's ``SqliteTree`` on the same work.

Both append the same N entries (durably, in batches) and then answer the same
random inclusion and consistency challenges; the script prints both and the
ratio. pymerkle stores only leaf hashes and recomputes subtree roots per proof;
our ledger stores tiles.

    python bench/peer_pymerkle.py --n 100000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import digests, fresh_home, pct
from ledger.core import Ledger
from ledger.events import evidence_deposited
from ledger.services import Services
from ledger.tree import NodeReader


def ours(n: int, challenges: list[tuple[int, int]]) -> tuple[float, list[float], list[float]]:
    home = fresh_home("peer-ours")
    with Ledger.init(home, "bench.local/peer") as ledger:
        t = time.perf_counter()
        drafts = (evidence_deposited(kind="hash", sha256=h) for h in digests(0, n))
        for _ in Services(ledger).deposits.bulk(drafts):
            pass
        ledger.seal()
        append_s = time.perf_counter() - t
        inc, con = [], []
        for i, m in challenges:
            t = time.perf_counter()
            NodeReader(ledger.store.tiles).inclusion_proof(i, n)
            inc.append(time.perf_counter() - t)
            t = time.perf_counter()
            NodeReader(ledger.store.tiles).consistency_proof(m, n)
            con.append(time.perf_counter() - t)
    return n / append_s, inc, con


def peer(n: int, challenges: list[tuple[int, int]]) -> tuple[float, list[float], list[float]]:
    from pymerkle import SqliteTree

    home = fresh_home("peer-pymerkle")
    home.mkdir(parents=True)
    tree = SqliteTree(str(home / "tree.db"))
    t = time.perf_counter()
    batch: list[bytes] = []
    for h in digests(0, n):
        batch.append(h.encode())
        if len(batch) == 10_000:
            tree.append_entries(batch)
            batch = []
    if batch:
        tree.append_entries(batch)
    append_s = time.perf_counter() - t
    inc, con = [], []
    for i, m in challenges:
        t = time.perf_counter()
        tree.prove_inclusion(i + 1, n)
        inc.append(time.perf_counter() - t)
        t = time.perf_counter()
        tree.prove_consistency(m, n)
        con.append(time.perf_counter() - t)
    tree.close()
    return n / append_s, inc, con


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=500)
    a = ap.parse_args()
    rng = random.Random(7)
    ch = [(rng.randrange(a.n), rng.randrange(1, a.n)) for _ in range(a.samples)]
    o = ours(a.n, ch)
    p = peer(a.n, ch)
    print(f"peer n={a.n:,}        {'ours':>12} {'pymerkle':>12} {'ratio':>8}")
    print(f"appends/s           {o[0]:12,.0f} {p[0]:12,.0f} {o[0] / p[0]:7.2f}x")
    for name, k in (("inclusion p50 us", 1), ("consistency p50 us", 2)):
        a50, b50 = pct(o[k], 50) * 1e6, pct(p[k], 50) * 1e6  # type: ignore[arg-type]
        print(f"{name:19} {a50:12.0f} {b50:12.0f} {b50 / a50:7.2f}x faster")
    for name, k in (("inclusion p99 us", 1), ("consistency p99 us", 2)):
        a99, b99 = pct(o[k], 99) * 1e6, pct(p[k], 99) * 1e6  # type: ignore[arg-type]
        print(f"{name:19} {a99:12.0f} {b99:12.0f} {b99 / a99:7.2f}x faster")


if __name__ == "__main__":
    main()
