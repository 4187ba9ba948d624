"""The CMS layer of RFC 3161 tokens: responses, normalisation, the ESS binding.

A TimeStampToken (RFC 3161 §2.4.2) is a CMS ContentInfo holding a
SignedData (RFC 5652 §5) whose encapsulated content is a TSTInfo. What real
TSAs send is often not DER, which strict parsers refuse:

- the ``certificates`` SET OF is written in insertion order (OpenSSL,
  DigiCert, GeoTrust, Sectigo), not in the ascending order DER requires;
- Bouncy Castle TSAs send BER: indefinite lengths, segmented OCTET STRINGs;
- some TSAs add attribute certificates (the [1]/[2] choices of
  CertificateChoices) beside the X.509 ones.

None of that is covered by the TSA's signature, which is over the DER of the
signed attributes, and those bind the TSTInfo through ``messageDigest``.
:func:`normalise_token` rewrites the rest in DER (sorted sets, definite
lengths, X.509 certificates only) and proves it touched nothing signed: the
signed attributes and the TSTInfo are byte-identical before and after. The
TSA's original bytes stay the evidence; the normalised form is only what
the signature check reads.

:func:`check_signing_certificate` checks the ESS signing-certificate
attribute (RFC 2634 §5.4 ESSCertID with SHA-1, RFC 5035 ESSCertIDv2 with its
hash algorithm): the certificate that signed must be the one the TSA named
under its signature, so a certificate cannot be swapped for another with the
same key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from verifier import der
from verifier.der import CONTEXT, INTEGER, OCTET_STRING, SEQUENCE, SET, UNIVERSAL, Element
from verifier.errors import MalformedError, VerificationError

__all__ = [
    "ESS_HASHES",
    "MAX_TOKENS",
    "MAX_TOKEN_SIZE",
    "NormalisedToken",
    "Response",
    "check_signing_certificate",
    "is_response",
    "normalise_token",
    "parse_response",
    "split_token_set",
]

MAX_TOKEN_SIZE = 64 * 1024

ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
ID_CT_TST_INFO = "1.2.840.113549.1.9.16.1.4"
ID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
ID_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"
ID_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
SHA1 = "1.3.14.3.2.26"
SHA256 = "2.16.840.1.101.3.4.2.1"

ESS_HASHES = {
    SHA1: "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    SHA256: "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
"""Hash algorithms an ESSCertIDv2 may name (ESSCertID is SHA-1 by definition)."""

_CHOICE_NAMES = {
    0: "extended certificate",
    1: "v1 attribute certificate",
    2: "v2 attribute certificate",
    3: "other certificate format",
}


@dataclass(frozen=True, slots=True)
class Response:
    """A TimeStampResp (RFC 3161 §2.4.2): status, texts and the token as sent."""

    status: int
    texts: tuple[str, ...]
    token: bytes | None
    """The TimeStampToken's bytes exactly as the TSA sent them (BER or DER)."""


@dataclass(frozen=True, slots=True)
class NormalisedToken:
    """A token rewritten in DER, and the signed parts proven unchanged."""

    der: bytes
    """The token in DER: sorted sets, definite lengths, X.509 certificates only."""
    tst_info: bytes
    """The encapsulated TSTInfo (DER), identical in the original and in ``der``."""
    signed_attributes: bytes
    """The SignerInfo's ``[0] IMPLICIT`` signed attributes, identical in both."""
    signer_certificate: bytes | None
    """The certificate named by the SignerInfo (issuer and serial), if embedded."""
    changes: tuple[str, ...]
    """What was rewritten; empty when the token was already DER."""


def _fail(what: str) -> MalformedError:
    return MalformedError(f"timestamp: {what}")


def _children(e: Element, what: str, low: int, high: int) -> tuple[Element, ...]:
    if not e.constructed or not low <= len(e.children) <= high:
        want = f"{low}" if low == high else f"{low} to {high}"
        raise _fail(f"{what}: expected {want} components")
    return e.children


def _expect(e: Element, cls: int, number: int, what: str, constructed: bool | None = None) -> None:
    if not e.is_(cls, number, constructed):
        raise _fail(f"{what}: unexpected tag")


def _oid(e: Element, what: str) -> str:
    return der.oid_text(e, f"timestamp: {what}")


def _integer(e: Element, what: str) -> int:
    v = e.value
    if (
        not e.is_(UNIVERSAL, INTEGER, False)
        or not v
        or (len(v) > 1 and (v[0], v[1] & 0x80) in ((0, 0), (0xFF, 0x80)))
    ):
        raise _fail(f"{what}: not a DER INTEGER")
    return int.from_bytes(v, "big", signed=True)


