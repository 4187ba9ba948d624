"""PDF certificates as a service: render, sign and self-check; notaries' X.509 credentials.

The CLI (``certificate pdf``, ``account x509``), the HTTP route and the
evidence package call these functions; none of them decides anything itself.

:func:`certificate_pdf` (1) reads the certificate's exact bytes from the log;
(2) for a web capture, reads the deposited manifest and the viewport
screenshot it lists from the blob store; (3) renders the deterministic
PDF/A-3b page; (4) finds the issuing notary's X.509 credential (issuing one
from the local CA for an active notary without one, or whose local
certificate expires within a day); (5) signs it (PAdES, with a signature
timestamp from the ledger's TSA when one is configured, and the local CA's
chain and a fresh CRL in the signed revision); (6) checks the result with the
verifier's own reading of the attachments and the page, so what is handed
out is what ``evidence-verify pdf`` will accept.

A certificate stays renderable after it is revoked (the record may be needed);
the verifier reports the revocation when given a log view.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from ledger.accounts import find_account
from ledger.certificates import get_certificate
from ledger.core import Ledger
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.pdfcert.render import render_pdf
from ledger.pdfcert.sign import sign_pdf, tsa_timestamper
from ledger.pdfcert.x509 import (
    X509Credential,
    bind_notary_certificate,
    issue_notary_certificate,
    load_notary_credential,
    local_crl,
    notary_ca_roots,
)
from ledger.storage.queries import AccountRecord, ReadModel
from verifier.capture import MAX_MANIFEST_SIZE, CaptureManifest
from verifier.certificate import Certificate
from verifier.errors import Error as VerifierError
from verifier.pdflayout import SCREENSHOT_ARTEFACT

__all__ = [
    "MAX_SCREENSHOT",
    "bind_x509",
    "certificate_pdf",
    "issue_x509",
    "notary_ca_roots_pem",
    "notary_credential",
    "x509_summary",
]

MAX_SCREENSHOT = 16 << 20
_RENEW = timedelta(days=1)


def notary_ca_roots_pem(ledger: Ledger) -> list[str]:
    """The trust file's ``notary_ca_roots``: PEM texts, the local CA first."""
    roots = notary_ca_roots(ledger.config.home, ledger.config.origin)
    return [c.public_bytes(Encoding.PEM).decode("ascii") for c in roots]


def _account(ledger: Ledger, account_id: str) -> AccountRecord:
    account = ReadModel(ledger.store).account(account_id)
    if account is None:
        raise NotFound(f"account: {account_id} not found")
    return account


def _local(ledger: Ledger, credential: X509Credential) -> bool:
    roots = notary_ca_roots(ledger.config.home, ledger.config.origin)
    return credential.chain[-1] == roots[0]


def notary_credential(ledger: Ledger, account_id: str) -> X509Credential:
    """The PDF-signing credential of a notary account (see the module docstring, (4))."""
    account = _account(ledger, account_id)
    if account.role != "notary":
        raise InvalidInput(f"account: {account.name!r} is not a notary")
    credential = load_notary_credential(ledger.config.home, account_id)
    active = account.revoked_index is None
    if credential is not None:
        expires = credential.certificate.not_valid_after_utc
        if not (active and _local(ledger, credential) and expires - _RENEW < datetime.now(UTC)):
            return credential
    if not active:
        raise InvalidInput(
            f"pdf: notary {account.name!r} was revoked and has no X.509 certificate to sign with"
        )
    return issue_notary_certificate(
        ledger.config.home, ledger.config.origin, account_id, account.name
    )


def _revoked_local_certificates(ledger: Ledger) -> list[Any]:
    out = []
    revoked = [
        a
        for a in ReadModel(ledger.store).accounts()
        if a.role == "notary" and a.revoked_index is not None
    ]
    for a in revoked:
        cred = load_notary_credential(ledger.config.home, a.account_id)
        if cred is not None:
            out.append(cred.certificate)
    return out


def _capture_files(ledger: Ledger, cert: Certificate) -> tuple[bytes | None, bytes | None]:
    if cert.evidence.kind != "capture":
        return None, None
    with ledger.blobs.open(cert.evidence.sha256) as f:
        manifest = f.read(MAX_MANIFEST_SIZE + 1)
    try:
        parsed = CaptureManifest.from_json(manifest)
    except VerifierError:
        return None, None
    shots = [a for a in parsed.artefacts if a.name == SCREENSHOT_ARTEFACT]
    if not shots or shots[0].size > MAX_SCREENSHOT:
        return manifest, None
    with ledger.blobs.open(shots[0].sha256) as f:
        return manifest, f.read(MAX_SCREENSHOT + 1)


def certificate_pdf(ledger: Ledger, certificate_id: str) -> bytes:
    """The signed PDF of a certificate (steps in the module docstring)."""
    data = get_certificate(ledger, certificate_id)  # (1)
    cert = Certificate.from_json(data)
    manifest, screenshot = _capture_files(ledger, cert)  # (2)
    try:
        unsigned = render_pdf(  # (3)
            data, ledger.config.base_url, manifest=manifest, screenshot=screenshot
        )
    except VerifierError as e:
        raise LedgerError(f"pdf: {e}") from e
    credential = notary_credential(ledger, cert.issuer_account_id)  # (4)
    crl = local_crl(ledger.config.home, ledger.config.origin, _revoked_local_certificates(ledger))
    tsa = ledger.config.tsa
    signed = sign_pdf(  # (5)
        unsigned,
        credential,
        timestamper=tsa_timestamper(tsa.url) if tsa is not None else None,
        crls=[crl] if _local(ledger, credential) else [],
        name=cert.issuer_name,
    )
    _self_check(signed)  # (6)
    return signed


def _self_check(signed: bytes) -> None:
    from verifier.pdf import check_rendering

    problems = check_rendering(signed)
    if problems:
        raise LedgerError(f"pdf: self-check failed: {problems}")


def issue_x509(ledger: Ledger, ident: str) -> X509Credential:
    """Issue a new certificate from the local CA for an active notary."""
    account = find_account(ledger, ident, "notary")
    return issue_notary_certificate(
        ledger.config.home, ledger.config.origin, account.account_id, account.name
    )


def bind_x509(ledger: Ledger, ident: str, cert_pem: bytes, key_pem: bytes) -> X509Credential:
    """Bind an operator's certificate (and chain) and key to an active notary."""
    account = find_account(ledger, ident, "notary")
    return bind_notary_certificate(ledger.config.home, account.account_id, cert_pem, key_pem)


def x509_summary(credential: X509Credential) -> dict[str, Any]:
    """Public facts of a credential (never the key)."""
    from cryptography.hazmat.primitives import hashes

    leaf = credential.certificate
    return {
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "not_before": leaf.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sha256": leaf.fingerprint(hashes.SHA256()).hex(),
        "chain": len(credential.chain),
    }
