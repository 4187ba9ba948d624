"""RFC 3161 verification cost: a real DigiCert token as sent vs. the same token in DER.

    python bench/timestamp_bench.py                 # 300 rounds
    python bench/timestamp_bench.py --rounds 1000

The token is tests/vectors/tsa/real/2288b640a720fde6.tst, as DigiCert's TSA
issued it (three certificates, not in DER order). For it and for its DER form
(the certificate set sorted; normalisation then only reads it), the script
times in-process, after one warm-up:

- ``normalise_token``: decode as BER, rebuild in DER, prove the signed parts
  unchanged;
- ``verify_token``: normalisation, rfc3161-client (CMS signature, chain to
  the DigiCert root at genTime, EKU, imprint), the ESS binding;

and, for reference, rfc3161-client alone on the DER form (what the verifier
adds on top: normalisation, the ESS binding, the weak-algorithm policy).

It prints the median and 95th percentile of each, in microseconds, and the
share of a full verification that normalisation costs.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rfc3161_client

from verifier import der as asn1
from verifier.cms import normalise_token
from verifier.timestamp import load_roots, verify_token

TSA = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "tsa"
NAME = "2288b640a720fde6"


def _measure(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """CPU time of each case in microseconds, the cases interleaved round by round.

    Interleaving and thread CPU time (not wall time) keep a busy shared host
    from favouring whichever case happened to run while it was quiet.
    """
    for fn in cases.values():
        fn()
    out: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(rounds):
        for label, fn in cases.items():
            t = time.thread_time()
            fn()
            out[label].append((time.thread_time() - t) * 1e6)
    return out


def _row(label: str, times: list[float]) -> str:
    p95 = statistics.quantiles(times, n=20)[18]
    return f"{label:<44} median {statistics.median(times):7.0f} us   p95 {p95:7.0f} us (CPU)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    sent = (TSA / "real" / f"{NAME}.tst").read_bytes()
    message = (TSA / "real" / f"{NAME}.msg").read_bytes()
    roots = load_roots([(TSA / "roots" / "digicert_g4.pem").read_bytes()])
    der = normalise_token(sent).der
    if der == sent or normalise_token(der).changes:
        raise SystemExit("the vector is expected to need its certificate set sorted")
    print(f"token {NAME}: {len(sent)} bytes, rounds {args.rounds}, Python {sys.version.split()[0]}")
    response = asn1.tlv(0x30, bytes.fromhex("3003020100") + der)
    digest = hashlib.sha256(message).digest()
    library = rfc3161_client.VerifierBuilder().add_root_certificate(roots[0]).build()

    def library_only() -> None:
        library.verify(rfc3161_client.decode_timestamp_response(response), digest)

    sent_label, der_label = "as sent (certificates not in DER order)", "DER"
    results = _measure(
        {
            f"normalise_token, {sent_label}": lambda: normalise_token(sent),
            f"normalise_token, {der_label}": lambda: normalise_token(der),
            f"verify_token,    {sent_label}": lambda: verify_token(sent, roots, message=message),
            f"verify_token,    {der_label}": lambda: verify_token(der, roots, message=message),
            "rfc3161-client alone, DER": library_only,
        },
        args.rounds,
    )
    for label, times in results.items():
        print(_row(label, times))
    med = {label: statistics.median(times) for label, times in results.items()}
    full = med[f"verify_token,    {sent_label}"]
    print(
        f"normalisation: {100 * med[f'normalise_token, {sent_label}'] / full:.1f}% of verifying "
        "the token as sent"
    )
    print(
        f"verifying the token as sent costs {full / med[f'verify_token,    {der_label}']:.2f}x "
        "verifying its DER form"
    )


if __name__ == "__main__":
    main()