def is_response(data: bytes) -> bool:
    """True for a TimeStampResp, False for a bare TimeStampToken; else MalformedError.

    Decided on the outer shape only: a response starts with a PKIStatusInfo
    (a SEQUENCE starting with an INTEGER), a token (a ContentInfo) with an
    OBJECT IDENTIFIER followed by ``[0]``.
    """
    top = der.decode(data, "timestamp: input", ber=True)
    kids = top.children if top.is_(UNIVERSAL, SEQUENCE) else ()
    status = kids[0].children if kids and kids[0].is_(UNIVERSAL, SEQUENCE) else ()
    if status and status[0].is_(UNIVERSAL, INTEGER, False):
        return True
    if len(kids) == 2 and kids[0].is_(UNIVERSAL, der.OID) and kids[1].is_(CONTEXT, 0, True):
        return False
    raise _fail("input is neither a TimeStampToken nor a TimeStampResp")


MAX_TOKENS = 16
"""At most this many tokens in a token set (one per TSA)."""


def split_token_set(data: bytes) -> list[bytes]:
    """The tokens of a checkpoint's timestamp: one token, or a token set.

    A checkpoint stamped by one TSA carries that TimeStampToken; stamped by
    several, a DER ``SEQUENCE SIZE (1..16) OF TimeStampToken``, each token
    as its TSA sent it. They differ in the first component: an OBJECT
    IDENTIFIER (ContentInfo) or a SEQUENCE. Each token is returned as sent.
    """
    if len(data) > MAX_TOKENS * MAX_TOKEN_SIZE:
        raise _fail(f"token set has {len(data)} bytes, limit {MAX_TOKENS * MAX_TOKEN_SIZE}")
    top = der.decode(data, "timestamp: token set", ber=True)
    kids = top.children if top.is_(UNIVERSAL, SEQUENCE, True) else ()
    if kids and kids[0].is_(UNIVERSAL, der.OID):
        return [data]
    if not kids or not all(k.is_(UNIVERSAL, SEQUENCE, True) for k in kids):
        raise _fail("neither a TimeStampToken nor a set of them")
    if len(kids) > MAX_TOKENS:
        raise _fail(f"token set has {len(kids)} tokens, limit {MAX_TOKENS}")
    if der.tlv(0x30, b"".join(k.raw for k in kids)) != data:
        raise _fail("token set: its own length is not in DER form")
    return [k.raw for k in kids]


def parse_response(data: bytes) -> Response:
    """Parse a TimeStampResp in BER or DER; the token is returned as sent.

    ``TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken
    TimeStampToken OPTIONAL }`` and ``PKIStatusInfo ::= SEQUENCE { status
    PKIStatus, statusString PKIFreeText OPTIONAL, failInfo PKIFailureInfo
    OPTIONAL }`` (RFC 3161 §2.4.2, RFC 4210 §5.2.3).
    """
    if len(data) > MAX_TOKEN_SIZE:
        raise _fail(f"response has {len(data)} bytes, limit {MAX_TOKEN_SIZE}")
    top = der.decode(data, "timestamp: response", ber=True)
    _expect(top, UNIVERSAL, SEQUENCE, "response")
    parts = _children(top, "response", 1, 2)
    info = parts[0]
    _expect(info, UNIVERSAL, SEQUENCE, "response status")
    fields = _children(info, "response status", 1, 3)
    status = _integer(fields[0], "response status")
    texts: list[str] = []
    rest = list(fields[1:])
    if rest and rest[0].is_(UNIVERSAL, SEQUENCE):
        for t in rest.pop(0).children:
            if not t.is_(UNIVERSAL, 12, False):  # UTF8String
                raise _fail("response status text is not a UTF8String")
            texts.append(t.value.decode("utf-8", "replace")[:200])
    if rest and not (len(rest) == 1 and rest[0].is_(UNIVERSAL, 3, False)):  # failInfo
        raise _fail("response status has unexpected components")
    token = parts[1].raw if len(parts) == 2 else None
    if token is not None:
        _expect(parts[1], UNIVERSAL, SEQUENCE, "response token")
    return Response(status=status, texts=tuple(texts), token=token)


