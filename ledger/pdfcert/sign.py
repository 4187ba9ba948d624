"""PAdES signatures (ETSI EN 319 142-1) on certificate PDFs, made with pyHanko.

The signature is one incremental update after the deterministic rendering:
an invisible signature field, a CMS signature (``ETSI.CAdES.detached``,
SHA-256) by the notary's X.509 key, and in the same revision a document
security store (DSS) with the chain and a fresh CRL of the local CA, so the
validation data is covered by the signature and nothing has to be appended
after it. With a TSA configured, the CMS signature carries an RFC 3161
signature timestamp (PAdES B-T); with the DSS, validation data is embedded
(B-LT) where it is available (the local CA's CRL; an external CA's
revocation data is not fetched: the service runs without network access
beyond its TSA).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ledger.errors import LedgerError
from ledger.pdfcert.x509 import X509Credential

__all__ = ["FIELD_NAME", "PdfSigningError", "sign_pdf", "tsa_timestamper"]

FIELD_NAME = "NotarySignature"
MAX_TSA_RESPONSE = 64 * 1024


class PdfSigningError(LedgerError):
    """The PDF could not be signed (the TSA failed, the key was refused...)."""


def _import_pyhanko() -> None:
    """Import pyHanko without the deprecation warnings it triggers in cryptography."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyhanko.sign.signers.pdf_cms  # noqa: F401


def tsa_timestamper(url: str, timeout: float = 10.0) -> Any:
    """pyHanko's TimeStamper over the ledger's RFC 3161 TSA (RFC 3161 §3.4, HTTP).

    pyHanko is imported here, when a PDF is signed, not when the CLI starts.
    """
    _import_pyhanko()
    from asn1crypto import tsp
    from pyhanko.sign.timestamps.api import TimeStamper

    class _TsaTimeStamper(TimeStamper):
        async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
            try:
                async with httpx.AsyncClient(timeout=timeout) as client:
                    r = await client.post(
                        url,
                        content=req.dump(),
                        headers={
                            "content-type": "application/timestamp-query",
                            "accept": "application/timestamp-reply",
                        },
                    )
            except httpx.HTTPError as e:
                raise PdfSigningError(f"pdf: TSA {url} unreachable ({e})") from e
            if r.status_code != 200 or len(r.content) > MAX_TSA_RESPONSE:
                raise PdfSigningError(f"pdf: TSA {url} answered {r.status_code}")
            try:
                return tsp.TimeStampResp.load(r.content)
            except ValueError as e:
                raise PdfSigningError(f"pdf: TSA {url} sent no timestamp response") from e

    return _TsaTimeStamper(include_nonce=True)  # type: ignore[no-untyped-call]


def _asn1_cert(cert: x509.Certificate) -> Any:
    from asn1crypto import x509 as asn1_x509

    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def sign_pdf(
    unsigned: bytes,
    credential: X509Credential,
    *,
    timestamper: Any = None,
    crls: Sequence[x509.CertificateRevocationList] = (),
    name: str | None = None,
) -> bytes:
    """Sign ``unsigned`` (a complete PDF) and return the signed file.

    ``timestamper`` comes from :func:`tsa_timestamper` (None: no signature timestamp).
    """
    _import_pyhanko()
    from asn1crypto import crl as asn1_crl
    from asn1crypto import keys as asn1_keys
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    chain = [_asn1_cert(c) for c in credential.chain]
    key = asn1_keys.PrivateKeyInfo.load(
        credential.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signer = signers.SimpleSigner(
        signing_cert=chain[0],
        signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs(chain),  # type: ignore[no-untyped-call]
    )
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        name=name,
        embed_validation_info=False,
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(unsigned), strict=True)
    asn1_crls = [
        asn1_crl.CertificateList.load(c.public_bytes(serialization.Encoding.DER)) for c in crls
    ]
    DocumentSecurityStore.supply_dss_in_writer(
        writer, None, certs=chain, crls=asn1_crls, embed_roots=True
    )
    from pyhanko.sign.signers import constants

    class _Pdf17Signer(signers.PdfSigner):
        def register_extensions(self, pdf_out: Any, *, md_algorithm: str) -> None:
            # PDF/A-3 is PDF 1.7. pyHanko would declare ISO/TS 32002 for an
            # ECDSA key, raising the catalog's /Version to 2.0; declare the
            # ETSI PAdES extension only (ECDSA in CMS is read by every PAdES
            # validator, pdfsig included).
            pdf_out.ensure_output_version(version=(1, 7))
            pdf_out.register_extension(constants.ESIC_EXTENSION_1)

    pdf_signer = _Pdf17Signer(
        meta,
        signer=signer,
        timestamper=timestamper,
        new_field_spec=fields.SigFieldSpec(FIELD_NAME, box=None),
    )
    try:
        out = pdf_signer.sign_pdf(writer, in_place=False)
    except PdfSigningError:
        raise
    except Exception as e:  # pyHanko raises many kinds; the caller needs one
        raise PdfSigningError(f"pdf: signing failed ({type(e).__name__}: {e})") from e
    return bytes(out.getvalue())
