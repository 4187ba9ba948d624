"""PAdES B-T with the ledger's RFC 3161 TSA (``openssl ts`` behind HTTP, as in
tests/anchoring) and validation data in the signed revision (B-LT)."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "anchoring"))

from anchoring_support import TsaProc, configure, start_all
from pdf_support import el, ev, run
from pki import issue_tsa, make_ca

from ledger.accounts import create_account
from ledger.certificates import issue_certificate, trust_export
from ledger.config import TsaConfig, load_config, save_config
from ledger.core import Ledger
from ledger.pdfcert.service import certificate_pdf
from ledger.services import OPERATOR, Services
from verifier.pdf import verify_pdf
from verifier.trust import load_trust

pytestmark = pytest.mark.slow


class Stamped:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = make_ca(root / "ca")
        self.tsa = TsaProc(issue_tsa(self.ca, root / "tsa").config, root / "tsa.log")
        self.pdf = root / "s.pdf"
        self.cid = ""
        self.trust: dict[str, Any] = {}


@pytest.fixture(scope="module")
def stamped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stamped]:
    s = Stamped(tmp_path_factory.mktemp("stamped"))
    start_all([s.tsa])
    try:
        led = Ledger.init(s.root / "home", origin="tsa.pdf.test/log")
        led = configure(led, [], 0, (s.tsa.url, s.ca.cert))
        try:
            create_account(led, "notary", "Notary Li")
            eid = (
                Services(led)
                .deposits.deposit_file(OPERATOR, io.BytesIO(b"stamped\n"), file_name="s.txt")
                .evidence_id
            )
            led.seal()
            s.cid = issue_certificate(led, eid, "Notary Li").certificate_id
            s.pdf.write_bytes(certificate_pdf(led, s.cid))
            s.trust = trust_export(led)
        finally:
            led.close()
        yield s
    finally:
        s.tsa.stop()


def test_signature_timestamp_is_checked_against_the_tsa_roots(stamped: Stamped) -> None:
    trust = load_trust(json.dumps(stamped.trust).encode())
    report = verify_pdf(stamped.pdf, trust)
    checks = {c.key: c for c in report.checks}
    assert checks["pdf_timestamp"].status == "passed", checks["pdf_timestamp"].reason
    assert "PAdES B-T" in checks["pdf_timestamp"].reason
    assert "Evidence Test TSA" in checks["pdf_timestamp"].reason
    assert "(signature timestamp)" in checks["pdf_signer"].reason
    assert checks["timestamp"].status == "passed"  # the checkpoint's own token
    out = run("pdfsig", stamped.pdf).stdout
    assert "Signature is Valid" in out and "Total document signed" in out


def test_validation_data_is_in_the_signed_revision(stamped: Stamped) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    data = stamped.pdf.read_bytes()
    reader = PdfFileReader(io.BytesIO(data), strict=True)
    dss = DocumentSecurityStore.read_dss(reader)
    assert len(dss.certs) >= 2 and len(dss.crls) == 1
    assert reader.xrefs.total_revisions == 2  # the rendering, then signature + DSS


def test_a_stranger_tsa_root_fails_the_timestamp(stamped: Stamped, tmp_path: Path) -> None:
    stranger = make_ca(tmp_path / "stranger", "Someone Else's CA")
    doc = {**stamped.trust, "tsa_roots": [stranger.cert.read_text()]}
    report = verify_pdf(stamped.pdf, load_trust(json.dumps(doc).encode()))
    failed = {c.key: c.reason for c in report.failed}
    assert "does not chain to a TSA root" in failed["pdf_timestamp"]


def test_tsa_down_is_one_line_error(stamped: Stamped) -> None:
    home = stamped.root / "home"
    cfg = load_config(home)
    save_config(replace(cfg, tsas=(TsaConfig(url="http://127.0.0.1:9/", roots=cfg.tsa.roots),)))
    try:
        p = el(home, "certificate", "pdf", stamped.cid, stamped.root / "x.pdf")
        assert p.returncode == 1
        assert p.stderr.startswith("error: pdf: TSA http://127.0.0.1:9/ unreachable"), p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
        assert not (stamped.root / "x.pdf").exists()
    finally:
        save_config(cfg)
    v = ev("pdf", stamped.pdf, "--trust", _trust_file(stamped), "--json")
    assert json.loads(v.stdout)["checks"][2]["key"] == "pdf_timestamp"


def _trust_file(stamped: Stamped) -> Path:
    path = stamped.root / "trust.json"
    path.write_text(json.dumps(stamped.trust))
    return path


def test_without_tsa_roots_the_token_is_not_relied_on(stamped: Stamped) -> None:
    doc = {**stamped.trust, "tsa_roots": []}
    report = verify_pdf(stamped.pdf, load_trust(json.dumps(doc).encode()))
    checks = {c.key: c for c in report.checks}
    assert checks["pdf_timestamp"].status == "not_applicable"
    assert "is not checked" in checks["pdf_timestamp"].reason
    assert "(time stated by the signer)" in checks["pdf_signer"].reason
    assert checks["pdf_signer"].status == "passed"
