"""Notaries' X.509 credentials for PDF signatures, and the ledger's local notary CA.

The JSON certificate is signed with the notary's Ed25519 key; its PDF
rendering carries a PAdES signature, which PDF readers and courts check
against X.509 certificate chains. A notary office can bind a certificate
and key issued by a real CA to its notary account; otherwise the ledger
issues one from its own local CA, created at ``init`` (or on first use in an
older home). The CA roots that sign notary certificates are listed in the
trust file (``notary_ca_roots``), so a court pins them like every other key.

Files in ``HOME/keys`` (private keys mode 0600, never overwritten in place)::

    x509-ca.key, x509-ca.pem               the local notary CA (ECDSA P-256, 20 years)
    x509-notary-<account id>.key           a notary's PDF-signing key
    x509-notary-<account id>.pem           its certificate, then its chain

A notary certificate must allow digitalSignature or nonRepudiation, use
ECDSA P-256 or RSA (at least 2048 bits), and match its key.
"""

from __future__ import annotations

import itertools
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ledger.errors import ConfigError, InvalidInput
from ledger.files import private_dir

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "X509Credential",
    "bind_notary_certificate",
    "ensure_local_ca",
    "issue_notary_certificate",
    "load_notary_credential",
    "local_crl",
    "notary_ca_roots",
    "notary_credential_paths",
    "parse_credential",
]

CA_KEY = "x509-ca.key"
CA_CERT = "x509-ca.pem"
CA_YEARS = 20
NOTARY_DAYS = 2 * 365
CRL_DAYS = 7
MAX_PEM = 1 << 20

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True, slots=True)
class X509Credential:
    """A PDF-signing key and its certificate chain (leaf first)."""

    chain: tuple[x509.Certificate, ...]
    key: SigningKey = field(repr=False)

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]


def _keys(home: Path) -> Path:
    return home / "keys"


def notary_credential_paths(home: Path, account_id: str) -> tuple[Path, Path]:
    """(certificate chain PEM, private key PEM) of a notary's X.509 credential."""
    keys = _keys(home)
    return keys / f"x509-notary-{account_id}.pem", keys / f"x509-notary-{account_id}.key"


def _write_private(path: Path, key: SigningKey) -> None:
    """Write a PKCS#8 key with mode 0600 atomically (temporary file, fsync, rename)."""
    private_dir(path.parent)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_key(path: Path) -> SigningKey:
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"key: cannot read {path} ({e.strerror})") from e
    if st.st_mode & 0o077:
        raise ConfigError(f"key: {path} is readable by others (mode {st.st_mode & 0o777:o})")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"key: {path} is not a valid private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfigError(f"key: {path} is not an ECDSA or RSA key")
    return key


def _read_chain(path: Path) -> tuple[x509.Certificate, ...]:
    try:
        return tuple(x509.load_pem_x509_certificates(path.read_bytes()))
    except OSError as e:
        raise ConfigError(f"x509: cannot read {path} ({e.strerror})") from e
    except ValueError as e:
        raise ConfigError(f"x509: {path} holds no PEM certificate") from e


def _spki(key: object) -> bytes:
    """A public key's SubjectPublicKeyInfo DER (how two keys are compared)."""
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return b""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pem(certs: tuple[x509.Certificate, ...] | list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def ensure_local_ca(home: Path, origin: str) -> tuple[x509.Certificate, SigningKey]:
    """The local notary CA of this home, created the first time (key 0600)."""
    key_path, cert_path = _keys(home) / CA_KEY, _keys(home) / CA_CERT
    if key_path.exists() and cert_path.exists():
        key = _read_key(key_path)
        cert = _read_chain(cert_path)[0]
        if _spki(cert.public_key()) != _spki(key.public_key()):
            raise ConfigError(f"x509: {cert_path} is not the certificate of {key_path}")
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC).replace(microsecond=0)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{origin} notary CA"[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evidence-ledger"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, key)
    _write_public(cert_path, _pem([cert]))
    return cert, key


def issue_notary_certificate(home: Path, origin: str, account_id: str, name: str) -> X509Credential:
    """Issue (or re-issue) a notary's PDF-signing certificate from the local CA."""
    ca_cert, ca_key = ensure_local_ca(home, origin)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC).replace(microsecond=0)
    not_after = min(now + timedelta(days=NOTARY_DAYS), ca_cert.not_valid_after_utc)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, origin[:64]),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, account_id[:64]),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    credential = X509Credential(chain=(cert, ca_cert), key=key)
    _store(home, account_id, credential)
    return credential


