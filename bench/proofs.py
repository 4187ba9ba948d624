"""Inclusion and consistency proof generation from storage: p50/p99 latency.

Each proof opens a fresh tile reader (no cache carried between proofs), reads
its tiles from the database and is verified with ``verifier.merkle`` outside
the timed section.

    python bench/proofs.py --n 1000000              # a real ledger of hash-only deposits
    python bench/proofs.py --n 10000000 --tiles-only  # tree storage filled directly

``--tiles-only`` integrates synthetic leaf hashes straight into the tile table
(no events): proof generation reads only tiles, so the figure is the same
code path at a size that would take long to deposit.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import digests, fresh_home, summary
from ledger.core import Ledger
from ledger.events import evidence_deposited
from ledger.services import Services
from ledger.storage.base import CheckpointRow
from ledger.tree import NodeReader, integrate
from verifier.merkle import verify_consistency, verify_inclusion


def build_ledger(n: int) -> Ledger:
    home = fresh_home(f"proofs-{n}")
    ledger = Ledger.init(home, "bench.local/proofs")
    drafts = (evidence_deposited(kind="hash", sha256=h) for h in digests(0, n))
    for _ in Services(ledger).deposits.bulk(drafts):
        pass
    ledger.seal()
    return ledger


def fill_tiles_only(n: int) -> Ledger:
    home = fresh_home(f"proofs-tiles-{n}")
    ledger = Ledger.init(home, "bench.local/proofs")
    done = 0
    chunk = 1 << 20
    with ledger.store.sealing() as txn:
        while done < n:
            k = min(chunk, n - done)
            leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(done, done + k)]
            txn.put_tiles(integrate(txn.tiles, done, leaves))
            done += k
        root = NodeReader(txn.tiles).root(n)
        txn.add_checkpoint(CheckpointRow(n, root, "tiles-only\n", ""))
    return ledger


def run(ledger: Ledger, samples: int) -> None:
    cp = ledger.store.latest_checkpoint()
    assert cp is not None
    n = cp.size
    rng = random.Random(1)
    inc, con, reads = [], [], []
    for _ in range(samples):
        i = rng.randrange(n)
        t = time.perf_counter()
        reader = NodeReader(ledger.store.tiles)
        proof = reader.inclusion_proof(i, n)
        inc.append(time.perf_counter() - t)
        reads.append(reader.reads)
        leaf = ledger.store.tiles([(0, i // 256)])[(0, i // 256)].hashes[
            (i % 256) * 32 : (i % 256 + 1) * 32
        ]
        verify_inclusion(leaf, i, n, proof, cp.root)
    old_sizes = [rng.randrange(1, n) for _ in range(samples)]
    roots = {m: NodeReader(ledger.store.tiles).root(m) for m in old_sizes}
    for m in old_sizes:
        t = time.perf_counter()
        proof = NodeReader(ledger.store.tiles).consistency_proof(m, n)
        con.append(time.perf_counter() - t)
        verify_consistency(m, n, proof, roots[m], cp.root)
    print(f"proofs n={n:,}: inclusion   {summary(inc)}  tile reads max {max(reads)}")
    print(f"proofs n={n:,}: consistency {summary(con)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--tiles-only", action="store_true")
    a = ap.parse_args()
    t = time.perf_counter()
    ledger = fill_tiles_only(a.n) if a.tiles_only else build_ledger(a.n)
    print(f"built {a.n:,} entries in {time.perf_counter() - t:.1f} s")
    with ledger:
        run(ledger, a.samples)


if __name__ == "__main__":
    main()
