"""Revoker process for the two-process race:
``revoker_proc.py HOME CERTIFICATE_ID THREADS GO OUT``.

Opens its own Ledger on HOME, creates OUT to say it is ready, waits until
the file GO exists (so every process starts together), then revokes the
certificate from THREADS threads at once through the certificate service,
and writes one JSON line per attempt to OUT: ``{"index": ...}`` for the
revocation that was appended, ``{"error": "<class>"}`` for a refusal.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from ledger.core import Ledger
from ledger.errors import LedgerError
from ledger.services import OPERATOR, Services


def main() -> None:
    home, cid, threads, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    lines: list[str] = []
    lock = threading.Lock()
    with Ledger.open(home) as led, open(sys.argv[5], "w") as out:
        services = Services(led)
        out.flush()  # OUT exists: this process is ready
        barrier = threading.Barrier(threads)

        def revoke(i: int) -> None:
            barrier.wait()
            try:
                done = services.certificates.revoke(OPERATOR, cid, f"process {os.getpid()} {i}")
                line = json.dumps({"index": done.index})
            except LedgerError as e:
                line = json.dumps({"error": type(e).__name__, "message": str(e)})
            with lock:
                lines.append(line)

        deadline = time.monotonic() + 30
        while not os.path.exists(go):
            if time.monotonic() > deadline:
                raise SystemExit("revoker: start signal never came")
            time.sleep(0.002)
        workers = [threading.Thread(target=revoke, args=(i,)) for i in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        out.write("".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main()
