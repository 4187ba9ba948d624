"""The operator's side: the local notary CA, binding a CA-issued certificate to a
notary, ``certificate pdf``, ``public-url``; bad input is refused with one line."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pdf_support import el, ev

from ledger.core import Ledger
from ledger.pdfcert.x509 import CA_CERT, CA_KEY

ORIGIN = "cli.pdf.test/log"


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    usage: bool = True,
) -> x509.Certificate:
    now = datetime.now(UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "某某公证处 Notary Office")])
        )
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=365))
    )
    if usage:
        b = b.add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
    return b.sign(ca[1], hashes.SHA256())


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    h = tmp_path_factory.mktemp("cli") / "home"
    assert el(h, "init", "--origin", ORIGIN).returncode == 0
    return h


def test_init_creates_the_local_ca_with_a_private_key(home: Path) -> None:
    key, cert = home / "keys" / CA_KEY, home / "keys" / CA_CERT
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    trust = json.loads(el(home, "trust", "export").stdout)
    assert trust["notary_ca_roots"][0].strip() == cert.read_text().strip()


def test_an_older_home_gets_its_ca_on_demand(tmp_path: Path) -> None:
    led = Ledger.init(tmp_path / "old", origin=ORIGIN)
    led.close()
    for name in (CA_KEY, CA_CERT):
        (tmp_path / "old" / "keys" / name).unlink()
    trust = json.loads(el(tmp_path / "old", "trust", "export").stdout)
    assert len(trust["notary_ca_roots"]) == 1
    assert stat.S_IMODE((tmp_path / "old" / "keys" / CA_KEY).stat().st_mode) == 0o600


def test_notary_with_a_bound_rsa_certificate_signs_pdfs(home: Path, tmp_path: Path) -> None:
    ca = _ca("Real Notary Root CA")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _leaf(ca, key)
    (tmp_path / "n.pem").write_bytes(_pem(leaf, ca[0]))
    (tmp_path / "n.key").write_bytes(_key_pem(key))
    p = el(
        home,
        *("account", "create", "--role", "notary", "--name", "Notary Office"),
        *("--x509-cert", tmp_path / "n.pem", "--x509-key", tmp_path / "n.key"),
    )
    assert p.returncode == 0, p.stderr
    account = json.loads(p.stdout.splitlines()[0])
    key_file = home / "keys" / f"x509-notary-{account['account_id']}.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # A deposit, a certificate and its PDF, all through the CLI.
    (tmp_path / "e.txt").write_bytes(b"evidence\n")
    dep = el(home, "deposit", tmp_path / "e.txt")
    assert dep.returncode == 0, dep.stderr
    eid = json.loads(dep.stdout.splitlines()[0])["evidence_id"]
    assert el(home, "seal").returncode == 0
    cert = el(home, "certificate", "issue", eid, "--notary", "Notary Office")
    assert cert.returncode == 0, cert.stderr
    cid = json.loads(cert.stdout)["certificate_id"]
    out = tmp_path / "c.pdf"
    p = el(home, "certificate", "pdf", cid, out)
    assert p.returncode == 0, p.stderr
    assert not out.with_name("c.pdf.tmp").exists()
    trust = json.loads(el(home, "trust", "export").stdout)
    assert any(r.strip() == _pem(ca[0]).decode().strip() for r in trust["notary_ca_roots"])
    (tmp_path / "trust.json").write_text(json.dumps(trust))
    v = ev("pdf", out, "--trust", tmp_path / "trust.json", "--evidence", tmp_path / "e.txt")
    assert v.returncode == 0, v.stdout
    assert "Real Notary Root CA" in v.stdout and "某某公证处 Notary Office" in v.stdout


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("wrong key", "not the certificate's key"),
        ("no key usage", "no key usage"),
        ("P-384", "must use P-256"),
        ("not PEM", "holds no PEM certificate"),
        ("one file", "go together"),
    ],
)
def test_bad_credentials_are_refused_before_anything_is_written(
    home: Path, tmp_path: Path, case: str, message: str
) -> None:
    ca = _ca("Some CA")
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = ec.generate_private_key(ec.SECP256R1())
    cert_pem = _pem(_leaf(ca, key))
    if case == "wrong key":
        key = ec.generate_private_key(ec.SECP256R1())
    elif case == "no key usage":
        cert_pem = _pem(_leaf(ca, key, usage=False))
    elif case == "P-384":
        key = ec.generate_private_key(ec.SECP384R1())
        cert_pem = _pem(_leaf(ca, key))
    elif case == "not PEM":
        cert_pem = b"not a certificate"
    (tmp_path / "c.pem").write_bytes(cert_pem)
    (tmp_path / "k.pem").write_bytes(_key_pem(key))
    files = ["--x509-cert", str(tmp_path / "c.pem")]
    if case != "one file":
        files += ["--x509-key", str(tmp_path / "k.pem")]
    name = f"Refused {case}"
    p = el(home, "account", "create", "--role", "notary", "--name", name, *files)
    assert p.returncode == 2, p.stdout
    assert p.stderr.startswith("error: x509:") and message in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    # No account was registered: the same name can still be created.
    assert el(home, "account", "create", "--role", "notary", "--name", name).returncode == 0


def test_account_x509_issue_and_bind_for_an_existing_notary(home: Path, tmp_path: Path) -> None:
    assert el(home, "account", "create", "--role", "notary", "--name", "Later").returncode == 0
    p = el(home, "account", "x509", "Later", "--issue")
    assert p.returncode == 0, p.stderr
    facts = json.loads(p.stdout)
    assert "CN=Later" in facts["subject"] and ORIGIN in facts["issuer"]
    ca = _ca("Bound CA")
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "c.pem").write_bytes(_pem(_leaf(ca, key), ca[0]))
    (tmp_path / "k.pem").write_bytes(_key_pem(key))
    p = el(
        home, "account", "x509", "Later", "--cert", tmp_path / "c.pem", "--key", tmp_path / "k.pem"
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["issuer"] == "CN=Bound CA"
    bad = el(home, "account", "x509", "Later")
    assert bad.returncode == 2 and "either --cert and --key, or --issue" in bad.stderr
    nobody = el(home, "account", "x509", "Nobody", "--issue")
    assert nobody.returncode == 1 and "no active notary account" in nobody.stderr


def test_public_url_is_checked_and_used(home: Path) -> None:
    assert json.loads(el(home, "public-url").stdout)["default"] is True
    for bad in ("ftp://x", "https://x/", "https://x/c?q=1", "https://例子.cn", "javascript:x"):
        p = el(home, "public-url", bad)
        assert p.returncode == 2 and p.stderr.startswith("error: ") and "base URL" in p.stderr
    p = el(home, "public-url", "https://evidence.example.org/console")
    assert p.returncode == 0
    assert json.loads(p.stdout)["public_base_url"] == "https://evidence.example.org/console"
    assert el(home, "public-url", "--clear").returncode == 0


def test_certificate_pdf_errors_are_one_line(home: Path, tmp_path: Path) -> None:
    p = el(home, "certificate", "pdf", "ab" * 32, tmp_path / "x.pdf")
    assert p.returncode == 1 and p.stderr.strip() == f"error: certificate: {'ab' * 32} not found"
    assert not (tmp_path / "x.pdf").exists()
    help_text = el(home, "certificate", "pdf", "--help").stdout
    assert "Example: evidence-ledger certificate pdf" in help_text
    assert "Example:" in el(home, "account", "x509", "--help").stdout
    assert "Example:" in el(home, "public-url", "--help").stdout
    assert "exit status" in ev("pdf", "--help").stdout