def _store(home: Path, account_id: str, credential: X509Credential) -> None:
    cert_path, key_path = notary_credential_paths(home, account_id)
    _write_private(key_path, credential.key)
    _write_public(cert_path, _pem(list(credential.chain)))


def check_credential(chain: tuple[x509.Certificate, ...], key: SigningKey, where: str) -> None:
    """Refuse a credential that cannot make a PAdES signature a court can check."""
    leaf = chain[0]
    pub = leaf.public_key()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise InvalidInput(f"{where}: ECDSA keys must use P-256, not {key.curve.name}")
    elif key.key_size < 2048:
        raise InvalidInput(f"{where}: RSA keys must have at least 2048 bits")
    if _spki(pub) != _spki(key.public_key()):
        raise InvalidInput(f"{where}: the private key is not the certificate's key")
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise InvalidInput(
            f"{where}: the certificate has no key usage (needs digitalSignature or nonRepudiation)"
        ) from None
    if not (usage.digital_signature or usage.content_commitment):
        raise InvalidInput(
            f"{where}: the certificate allows neither digitalSignature nor nonRepudiation"
        )
    now = datetime.now(UTC)
    if not leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
        raise InvalidInput(f"{where}: the certificate is not valid now")
    for child, parent in itertools.pairwise(chain):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise InvalidInput(f"{where}: the chain is out of order or broken ({e})") from e


def parse_credential(cert_pem: bytes, key_pem: bytes) -> X509Credential:
    """An operator-supplied certificate (then its chain) and key, checked."""
    where = "x509"
    try:
        chain = tuple(x509.load_pem_x509_certificates(cert_pem))
    except ValueError as e:
        raise InvalidInput(f"{where}: the certificate file holds no PEM certificate") from e
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"{where}: the key file is not an unencrypted PEM private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InvalidInput(f"{where}: the key must be ECDSA P-256 or RSA")
    check_credential(chain, key, where)
    return X509Credential(chain=chain, key=key)


def bind_notary_certificate(
    home: Path, account_id: str, cert_pem: bytes, key_pem: bytes
) -> X509Credential:
    """Bind an operator-supplied certificate (then its chain) and key to a notary."""
    credential = parse_credential(cert_pem, key_pem)
    _store(home, account_id, credential)
    return credential


def load_notary_credential(home: Path, account_id: str) -> X509Credential | None:
    """The notary's stored credential, or None when it has none."""
    cert_path, key_path = notary_credential_paths(home, account_id)
    if not cert_path.exists() and not key_path.exists():
        return None
    chain = _read_chain(cert_path)
    key = _read_key(key_path)
    if _spki(chain[0].public_key()) != _spki(key.public_key()):
        raise ConfigError(f"x509: {cert_path} is not the certificate of {key_path}")
    return X509Credential(chain=chain, key=key)


def notary_ca_roots(home: Path, origin: str) -> list[x509.Certificate]:
    """The CA roots of this home's notary certificates: the local CA, then the
    self-signed tops of bound chains (by file name order)."""
    ca_cert, _ = ensure_local_ca(home, origin)
    roots = [ca_cert]
    seen = {ca_cert.fingerprint(hashes.SHA256())}
    for path in sorted(_keys(home).glob("x509-notary-*.pem")):
        top = _read_chain(path)[-1]
        if top.issuer == top.subject and top.fingerprint(hashes.SHA256()) not in seen:
            seen.add(top.fingerprint(hashes.SHA256()))
            roots.append(top)
    return roots


def local_crl(
    home: Path, origin: str, revoked: list[x509.Certificate]
) -> x509.CertificateRevocationList:
    """A fresh CRL of the local CA listing ``revoked`` (valid for a week), so the
    signature carries revocation data for its chain (PAdES B-LT)."""
    ca_cert, ca_key = ensure_local_ca(home, origin)
    now = datetime.now(UTC).replace(microsecond=0)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - timedelta(minutes=5))
        .next_update(now + timedelta(days=CRL_DAYS))
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    for cert in revoked:
        if cert.issuer == ca_cert.subject:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(cert.serial_number)
                .revocation_date(now - timedelta(minutes=5))
                .build()
            )
    return builder.sign(ca_key, hashes.SHA256())
