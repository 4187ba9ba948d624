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

import httpx
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ledger.errors import LedgerError
from ledger.pdfcert.x509 import X509Credential

__all__ = ["FIELD_NAME", "PdfSigningError", "TsaTimeStamper", "sign_pdf"]

FIELD_NAME = "NotarySignature"
MAX_TSA_RESPONSE = 64 * 1024


class PdfSigningError(LedgerError):
    """The PDF could not be signed (the TSA failed, the key was refused...)."""


def _timestamper_base() -> type:
    from pyhanko.sign.timestamps.api import TimeStamper

    return TimeStamper


class TsaTimeStamper(_timestamper_base()):  # type: ignore[misc]
    """pyHanko's TimeStamper over the ledger's RFC 3161 TSA (RFC 3161 §3.4, HTTP)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        super().__init__(include_nonce=True)
        self.url = url
        self.timeout = timeout

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                r = await client.post(
                    self.url,
                    content=req.dump(),
                    headers={
                        "content-type": "application/timestamp-query",
                        "accept": "application/timestamp-reply",
                    },
                )
        except httpx.HTTPError as e:
            raise PdfSigningError(f"pdf: TSA {self.url} unreachable ({e})") from e
        if r.status_code != 200 or len(r.content) > MAX_TSA_RESPONSE:
            raise PdfSigningError(f"pdf: TSA {self.url} answered {r.status_code}")
        try:
            return tsp.TimeStampResp.load(r.content)
        except ValueError as e:
            raise PdfSigningError(f"pdf: TSA {self.url} sent no timestamp response") from e


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def sign_pdf(
    unsigned: bytes,
    credential: X509Credential,
    *,
    timestamper: TsaTimeStamper | None = None,
    crls: Sequence[x509.CertificateRevocationList] = (),
    name: str | None = None,
) -> bytes:
    """Sign ``unsigned`` (a complete PDF) and return the signed file."""
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
    pdf_signer = signers.PdfSigner(
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
