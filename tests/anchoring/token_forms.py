"""Forms of RFC 3161 tokens that real TSAs send, built from OpenSSL's tokens for tests.

- :func:`ber_token` / :func:`ber_response`: the same token in BER as Bouncy
  Castle TSAs write it: indefinite lengths, the TSTInfo in a segmented
  OCTET STRING; the signed attributes and the certificates stay DER (they
  are signed).
- :func:`with_certificate_choice`: a non-X.509 CertificateChoices element
  (e.g. an attribute certificate) added to the certificate set, after the
  others, as Microsoft's TSA does.
- :func:`attribute_certificate`: an RFC 5755 v2 attribute certificate whose
  holder is a given certificate, signed by a CA key.
- :func:`resign`: the token with another certificate set, signer and ESS
  signing-certificate attribute, signed again with a given key: tokens that
  ``openssl ts -reply`` will not make (an ESS attribute naming another
  certificate, a TSA certificate without the critical EKU).

Every token built here is checked by the tests with ``openssl ts -verify``
where OpenSSL can read it, so these helpers are not the only judge of their
own output.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from verifier import der
from verifier.der import Element

EOC = b"\x00\x00"
ID_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"
ID_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
SHA256_ALG = der.tlv(0x30, der.encode_oid("2.16.840.1.101.3.4.2.1"))
ECDSA_SHA256 = der.tlv(0x30, der.encode_oid("1.2.840.10045.4.3.2"))


def _signed_data(token: bytes) -> Element:
    return der.decode(token, "test token", ber=True).children[1].children[0]


def _indefinite(e: Element, keep: set[bytes], tst: bytes) -> bytes:
    if e.raw in keep or (not e.constructed and not (e.number == 4 and e.value == tst)):
        return der.encode(e)
    if not e.constructed:  # the TSTInfo: a segmented OCTET STRING
        half = len(tst) // 2
        return b"\x24\x80" + der.tlv(0x04, tst[:half]) + der.tlv(0x04, tst[half:]) + EOC
    return e.identifier + b"\x80" + b"".join(_indefinite(c, keep, tst) for c in e.children) + EOC


def ber_token(token: bytes) -> bytes:
    """``token`` with indefinite lengths and a segmented TSTInfo (signed parts kept)."""
    top = der.decode(token, "test token", ber=True)
    sd = top.children[1].children[0]
    tst = sd.children[2].children[1].children[0].value
    keep = {si.children[3].raw for si in sd.children[-1].children}
    for f in sd.children[3:-1]:
        if f.is_(der.CONTEXT, 0, True):
            keep |= {c.raw for c in f.children}
    return _indefinite(top, keep, tst)


def ber_response(response: bytes) -> bytes:
    """A granted TimeStampResp re-encoded in BER around :func:`ber_token`."""
    top = der.decode(response, "test response", ber=True)
    status, token = top.children
    inner = der.encode(status) + ber_token(token.raw)
    return b"\x30\x80" + inner + EOC


def granted_response(token: bytes) -> bytes:
    """``token`` in a TimeStampResp with status granted (0)."""
    return der.tlv(0x30, bytes.fromhex("3003020100") + token)


def certificates(token: bytes) -> list[bytes]:
    """The elements of the token's certificate set, in the order sent."""
    for f in _signed_data(token).children[3:-1]:
        if f.is_(der.CONTEXT, 0, True):
            return [c.raw for c in f.children]
    return []


def _with_fields(token: bytes, fields: list[bytes]) -> bytes:
    top = der.decode(token, "test token", ber=True)
    sd = der.tlv(0x30, b"".join(fields))
    return der.tlv(0x30, der.encode(top.children[0]) + der.tlv(0xA0, sd))


def with_certificate_choice(token: bytes, choice: bytes) -> bytes:
    """``token`` with ``choice`` (a full CertificateChoices encoding) appended to its set."""
    sd = _signed_data(token)
    fields = [der.encode(f) for f in sd.children]
    for i, f in enumerate(sd.children):
        if f.is_(der.CONTEXT, 0, True):
            fields[i] = der.tlv(0xA0, b"".join(c.raw for c in f.children) + choice)
    return _with_fields(token, fields)


def _tbs(cert: bytes) -> tuple[bytes, bytes]:
    """(issuer Name, serial INTEGER) encodings of a DER certificate."""
    tbs = der.decode(cert, "test certificate").children[0].children
    if tbs[0].is_(der.CONTEXT, 0, True):
        tbs = tbs[1:]
    return tbs[2].raw, tbs[0].raw