def normalise_token(token: bytes) -> NormalisedToken:
    """Rewrite a TimeStampToken in DER and prove that nothing signed changed.

    (1) decode it as BER within the size, depth and element bounds;
    (2) walk ContentInfo and SignedData (RFC 5652 §3, §5.1): signedData
    content, an encapsulated id-ct-TSTInfo, exactly one SignerInfo
    identified by issuer and serial number, with signed attributes;
    (3) rebuild it in DER: definite lengths, the encapsulated content as one
    primitive OCTET STRING, every SET OF of the SignedData sorted, only the
    X.509 choices of ``certificates`` kept; (4) decode the result as strict
    DER (unless it is the input itself); (5) require the signed attributes and the TSTInfo to be
    byte-identical to the ones sent, and the TSTInfo to be one DER element;
    (6) find the signer's certificate among those kept.
    """
    if len(token) > MAX_TOKEN_SIZE:
        raise _fail(f"token has {len(token)} bytes, limit {MAX_TOKEN_SIZE}")
    top = der.decode(token, "timestamp: token", ber=True)  # (1)
    sent = _Parts.of(top)  # (2)
    if not sent.signed_attributes.der_form:
        raise _fail("signed attributes are not DER-encoded as sent; refusing to re-encode them")
    changes: list[str] = []
    if not top.der_form:
        changes.append("BER lengths or segmented strings re-encoded in DER")
    rebuilt = _rebuild(sent, changes)  # (3)
    # (4) a token sent in DER comes out unchanged: nothing to read again
    after = sent if rebuilt == token else _Parts.of(der.decode(rebuilt, "timestamp: normalised"))
    if after.signed_attributes.raw != sent.signed_attributes.raw:  # (5)
        raise _fail("signed attributes are not DER-encoded as sent; refusing to re-encode them")
    if after.tst_info.value != sent.tst_info.value:
        raise _fail("the TSTInfo changed in normalisation")
    der.decode(sent.tst_info.value, "timestamp: TSTInfo")
    signer = _find_signer(after)  # (6)
    return NormalisedToken(
        der=rebuilt,
        tst_info=sent.tst_info.value,
        signed_attributes=sent.signed_attributes.raw,
        signer_certificate=signer,
        changes=tuple(changes),
    )


@dataclass(frozen=True, slots=True)
class _Parts:
    """The elements of a token that normalisation reads or rewrites."""

    content_type: Element
    signed_data: tuple[Element, ...]
    """SignedData's components in order."""
    certificates: Element | None
    crls: Element | None
    tst_info: Element
    signer_info: Element
    signer_fields: tuple[Element, ...]
    signed_attributes: Element
    sid: Element

    @classmethod
    def of(cls, top: Element) -> _Parts:
        _expect(top, UNIVERSAL, SEQUENCE, "token")
        ctype, wrapper = _children(top, "token", 2, 2)
        if _oid(ctype, "token content type") != ID_SIGNED_DATA:
            raise _fail("token is not a CMS SignedData")
        _expect(wrapper, CONTEXT, 0, "token content", True)
        (sd,) = _children(wrapper, "token content", 1, 1)
        _expect(sd, UNIVERSAL, SEQUENCE, "SignedData")
        fields = _children(sd, "SignedData", 4, 6)
        version, digests, encap = fields[:3]
        _integer(version, "SignedData version")
        _expect(digests, UNIVERSAL, SET, "SignedData digest algorithms")
        certs = crls = None
        rest = list(fields[3:])
        if rest and rest[0].is_(CONTEXT, 0, True):
            certs = rest.pop(0)
        if rest and rest[0].is_(CONTEXT, 1, True):
            crls = rest.pop(0)
        if len(rest) != 1 or not rest[0].is_(UNIVERSAL, SET, True):
            raise _fail("SignedData: expected signerInfos as its last component")
        tst = _tst_info(encap)
        infos = rest[0].children
        if len(infos) != 1:
            raise _fail(f"token has {len(infos)} signers, expected exactly one (RFC 3161 §2.4.2)")
        si = infos[0]
        _expect(si, UNIVERSAL, SEQUENCE, "SignerInfo")
        sf = _children(si, "SignerInfo", 5, 7)
        sid = sf[1]
        if not sid.is_(UNIVERSAL, SEQUENCE, True):
            raise _fail("SignerInfo names its certificate by key identifier; not supported")
        _children(sid, "SignerInfo issuerAndSerialNumber", 2, 2)
        signed = sf[3]
        if not signed.is_(CONTEXT, 0, True):
            raise _fail("SignerInfo has no signed attributes")
        return cls(ctype, fields, certs, crls, tst, si, sf, signed, sid)


