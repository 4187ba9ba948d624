"""PDF certificate benchmark (issue 13): render + sign time per certificate, and size.

    python bench/pdf_bench.py              # 100 certificates, no TSA
    python bench/pdf_bench.py --n 20 --verify

A real SQLite ledger with a notary and ``--n`` file deposits (each with its own
title, so every PDF embeds its own glyph subset), sealed, a certificate issued
for each. Then, per certificate, timed separately:

* render: :func:`ledger.pdfcert.render.render_pdf` (layout, font subsets,
  PDF/A objects), the deterministic unsigned file;
* sign: :func:`ledger.pdfcert.sign.sign_pdf` (PAdES, CMS by the notary's
  X.509 key, DSS with the chain and the local CA's CRL), without a TSA;
* total: :func:`ledger.pdfcert.service.certificate_pdf`, what the route and the
  CLI call: reading the certificate, render, credential, CRL, sign and the
  self-check of the page and attachments.

On a busy host wall times grow with the load; the process CPU time of the
total is printed too, which is what the wall time is on an idle core.

The first call of a process loads the two Noto Sans CJK faces (about 1-2 s);
it is reported apart and left out of the statistics. With ``--verify`` the
time of ``verify_pdf`` (signature, chain, page) is measured too.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_home
from ledger.accounts import create_account
from ledger.certificates import get_certificate, issue_certificate
from ledger.core import Ledger
from ledger.pdfcert.render import render_pdf
from ledger.pdfcert.service import certificate_pdf, notary_credential
from ledger.pdfcert.sign import sign_pdf
from ledger.pdfcert.x509 import local_crl
from ledger.services import OPERATOR, Services

TITLES = ["采购合同", "设计稿 v{}", "Software licence {}", "商标注册证明", "会议纪要 {} 号"]


def _stats(name: str, ms: list[float]) -> str:
    p95 = statistics.quantiles(ms, n=20)[18] if len(ms) >= 20 else max(ms)
    return (
        f"{name:<8} mean {statistics.fmean(ms):7.1f} ms   p50 {statistics.median(ms):7.1f} ms   "
        f"p95 {p95:7.1f} ms   max {max(ms):7.1f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="certificates (default 100)")
    ap.add_argument("--verify", action="store_true", help="also time verify_pdf")
    a = ap.parse_args()
    home = fresh_home("pdf-bench")
    ledger = Ledger.init(home, origin="bench.pdf/log")
    try:
        notary = create_account(ledger, "notary", "公证员 Notary Bench")
        ids = []
        for i in range(a.n):
            data = f"bench evidence {i}\n".encode() * 20
            title = TITLES[i % len(TITLES)].format(i) + f" 第{i}份"
            ids.append(
                Services(ledger)
                .deposits.deposit_file(
                    OPERATOR,
                    io.BytesIO(data),
                    title=title,
                    file_name=f"e{i}.txt",
                    media_type="text/plain",
                )
                .evidence_id
            )
        ledger.seal()
        certs = [issue_certificate(ledger, e, notary.account_id).certificate_id for e in ids]
        base = ledger.config.base_url
        t = time.perf_counter()
        certificate_pdf(ledger, certs[0])  # loads the fonts and pyHanko
        first = (time.perf_counter() - t) * 1000
        credential = notary_credential(ledger, notary.account_id)
        crl = local_crl(home, ledger.config.origin, [])
        render_ms, sign_ms, total_ms, sizes, verify_ms = [], [], [], [], []
        cpu_ms = []
        for cid in certs:
            data = get_certificate(ledger, cid)
            t0 = time.perf_counter()
            unsigned = render_pdf(data, base)
            t1 = time.perf_counter()
            sign_pdf(unsigned, credential, crls=[crl])
            t2 = time.perf_counter()
            c2 = time.process_time()
            pdf = certificate_pdf(ledger, cid)
            cpu_ms.append((time.process_time() - c2) * 1000)
            t3 = time.perf_counter()
            render_ms.append((t1 - t0) * 1000)
            sign_ms.append((t2 - t1) * 1000)
            total_ms.append((t3 - t2) * 1000)
            sizes.append(len(pdf))
            if a.verify:
                import json

                from ledger.certificates import trust_export
                from verifier.pdf import verify_pdf
                from verifier.trust import load_trust

                trust = load_trust(json.dumps(trust_export(ledger)).encode())
                t4 = time.perf_counter()
                verify_pdf(pdf, trust)
                verify_ms.append((time.perf_counter() - t4) * 1000)
    finally:
        ledger.close()
    print(f"PDF certificates: {a.n}, no TSA; first call (fonts loaded) {first:.0f} ms")
    print(_stats("render", render_ms))
    print(_stats("sign", sign_ms))
    print(_stats("total", total_ms) + "   (certificate_pdf: render + sign + self-check)")
    print(_stats("cpu", cpu_ms) + "   (process CPU time of total: wall time on an idle host)")
    if verify_ms:
        print(_stats("verify", verify_ms))
    print(
        f"size     mean {statistics.fmean(sizes) / 1024:.1f} KiB   max {max(sizes) / 1024:.1f} KiB"
        "   (no screenshot)"
    )


if __name__ == "__main__":
    main()
