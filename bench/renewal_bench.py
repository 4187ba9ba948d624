"""Timestamp renewal (RFC 4998): throughput of ``tsa renew`` and its cost to verifiers.

    python bench/renewal_bench.py                              # 10k entries, 200 checkpoints
    python bench/renewal_bench.py --entries 10000 --checkpoints 1000

Two real ``openssl ts`` TSAs (the test TSA server): TSA 1, whose certificate
ends in ten days, stamps every checkpoint as it is sealed; TSA 2 renews
them. The script prints, side by side:

- sealing with TSA 1: seconds per checkpoint (one TSA request each), the
  baseline a naive renewal would repeat for every checkpoint;
- the first ``renew`` (every record due): seconds, records per second, TSA
  requests (one per hash algorithm, whatever the number of records), and
  what re-stamping each checkpoint on its own would have cost;
- a second ``renew`` (nothing due: idempotent), seconds;
- the timestamp check of a certificate (its token against the trust file),
  and what the renewal check adds to it: now, without a record, and after
  TSA 1's certificate expired, through its evidence record (as
  ``verify_certificate`` runs them: the tokens verified once), CPU
  microseconds; and the record's size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "anchoring"))

from anchoring_support import TsaProc, configure, start_all  # noqa: E402
from pki import issue_tsa, make_ca  # noqa: E402

from bench.common import digests, fresh_home  # noqa: E402
from ledger.certificates import trust_export  # noqa: E402
from ledger.core import Ledger  # noqa: E402
from ledger.events import evidence_deposited  # noqa: E402
from ledger.renewal import evidence_records  # noqa: E402
from ledger.services import Services  # noqa: E402
from verifier.anchors import renewal_check, stamped_check  # noqa: E402
from verifier.ers import parse_record  # noqa: E402
from verifier.note import parse_note  # noqa: E402
from verifier.trust import load_trust  # noqa: E402


def _cpu(fn: object, rounds: int) -> float:
    """Median thread CPU time of ``fn()`` in microseconds, after one warm-up."""
    fn()  # type: ignore[operator]
    times = []
    for _ in range(rounds):
        t = time.thread_time()
        fn()  # type: ignore[operator]
        times.append((time.thread_time() - t) * 1e6)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--checkpoints", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args()
    work = fresh_home("renewal")
    now = datetime.now(UTC)
    cas = [make_ca(work / "ca1", "TSA One Root"), make_ca(work / "ca2")]
    until = now + timedelta(days=10)
    tsas = [
        issue_tsa(cas[0], work / "tsa1", cn="TSA 1", not_after=until),
        issue_tsa(cas[1], work / "tsa2", cn="TSA 2"),
    ]
    procs = [TsaProc(t.config, work / f"tsa{i}.log") for i, t in enumerate(tsas)]
    start_all(procs)
    try:
        led = Ledger.init(work / "home", origin="bench.example/renewal")
        led = configure(led, [], 0, tsas=[(procs[0].url, cas[0].cert)], tsa_quorum=1)
        per = max(1, args.entries // args.checkpoints)
        seal_time = 0.0
        for c in range(args.checkpoints):
            drafts = (evidence_deposited(kind="hash", sha256=d) for d in digests(c * per, per))
            for _ in Services(led).deposits.bulk(drafts):
                pass
            t = time.perf_counter()
            led.seal()
            seal_time += time.perf_counter() - t
        pairs = [(p.url, ca.cert) for p, ca in zip(procs, cas, strict=True)]
        led = configure(led, [], 0, tsas=pairs, tsa_quorum=1)
        services = Services(led)
        t = time.perf_counter()
        first = services.renewals.renew()
        renew_time = time.perf_counter() - t
        t = time.perf_counter()
        second = services.renewals.renew()
        again_time = time.perf_counter() - t
        pub = led.store.latest_publication()
        if pub is None or pub.token is None:
            raise SystemExit("no published checkpoint with a token")
        (record,) = evidence_records(led, pub.size)
        trust = load_trust(json.dumps(trust_export(led)).encode())
        led.close()
    finally:
        for p in procs:
            p.stop()
    n = first["renewed"]
    if n != args.checkpoints or second["renewed"] != 0:
        raise SystemExit(f"unexpected renewal runs: {first} then {second}")
    body = parse_note(pub.note).text
    later = until + timedelta(days=1)
    token = pub.token
    _, stamped = stamped_check(body, token, trust)
    plain = _cpu(lambda: renewal_check(body, token, [], trust, now, stamped), args.rounds)
    renewed = _cpu(lambda: renewal_check(body, token, [record], trust, later, stamped), args.rounds)
    stamp = _cpu(lambda: stamped_check(body, token, trust), args.rounds)
    per_seal = seal_time / args.checkpoints
    print(
        f"entries {per * args.checkpoints}, checkpoints {args.checkpoints}, "
        f"Python {sys.version.split()[0]}"
    )
    print(f"seal + TSA 1 token (baseline)   {per_seal * 1e3:8.1f} ms per checkpoint")
    print(
        f"renew, first run (all due)      {renew_time:8.2f} s  {n / renew_time:8.0f} records/s  "
        f"{len(first['batches'])} TSA request(s)"
    )
    print(
        f"re-stamping each checkpoint     {per_seal * n:8.2f} s  (estimate: {n} TSA requests "
        "at the sealing rate)"
    )
    print(f"renew, second run (none due)    {again_time:8.2f} s")
    print(f"timestamp check (baseline)      {stamp:8.0f} us CPU")
    print(f"+ renewal check, now, no record {plain:8.0f} us CPU")
    renewals = parse_record(record).renewals
    print(
        f"+ renewal check, after expiry   {renewed:8.0f} us CPU  (record of {len(record)} bytes, "
        f"{renewals} renewal)"
    )


if __name__ == "__main__":
    main()
