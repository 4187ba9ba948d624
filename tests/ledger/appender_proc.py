"""Writer process for the two-process race: ``appender_proc.py HOME COUNT SEED GO OUT``.

Opens its own Ledger on HOME, creates OUT to say it is ready, waits until the
file GO exists (so both writers start together), appends COUNT hash deposits
in many small groups of 1..9 (pausing up to 0.5 ms between groups) and writes
one JSON line per entry (index, leaf hash) to OUT once its group is durable.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

from ledger.core import Ledger
from ledger.events import evidence_deposited


def main() -> None:
    home, count, seed, go = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    rnd = random.Random(seed)
    with Ledger.open(home) as led, open(sys.argv[5], "w") as out:
        out.flush()  # OUT exists: this writer is ready
        deadline = time.monotonic() + 30
        while not os.path.exists(go):
            if time.monotonic() > deadline:
                raise SystemExit("appender: start signal never came")
            time.sleep(0.005)
        done = 0
        while done < count:
            n = min(count - done, rnd.randint(1, 9))
            drafts = [
                evidence_deposited(kind="hash", sha256=rnd.randbytes(32).hex()) for _ in range(n)
            ]
            for a in led.append(drafts):
                out.write(json.dumps({"index": a.index, "leaf_hash": a.leaf_hash.hex()}) + "\n")
            done += n
            # Real clients pause between requests; without any pause SQLite's
            # busy handler lets one writer starve the other for long stretches.
            time.sleep(rnd.random() / 2000)


if __name__ == "__main__":
    main()
