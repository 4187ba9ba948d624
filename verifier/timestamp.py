"""RFC 3161 time-stamp tokens over checkpoints: parsing and verification.

A checkpoint's token is a TimeStampToken (RFC 3161 §2.4.2: a CMS SignedData
whose content is a TSTInfo) whose message imprint is SHA-256 of the checkpoint
body, the text the log signs. It proves the checkpoint existed at the token's
``genTime``.

The cryptography (CMS signature, certificate chain, validity at a given time,
ASN.1 decoding) is done by ``rfc3161-client`` (Trail of Bits), a maintained
library that verifies the chain at the token's ``genTime`` rather than at the
current time, which is exactly what a token must survive: being checked years
after the TSA certificate expired. Hand-written ASN.1 here is limited to
checking that a token is one DER SEQUENCE and wrapping it in a granted
TimeStampResp, the only form that library parses; everything inside the token
is decoded by the library.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import rfc3161_client
from cryptography import x509

from verifier.errors import MalformedError, VerificationError

__all__ = [
    "TimestampInfo",
    "load_roots",
    "message_digest",
    "response_token",
    "verify_timestamp",
]

SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
_GRANTED = bytes.fromhex("3003020100")  # PKIStatusInfo { status granted(0) }
MAX_TOKEN_SIZE = 64 * 1024
_VERIFY_ERROR = re.compile(r'Verify error: ([^"]+)"')


@dataclass(frozen=True, slots=True)
class TimestampInfo:
    """What a verified token says: when, by whom, under which policy."""

    gen_time: datetime
    serial_number: int
    policy: str
    nonce: int | None
    tsa: str
    """Subject of the TSA certificate that signed the token (RFC 4514)."""


def message_digest(message: bytes) -> bytes:
    """The message imprint the ledger requests: SHA-256 of the checkpoint body."""
    return hashlib.sha256(message).digest()


def load_roots(pems: Iterable[str | bytes]) -> list[x509.Certificate]:
    """Parse trusted TSA root certificates from PEM texts (one or more per text)."""
    roots: list[x509.Certificate] = []
    for i, pem in enumerate(pems):
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        try:
            roots.extend(x509.load_pem_x509_certificates(data))
        except (ValueError, UnicodeEncodeError) as e:
            raise MalformedError(f"timestamp: TSA root {i} is not a PEM certificate") from e
    if not roots:
        raise MalformedError("timestamp: no TSA root certificates")
    return roots


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _check_single_sequence(data: bytes, what: str) -> None:
    """Require ``data`` to be exactly one DER SEQUENCE (definite length, no trailer)."""
    if len(data) < 2 or data[0] != 0x30:
        raise MalformedError(f"{what}: not a DER SEQUENCE")
    first = data[1]
    if first < 0x80:
        header, length = 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            raise MalformedError(f"{what}: bad DER length")
        length = int.from_bytes(data[2 : 2 + count], "big")
        header = 2 + count
        if length < 0x80 or data[2] == 0:
            raise MalformedError(f"{what}: non-minimal DER length")
    if header + length != len(data):
        raise MalformedError(f"{what}: length says {header + length} bytes, got {len(data)}")


def _parse(token: bytes) -> rfc3161_client.TimeStampResponse:
    """Decode ``token`` with rfc3161-client, as a granted TimeStampResp."""
    if len(token) > MAX_TOKEN_SIZE:
        raise MalformedError(f"timestamp: token has {len(token)} bytes, limit {MAX_TOKEN_SIZE}")
    _check_single_sequence(token, "timestamp: token")
    inner = _GRANTED + token
    try:
        resp = rfc3161_client.decode_timestamp_response(b"\x30" + _der_length(len(inner)) + inner)
        resp.tst_info.gen_time  # noqa: B018 - decode lazily parsed parts now
        resp.signed_data.signer_infos  # noqa: B018
    except ValueError as e:
        raise MalformedError(f"timestamp: token does not parse ({e})") from e
    return resp


def response_token(response: bytes) -> bytes:
    """The token inside a TimeStampResp (RFC 3161 §2.4.2) whose status is granted.

    A TSA's answer is refused if it is not a response, reports any status
    other than granted (0), or carries no token.
    """
    if len(response) > MAX_TOKEN_SIZE:
        raise MalformedError(f"timestamp: response has {len(response)} bytes")
    _check_single_sequence(response, "timestamp: response")
    try:
        resp = rfc3161_client.decode_timestamp_response(response)
        status = resp.status
        texts = list(resp.status_string)
    except ValueError as e:
        raise MalformedError(f"timestamp: response does not parse ({e})") from e
    if status != 0:
        detail = f" ({'; '.join(texts)})" if texts else ""
        raise VerificationError(f"timestamp: TSA answered with status {status}{detail}")
    try:
        token = bytes(resp.time_stamp_token())
    except ValueError as e:
        raise MalformedError(f"timestamp: response carries no token ({e})") from e
    _check_single_sequence(token, "timestamp: token")
    return token


def verify_timestamp(
    token: bytes,
    message: bytes,
    roots: Sequence[x509.Certificate],
    *,
    nonce: int | None = None,
) -> TimestampInfo:
    """Verify an RFC 3161 token over ``message`` (a checkpoint body); return its facts.

    (1) refuse an empty set of roots (fail closed); (2) parse the token;
    (3) require a SHA-256 message imprint; (4) with rfc3161-client: the CMS
    signature, the TSA certificate's chain to one of ``roots`` with every
    certificate valid at the token's genTime (not now), a critical
    id-kp-timeStamping extended key usage, the imprint equal to SHA-256 of
    ``message``, and ``nonce`` when given; (5) check again, here, that the
    signing certificate was valid at genTime.
    """
    if not roots:  # (1)
        raise VerificationError("timestamp: no trusted TSA roots given")
    resp = _parse(token)  # (2)
    info = resp.tst_info
    if info.message_imprint.hash_algorithm != SHA256_OID:  # (3)
        raise VerificationError(
            f"timestamp: imprint uses {info.message_imprint.hash_algorithm.dotted_string}, "
            "expected SHA-256"
        )
    builder = rfc3161_client.VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    if nonce is not None:
        builder = builder.nonce(nonce)
    try:  # (4)
        builder.build().verify(resp, message_digest(message))
    except rfc3161_client.VerificationError as e:
        text = str(e)
        if "Mismatch between messages" in text:
            raise VerificationError(
                "timestamp: token is over another message (imprint does not match)"
            ) from e
        if "Nonce mismatch" in text:
            raise VerificationError("timestamp: token nonce does not match the request") from e
        why = _VERIFY_ERROR.search(text)
        if why:
            raise VerificationError(
                f"timestamp: TSA certificate chain does not verify at genTime ({why[1]})"
            ) from e
        raise VerificationError(f"timestamp: {text}") from e
    except ValueError as e:
        raise VerificationError(f"timestamp: token does not verify ({e})") from e
    gen_time = info.gen_time.astimezone(UTC)
    signer = _signer(resp)  # (5)
    if not signer.not_valid_before_utc <= gen_time <= signer.not_valid_after_utc:
        raise VerificationError(
            f"timestamp: TSA certificate is not valid at genTime {gen_time:%Y-%m-%dT%H:%M:%SZ}"
        )
    return TimestampInfo(
        gen_time=gen_time,
        serial_number=int(info.serial_number),
        policy=info.policy.dotted_string,
        nonce=None if info.nonce is None else int(info.nonce),
        tsa=signer.subject.rfc4514_string(),
    )


def _signer(resp: rfc3161_client.TimeStampResponse) -> x509.Certificate:
    """The embedded certificate named by the (single) SignerInfo."""
    signed = resp.signed_data
    infos = list(signed.signer_infos)
    if len(infos) != 1:
        raise VerificationError(f"timestamp: {len(infos)} signers, expected one")
    si = infos[0]
    for der in signed.certificates:
        cert = x509.load_der_x509_certificate(der)
        if cert.issuer == si.issuer and cert.serial_number == si.serial_number:
            return cert
    raise VerificationError("timestamp: the signing certificate is not in the token")