def _gtime(t: datetime) -> bytes:
    return der.tlv(0x18, t.strftime("%Y%m%d%H%M%SZ").encode())


def _sign(key_pem: Path, data: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem.read_bytes(), None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def attribute_certificate(holder_cert: bytes, issuer_cert: bytes, issuer_key: Path) -> bytes:
    """An RFC 5755 AttributeCertificate (v2) for the holder, signed by the issuer's key.

    Holder by baseCertificateID (the holder's issuer and serial), issuer by
    v2Form name, one role attribute, valid for a year; ECDSA with SHA-256.
    """
    h_issuer, h_serial = _tbs(holder_cert)
    subject = der.decode(issuer_cert, "test certificate").children[0].children
    subject_name = subject[5 if subject[0].is_(der.CONTEXT, 0, True) else 4].raw
    now = datetime.now(UTC).replace(microsecond=0)
    role = der.tlv(  # id-at-role { roleName [1] uniformResourceIdentifier }
        0x30,
        der.encode_oid("2.5.4.72")
        + der.tlv(0x31, der.tlv(0x30, der.tlv(0xA1, der.tlv(0x86, b"urn:test:tsa")))),
    )
    info = der.tlv(
        0x30,
        der.tlv(0x02, b"\x01")  # v2
        + der.tlv(0x30, der.tlv(0xA0, der.tlv(0x30, der.tlv(0xA4, h_issuer)) + h_serial))
        + der.tlv(0xA0, der.tlv(0x30, der.tlv(0xA4, subject_name)))
        + ECDSA_SHA256
        + der.tlv(0x02, b"\x2a")
        + der.tlv(0x30, _gtime(now) + _gtime(now + timedelta(days=365)))
        + der.tlv(0x30, role),
    )
    sig = _sign(issuer_key, info)
    return der.tlv(0x30, info + ECDSA_SHA256 + der.tlv(0x03, b"\x00" + sig))


def ess_v2(cert: bytes, *, issuer_serial: tuple[bytes, bytes] | None = None) -> bytes:
    """A signingCertificateV2 attribute naming ``cert`` by SHA-256 (default algorithm)."""
    cid = der.tlv(0x04, hashlib.sha256(cert).digest())
    if issuer_serial is not None:
        issuer, serial = issuer_serial
        cid += der.tlv(0x30, der.tlv(0x30, der.tlv(0xA4, issuer)) + serial)
    value = der.tlv(0x30, der.tlv(0x30, der.tlv(0x30, cid)))
    return der.tlv(0x30, der.encode_oid(ID_SIGNING_CERTIFICATE_V2) + der.tlv(0x31, value))


def resign(
    token: bytes,
    key: Path,
    cert: bytes,
    *,
    chain: list[bytes] | None = None,
    ess: bytes | None = None,
) -> bytes:
    """``token`` signed again by ``key`` as ``cert``, with ``ess`` as the ESS attribute.

    The certificate set becomes ``cert`` then ``chain``; the SignerInfo names
    ``cert``; both ESS signing-certificate attributes are replaced by ``ess``
    (default: :func:`ess_v2` of ``cert``); the TSTInfo and the other signed
    attributes are kept. The signature is ECDSA or RSA with SHA-256 as the
    key dictates, its algorithm identifier kept from the token.
    """
    sd = _signed_data(token)
    si = sd.children[-1].children[0].children
    attrs = [
        a.raw
        for a in si[3].children
        if der.oid_text(a.children[0], "attr")
        not in (ID_SIGNING_CERTIFICATE, ID_SIGNING_CERTIFICATE_V2)
    ]
    attrs.append(ess if ess is not None else ess_v2(cert))
    signed_set = der.encode_set(0x31, attrs)
    signature = _sign(key, signed_set)
    issuer, serial = _tbs(cert)
    signer = der.tlv(
        0x30,
        si[0].raw
        + der.tlv(0x30, issuer + serial)
        + si[2].raw
        + b"\xa0"
        + signed_set[1:]
        + si[4].raw
        + der.tlv(0x04, signature),
    )
    fields = [sd.children[0].raw, sd.children[1].raw, sd.children[2].raw]
    fields.append(der.tlv(0xA0, b"".join([cert, *(chain or [])])))
    fields.append(der.tlv(0x31, signer))
    return _with_fields(token, fields)


def flip_signature_byte(token: bytes) -> bytes:
    """``token`` with one byte of its SignerInfo's signature value changed."""
    sig = _signed_data(token).children[-1].children[0].children[5].value
    at = token.index(sig) + len(sig) // 2
    return token[:at] + bytes([token[at] ^ 0x01]) + token[at + 1 :]
