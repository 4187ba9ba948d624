"""End to end with real anchoring: two witness processes (quorum 2) and an
``openssl ts`` TSA cosign and timestamp the checkpoint; the certificate carries
both; the trust file from ``trust export`` names the witnesses and the TSA root;
``evidence-verify`` passes every check, including the witness quorum and the
RFC 3161 token, and fails when the trust file asks for what is not there.

The witness and TSA processes are the ones ``tests/anchoring`` uses (imported
from there, not copied).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "anchoring"))

from anchoring_support import TsaProc, WitnessProc, configure, start_all
from pki import issue_tsa, make_ca

from ledger.accounts import create_account
from ledger.certificates import issue_certificate, package_certificate, trust_export
from ledger.core import Ledger
from ledger.services import OPERATOR, Services
from verifier.certificate import Certificate
from verifier.cli import EXIT_INVALID, EXIT_VALID, main
from verifier.package import verify_package
from verifier.trust import load_trust

pytestmark = pytest.mark.slow
CONTENT = b"anchored evidence " * 100


class Anchored:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.witnesses = [WitnessProc(root, f"w{i}.certs.test/witness") for i in range(2)]
        self.ca = make_ca(root / "ca")
        self.tsa = TsaProc(issue_tsa(self.ca, root / "tsa").config, root / "tsa.log")
        self.procs = [*self.witnesses, self.tsa]

    def build(self) -> None:
        led = Ledger.init(self.root / "home", origin="anchored.certs.test/log")
        for w in self.witnesses:
            w.follow(led.verifier_key.to_text())
        led = configure(led, self.witnesses, 2, (self.tsa.url, self.ca.cert))
        try:
            create_account(led, "notary", "Notary Zhang")
            eid = (
                Services(led)
                .deposits.deposit_file(OPERATOR, io.BytesIO(CONTENT), file_name="a.txt")
                .evidence_id
            )
            led.seal()
            issued = issue_certificate(led, eid, "Notary Zhang")
            self.cert = issued.data
            self.package = package_certificate(led, issued.certificate_id, self.root / "a.zip")
            self.trust = trust_export(led)
        finally:
            led.close()
        (self.root / "trust.json").write_text(json.dumps(self.trust), "utf-8")


@pytest.fixture(scope="module")
def anchored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anchored]:
    a = Anchored(tmp_path_factory.mktemp("anchored"))
    start_all(a.procs)
    try:
        a.build()
        yield a
    finally:
        for p in a.procs:
            p.stop()


def test_certificate_carries_cosignatures_and_token(anchored: Anchored) -> None:
    cert = Certificate.from_json(anchored.cert)
    names = {s.name for s in cert.checkpoint_note.signatures}
    assert {w.name for w in anchored.witnesses} <= names
    assert cert.timestamp_token is not None
    assert anchored.trust["witnesses"]["quorum"] == 2 and len(anchored.trust["tsa_roots"]) == 1


def test_everything_passes_with_the_exported_trust(
    anchored: Anchored, capsys: pytest.CaptureFixture[str]
) -> None:
    report = verify_package(anchored.package, load_trust(json.dumps(anchored.trust).encode()))
    statuses = {c.key: c.status for c in report.checks}
    assert report.valid, [(c.key, c.reason) for c in report.failed]
    assert statuses["witnesses"] == "passed" and statuses["timestamp"] == "passed"
    assert "2 of 2 trusted witnesses cosigned" in report.check("witnesses").reason
    args = ["package", str(anchored.package), "--trust", str(anchored.root / "trust.json")]
    assert main(args) == EXIT_VALID
    capsys.readouterr()


def test_an_unmet_quorum_or_an_unknown_tsa_fails(anchored: Anchored, tmp_path: Path) -> None:
    stranger = make_ca(tmp_path / "stranger", "Someone Else's CA")
    doc = {**anchored.trust, "tsa_roots": [stranger.cert.read_text()]}
    report = verify_package(anchored.package, load_trust(json.dumps(doc).encode()))
    # The checkpoint's token and the PDF's signature timestamp come from that TSA.
    assert {c.key for c in report.failed} == {"timestamp", "timestamp_renewal", "pdf_timestamp"}
    assert report.check("timestamp_renewal").status == "skipped"
    # A third witness the log never reached: a quorum of 3 cannot be met.
    extra = WitnessProc(tmp_path, "w9.certs.test/witness")
    keys = [*anchored.trust["witnesses"]["keys"], {"name": extra.name, "vkey": extra.vkey}]
    doc = {**anchored.trust, "witnesses": {"quorum": 3, "keys": keys}}
    (tmp_path / "trust.json").write_text(json.dumps(doc))
    report = verify_package(anchored.package, load_trust(json.dumps(doc).encode()))
    assert {c.key for c in report.failed} == {"witnesses"}
    assert "2 of 3 trusted witnesses cosigned" in report.check("witnesses").reason
    assert main(["package", str(anchored.package), "--trust", str(tmp_path / "trust.json")]) == (
        EXIT_INVALID
    )