def _tst_info(encap: Element) -> Element:
    _expect(encap, UNIVERSAL, SEQUENCE, "encapsulated content")
    etype, *content = _children(encap, "encapsulated content", 2, 2)
    if _oid(etype, "encapsulated content type") != ID_CT_TST_INFO:
        raise _fail("encapsulated content is not a TSTInfo")
    _expect(content[0], CONTEXT, 0, "encapsulated content", True)
    (octets,) = _children(content[0], "encapsulated content", 1, 1)
    _expect(octets, UNIVERSAL, OCTET_STRING, "encapsulated content")
    return octets


def _rebuild(p: _Parts, changes: list[str]) -> bytes:
    """The token of ``p`` in DER (see :func:`normalise_token` step (3))."""
    version, digests, encap = p.signed_data[:3]
    econtent = der.tlv(0xA0, der.tlv(0x04, p.tst_info.value))
    out = [
        der.encode(version),
        _sorted_set(digests, "digest algorithms", changes),
        der.tlv(0x30, der.encode(encap.children[0]) + econtent),
        _certificates(p.certificates, changes) if p.certificates else b"",
        _sorted_set(p.crls, "revocation information", changes) if p.crls else b"",
        der.tlv(0x31, _signer_info(p, changes)),
    ]
    signed_data = der.tlv(0x30, b"".join(out))
    return der.tlv(0x30, der.encode(p.content_type) + der.tlv(0xA0, signed_data))


def _sorted_set(e: Element, what: str, changes: list[str]) -> bytes:
    items = [der.encode(c) for c in e.children]
    if items != sorted(items):
        changes.append(f"{what} sorted into DER order")
    return der.encode_set(e.identifier, items)


def _certificates(e: Element, changes: list[str]) -> bytes:
    kept: list[bytes] = []
    for c in e.children:
        if c.is_(UNIVERSAL, SEQUENCE, True):
            kept.append(der.encode(c))
        elif c.cls == CONTEXT and c.number in _CHOICE_NAMES:
            changes.append(f"{_CHOICE_NAMES[c.number]} ([{c.number}]) dropped")
        else:
            raise _fail("certificates: an element that is no CertificateChoices")
    if kept != sorted(kept):
        changes.append("certificates sorted into DER order")
    return der.encode_set(0xA0, kept) if kept else b""


def _signer_info(p: _Parts, changes: list[str]) -> bytes:
    out = []
    for f in p.signer_fields:
        if f is p.signer_fields[-1] and f.is_(CONTEXT, 1, True):  # unsignedAttrs
            attrs = [_attribute(a, changes) for a in f.children]
            if attrs != sorted(attrs):
                changes.append("unsigned attributes sorted into DER order")
            out.append(der.encode_set(0xA1, attrs))
        elif f is p.signed_attributes:
            out.append(f.raw)  # covered by the signature: kept exactly as sent
        else:
            out.append(der.encode(f))
    return der.tlv(0x30, b"".join(out))


def _attribute(a: Element, changes: list[str]) -> bytes:
    _expect(a, UNIVERSAL, SEQUENCE, "unsigned attribute")
    atype, values = _children(a, "unsigned attribute", 2, 2)
    _expect(values, UNIVERSAL, SET, "unsigned attribute values")
    return der.tlv(0x30, der.encode(atype) + _sorted_set(values, "attribute values", changes))


def _tbs_issuer_serial(cert: Element) -> tuple[bytes, bytes]:
    """The DER issuer Name and serial number octets of an X.509 certificate."""
    _expect(cert, UNIVERSAL, SEQUENCE, "certificate")
    tbs = _children(cert, "certificate", 3, 3)[0]
    _expect(tbs, UNIVERSAL, SEQUENCE, "certificate body")
    fields = _children(tbs, "certificate body", 6, 10)
    if fields[0].is_(CONTEXT, 0, True):
        fields = fields[1:]
    serial, _, issuer = fields[:3]
    _integer(serial, "certificate serial number")
    _expect(issuer, UNIVERSAL, SEQUENCE, "certificate issuer")
    return issuer.raw, serial.value


def _find_signer(p: _Parts) -> bytes | None:
    issuer, serial = p.sid.children
    _integer(serial, "SignerInfo serial number")
    found = None
    for c in p.certificates.children if p.certificates else ():
        if _tbs_issuer_serial(c) == (issuer.raw, serial.value):
            if found is not None and found != c.raw:
                raise _fail("two different certificates match the signer's issuer and serial")
            found = c.raw
    return found


