"""``seal`` publishes with TSAs that answer the way real ones do.

Two ``openssl ts -reply`` TSAs under root -> intermediate -> TSA whose tokens
carry all three certificates (``certs =``), signer first, so that the
certificate SET is not in DER order (the PKI is remade until it is not, as with
DigiCert's tokens); the second answers in BER (indefinite lengths, a segmented
TSTInfo), as Bouncy Castle TSAs do. Both used to be refused, so nothing was
published. Now both publish, the stored token is the TSA's bytes as sent, and
every verifier accepts it: ours, the ledger's audit, ``openssl ts -verify`` and
``evidence-verify timestamp``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from anchoring_support import TsaProc, configure, deposit, el, start_all
from pki import issue_tsa as issue
from pki import make_ca, make_intermediate, openssl
from token_forms import certificates

from ledger.anchoring import audit_publications, trust_anchoring
from ledger.core import Ledger
from verifier.anchors import timestamp_check
from verifier.cms import normalise_token
from verifier.note import parse_note
from verifier.timestamp import load_roots, response_token, verify_timestamp
from verifier.trust import load_trust

pytestmark = pytest.mark.slow


@dataclass
class Tsas:
    root: Path
    """The root CA certificate (PEM), the only trust anchor."""
    der: TsaProc
    ber: TsaProc


def _unsorted_chain_tsa(base: Path) -> tuple[Path, Path]:
    """(root certificate, TSA config) whose tokens' 3-certificate SET is not in DER order."""
    for attempt in range(20):
        d = base / f"pki{attempt}"
        root = make_ca(d / "root")
        inter = make_intermediate(root, d / "inter")
        tsa = issue(inter, d / "tsa", chain=[inter.cert, root.cert])
        (d / "m").write_bytes(b"probe")
        openssl("ts", "-query", "-data", d / "m", "-sha256", "-cert", "-out", d / "q")
        openssl("ts", "-reply", "-config", tsa.config, "-queryfile", d / "q", "-out", d / "r")
        certs = certificates(response_token((d / "r").read_bytes()))
        if len(certs) == 3 and certs != sorted(certs):
            return root.cert, tsa.config
    raise RuntimeError("no PKI with an unsorted certificate set in 20 attempts")


@pytest.fixture(scope="module")
def tsas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tsas]:
    base = tmp_path_factory.mktemp("real-tsa")
    root, config = _unsorted_chain_tsa(base)
    t = Tsas(root, TsaProc(config, base / "der.log"), TsaProc(config, base / "ber.log", ber=True))
    start_all([t.der, t.ber])
    try:
        yield t
    finally:
        t.der.stop()
        t.ber.stop()


def _ledger(tmp_path: Path, tsa: TsaProc, root: Path, name: str) -> Ledger:
    led = Ledger.init(tmp_path / name, origin=f"{name}.test/log")
    return configure(led, [], 0, (tsa.url, root))


def _check_published(led: Ledger, root: Path, tmp_path: Path) -> tuple[bytes, str]:
    """The latest publication's token verifies everywhere; returns (token, body)."""
    cp = led.latest_checkpoint()
    token = led.checkpoint_token(cp.size)
    assert token is not None
    body = parse_note(cp.note).text
    roots = load_roots([root.read_bytes()])
    verify_timestamp(token, body.encode(), roots)
    assert audit_publications(led) >= 2
    trust = load_trust(
        json.dumps(
            {
                "format": "evidence-trust/v1",
                "logs": [{"origin": led.config.origin, "vkey": led.verifier_key.to_text()}],
                "notaries": [],
                **trust_anchoring(led),
            }
        ).encode()
    )
    check, info = timestamp_check(body, token, trust)
    assert check.ok and info is not None, check.reason
    (tmp_path / "token").write_bytes(token)
    (tmp_path / "body").write_text(body)
    out = subprocess.run(
        [
            *("openssl", "ts", "-verify", "-token_in", "-in", str(tmp_path / "token")),
            *("-data", str(tmp_path / "body"), "-CAfile", str(root)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Verification: OK" in out.stdout, out.stderr
    cli = subprocess.run(
        [
            str(Path(sys.executable).with_name("evidence-verify")),
            *("timestamp", str(tmp_path / "token"), "--data", str(tmp_path / "body")),
            *("--roots", str(root), "--json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "certificates sorted into DER order" in json.loads(cli.stdout)["normalised"]
    return token, body


def test_seal_publishes_with_a_three_certificate_chain(tsas: Tsas, tmp_path: Path) -> None:
    led = _ledger(tmp_path, tsas.der, tsas.root, "chain3")
    try:
        deposit(led, 12)
        cp = led.seal()
        assert cp.size == 12 and led.latest_checkpoint().size == 12
        token, _ = _check_published(led, tsas.root, tmp_path)
    finally:
        led.close()
    # Stored as sent: three certificates, signer first, not in DER order.
    certs = certificates(token)
    assert len(certs) == 3 and certs != sorted(certs)
    assert normalise_token(token).der != token
    # The command line seals and publishes the same way; the audit agrees.
    led = Ledger.open(tmp_path / "chain3")
    try:
        deposit(led, 3, "cli")
    finally:
        led.close()
    r = el(tmp_path / "chain3", "seal")
    assert r.returncode == 0, r.stderr
    r = el(tmp_path / "chain3", "audit")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["publications"] == 3


def test_seal_publishes_with_a_tsa_answering_in_ber(tsas: Tsas, tmp_path: Path) -> None:
    led = _ledger(tmp_path, tsas.ber, tsas.root, "ber")
    try:
        deposit(led, 7)
        cp = led.seal()
        assert cp.size == 7 and led.latest_checkpoint().size == 7
        token, _ = _check_published(led, tsas.root, tmp_path)
        # Stored as sent: BER, indefinite outer length; checked through its DER form.
        assert token[:2] == b"\x30\x80" and token.endswith(b"\x00\x00")
        changes = normalise_token(token).changes
        assert changes[0] == "BER lengths or segmented strings re-encoded in DER"
        deposit(led, 2, "more")
        assert led.seal().size == 9
        assert led.checkpoint_token(9) != led.checkpoint_token(7)
        assert audit_publications(led) == 3
    finally:
        led.close()
