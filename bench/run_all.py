"""Run every ledger benchmark at a given scale and print the figures.

python bench/run_all.py            # 1,000,000 entries (takes minutes)
python bench/run_all.py --n 100000 # quicker
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    a = ap.parse_args()
    n = str(a.n)
    runs = [
        ["deposits.py", "--backend", "sqlite", "--n", n],
        ["deposits.py", "--backend", "postgresql", "--n", n],
        ["proofs.py", "--n", n],
        ["proofs.py", "--n", str(a.n * 10), "--tiles-only"],
        ["audit.py", "--n", n],
        ["peer_pymerkle.py", "--n", str(min(a.n, 200_000))],
    ]
    for args in runs:
        print("$ python bench/" + " ".join(args), flush=True)
        subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], check=True)


if __name__ == "__main__":
    main()