def _signed_attribute_values(signed_attributes: bytes) -> dict[str, tuple[Element, ...]]:
    """Signed attributes by type; each type at most once (RFC 5652 §5.3)."""
    attrs = der.decode(signed_attributes, "timestamp: signed attributes")
    out: dict[str, tuple[Element, ...]] = {}
    for a in attrs.children:
        _expect(a, UNIVERSAL, SEQUENCE, "signed attribute")
        atype, values = _children(a, "signed attribute", 2, 2)
        _expect(values, UNIVERSAL, SET, "signed attribute values")
        name = _oid(atype, "signed attribute type")
        if name in out:
            raise _fail(f"signed attribute {name} appears twice")
        out[name] = values.children
    return out


def check_signing_certificate(signed_attributes: bytes, certificate: bytes) -> None:
    """Check the signed attributes against ``certificate``, the signer's (DER).

    (1) the content-type attribute is id-ct-TSTInfo (RFC 5652 §11.1);
    (2) at least one of the ESS signing-certificate attributes is present
    (RFC 3161 §2.4.2; RFC 5816 allows version 2), each with one value;
    (3) in each, the first ESSCertID (SHA-1) or ESSCertIDv2 (its hash
    algorithm, SHA-256 by default) hashes to ``certificate``; (4) when it
    carries issuerSerial, the serial number and one directoryName equal the
    certificate's serial number and issuer.
    """
    attrs = _signed_attribute_values(signed_attributes)
    ctype = attrs.get(ID_CONTENT_TYPE, ())  # (1)
    if len(ctype) != 1 or _oid(ctype[0], "content-type attribute") != ID_CT_TST_INFO:
        raise VerificationError("timestamp: signed content-type attribute is not id-ct-TSTInfo")
    present = [
        (v2, attrs[oid])
        for v2, oid in ((False, ID_SIGNING_CERTIFICATE), (True, ID_SIGNING_CERTIFICATE_V2))
        if oid in attrs
    ]
    if not present:  # (2)
        raise VerificationError(
            "timestamp: no ESS signing-certificate attribute binds the TSA certificate"
        )
    cert = der.decode(certificate, "timestamp: TSA certificate")
    for v2, values in present:
        which = "signingCertificateV2" if v2 else "signingCertificate"
        if len(values) != 1:
            raise _fail(f"{which} has {len(values)} values, expected one")
        _expect(values[0], UNIVERSAL, SEQUENCE, which)
        ids = _children(values[0], which, 1, 2)[0]
        _expect(ids, UNIVERSAL, SEQUENCE, f"{which} certs")
        if not ids.children:
            raise _fail(f"{which} lists no certificate")
        _check_cert_id(ids.children[0], v2, which, cert)


def _check_cert_id(cid: Element, v2: bool, which: str, cert: Element) -> None:
    _expect(cid, UNIVERSAL, SEQUENCE, f"{which} ESSCertID")
    fields = list(_children(cid, f"{which} ESSCertID", 1, 3))
    alg = SHA1
    if v2:
        alg = SHA256
        if fields[0].is_(UNIVERSAL, SEQUENCE, True):
            alg_id = _children(fields.pop(0), f"{which} hash algorithm", 1, 2)
            alg = _oid(alg_id[0], f"{which} hash algorithm")
    if not fields:
        raise _fail(f"{which}: no certificate hash")
    cert_hash = fields.pop(0)
    _expect(cert_hash, UNIVERSAL, OCTET_STRING, f"{which} certificate hash", False)
    name = ESS_HASHES.get(alg)
    if name is None:
        raise VerificationError(f"timestamp: {which} uses unsupported hash algorithm {alg}")
    if hashlib.new(name, cert.raw).digest() != cert_hash.value:  # (3)
        raise VerificationError(
            f"timestamp: ESS {which} ({name}) names another certificate than the one that signed"
        )
    if fields:  # (4)
        issuer_serial = fields.pop(0)
        _expect(issuer_serial, UNIVERSAL, SEQUENCE, f"{which} issuerSerial")
        names, serial = _children(issuer_serial, f"{which} issuerSerial", 2, 2)
        _expect(names, UNIVERSAL, SEQUENCE, f"{which} issuer names")
        issuer, cert_serial = _tbs_issuer_serial(cert)
        directory = [
            n.children[0].raw for n in names.children if n.is_(CONTEXT, 4, True) and n.children
        ]
        _integer(serial, f"{which} serial number")
        if serial.value != cert_serial or issuer not in directory:
            raise VerificationError(
                f"timestamp: ESS {which} issuer and serial do not match the signing certificate"
            )
    if fields:
        raise _fail(f"{which}: unexpected components")
