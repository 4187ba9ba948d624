"""RFC 3161 time-stamp tokens: reading what TSAs send, and verifying it.

A checkpoint's token is a TimeStampToken (RFC 3161 §2.4.2: a CMS SignedData
whose content is a TSTInfo) whose message imprint is SHA-256 of the checkpoint
body, the text the log signs. It proves the checkpoint existed at the token's
``genTime``. :func:`verify_token` checks any token (the ``timestamp`` command
of ``evidence-verify``); :func:`verify_timestamp` is the checkpoint's case.

Real TSAs rarely send strict DER (see :mod:`verifier.cms`): the token is
normalised first, with the proof that nothing signed changed, and the
normalised form is verified. The TSA's bytes as sent remain the evidence;
callers store and pass those.

The cryptography (CMS signature, certificate chain valid at the token's
``genTime`` rather than now, which a token must survive: being checked years
after the TSA certificate expired) is done by ``rfc3161-client`` (Trail of
Bits), version 1.0.9 or later: earlier ones accepted a token signed by a
self-signed certificate embedded in the token. What that library does not
check is checked here: weak imprint algorithms, and the ESS
signing-certificate binding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import rfc3161_client
from cryptography import x509
from rfc3161_client.tsp import TimeStampTokenInfo

from verifier import cms, der
from verifier.errors import MalformedError, VerificationError
from verifier.trust import TsaPolicy

__all__ = [
    "IMPRINT_ALGORITHMS",
    "MAX_TOKEN_SIZE",
    "SHA256_OID",
    "StampedCheckpoint",
    "TimestampInfo",
    "encode_token_set",
    "gen_time",
    "imprint_algorithm",
    "load_roots",
    "message_digest",
    "read_token",
    "response_token",
    "token_facts",
    "verify_timestamp",
    "verify_token",
    "verify_token_set",
]

SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
IMPRINT_ALGORITHMS = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
"""Message imprint algorithms accepted by :func:`verify_token`; MD5, SHA-1 and
anything unknown are refused."""
_WEAK = {"1.2.840.113549.2.5": "MD5", "1.3.14.3.2.26": "SHA-1"}
MAX_TOKEN_SIZE = cms.MAX_TOKEN_SIZE
_GRANTED = bytes.fromhex("3003020100")  # PKIStatusInfo { status granted(0) }
_VERIFY_ERROR = re.compile(r'Verify error: ([^"]+)"')
_PEM_LINE = re.compile(rb"-----(BEGIN|END) [A-Z0-9 ]+-----")


@dataclass(frozen=True, slots=True)
class TimestampInfo:
    """What a verified token says: when, by whom, under which policy."""

    gen_time: datetime
    serial_number: int
    policy: str
    nonce: int | None
    tsa: str
    """Subject of the TSA certificate that signed the token (RFC 4514)."""
    hash_algorithm: str = "sha256"
    """The message imprint's algorithm (hashlib name)."""
    normalised: tuple[str, ...] = ()
    """What had to be rewritten in DER before the check (empty: sent as DER)."""
    tsa_not_after: datetime | None = None
    """When the certificate that signed the token expires: after it, the token
    counts only if it was renewed before (:mod:`verifier.ers`)."""


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


def response_token(response: bytes) -> bytes:
    """The token inside a TimeStampResp (RFC 3161 §2.4.2) whose status is granted.

    The token is returned exactly as the TSA sent it (BER or DER): that is
    the evidence. A TSA's answer is refused if it is not a response, reports
    any status other than granted (0), or carries no token.
    """
    resp = cms.parse_response(response)
    if resp.status != 0:
        detail = f" ({'; '.join(resp.texts)})" if resp.texts else ""
        raise VerificationError(f"timestamp: TSA answered with status {resp.status}{detail}")
    if resp.token is None:
        raise MalformedError("timestamp: response carries no token")
    return resp.token


def read_token(data: bytes) -> bytes:
    """The token in ``data``: a bare token or a TimeStampResp, binary or base64.

    Binary input is BER or DER; text input is base64, optionally between PEM
    ``-----BEGIN ...-----`` / ``-----END ...-----`` lines. A response must be
    granted. The token is returned as sent.
    """
    if len(data) > 2 * MAX_TOKEN_SIZE:
        raise MalformedError(f"timestamp: input has {len(data)} bytes, limit {2 * MAX_TOKEN_SIZE}")
    if not data.startswith(b"\x30"):
        text = b"".join(_PEM_LINE.sub(b"", data).split())
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as e:
            raise MalformedError("timestamp: input is neither DER nor base64") from e
        if not data.startswith(b"\x30"):
            raise MalformedError("timestamp: input is not a token or a response")
    return response_token(data) if cms.is_response(data) else data


def imprint_algorithm(token: bytes, algorithms: dict[str, str] | None = None) -> str:
    """The hashlib name of the token's imprint algorithm; refuse weak ones.

    Lets a caller hash a large message once, with the right algorithm,
    before :func:`verify_token`. Nothing is verified here.
    """
    info = _parse(cms.normalise_token(token).der).tst_info
    return _algorithm(info, IMPRINT_ALGORITHMS if algorithms is None else algorithms)


def gen_time(token: bytes) -> datetime:
    """The genTime a token states (UTC), read as sent (BER, unsorted
    certificate sets). Nothing is verified here."""
    return _parse(cms.normalise_token(token).der).tst_info.gen_time.astimezone(UTC)


def token_facts(token: bytes) -> TimestampInfo:
    """What a token states (genTime, imprint algorithm, signer and its
    certificate's expiry), read as sent. Nothing is verified here: for a
    producer deciding what to renew, about tokens it verified when it got them."""
    norm = cms.normalise_token(token)
    info = _parse(norm.der).tst_info
    if norm.signer_certificate is None:
        raise VerificationError("timestamp: the signing certificate is not in the token")
    signer = x509.load_der_x509_certificate(norm.signer_certificate)
    oid = info.message_imprint.hash_algorithm.dotted_string
    return TimestampInfo(
        gen_time=info.gen_time.astimezone(UTC),
        serial_number=int(info.serial_number),
        policy=info.policy.dotted_string,
        nonce=None if info.nonce is None else int(info.nonce),
        tsa=signer.subject.rfc4514_string(),
        hash_algorithm=IMPRINT_ALGORITHMS.get(oid, oid),
        normalised=norm.changes,
        tsa_not_after=signer.not_valid_after_utc,
    )


def _algorithm(info: TimeStampTokenInfo, allowed: dict[str, str]) -> str:
    oid = info.message_imprint.hash_algorithm.dotted_string
    name = allowed.get(oid)
    if name is None:
        weak = _WEAK.get(oid)
        if weak is not None:
            raise VerificationError(f"timestamp: imprint uses {weak} ({oid}), a weak algorithm")
        expected = ", ".join(n.upper().replace("SHA", "SHA-") for n in allowed.values())
        raise VerificationError(f"timestamp: imprint uses {oid}, expected {expected}")
    return name


def _parse(token_der: bytes) -> rfc3161_client.TimeStampResponse:
    """Decode a DER token with rfc3161-client, as a granted TimeStampResp."""
    inner = _GRANTED + token_der
    try:
        resp = rfc3161_client.decode_timestamp_response(der.tlv(0x30, inner))
        resp.tst_info.gen_time  # noqa: B018 - decode lazily parsed parts now
        resp.signed_data.signer_infos  # noqa: B018
    except ValueError as e:
        raise MalformedError(f"timestamp: token does not parse ({e})") from e
    return resp


def verify_timestamp(
    token: bytes,
    message: bytes,
    roots: Sequence[x509.Certificate],
    *,
    nonce: int | None = None,
) -> TimestampInfo:
    """Verify an RFC 3161 token over ``message`` (a checkpoint body); return its facts.

    As :func:`verify_token`, with a SHA-256 imprint required: it is what the
    ledger asks for.
    """
    return verify_token(
        token, roots, message=message, nonce=nonce, algorithms={SHA256_OID.dotted_string: "sha256"}
    )


def verify_token(
    token: bytes,
    roots: Sequence[x509.Certificate],
    *,
    message: bytes | None = None,
    digest: bytes | None = None,
    nonce: int | None = None,
    algorithms: dict[str, str] | None = None,
) -> TimestampInfo:
    """Verify a token (as the TSA sent it) over ``message`` or its ``digest``.

    (1) refuse an empty set of roots (fail closed) and require exactly one
    of ``message`` and ``digest``; (2) normalise the token to DER, proving
    the signed attributes and the TSTInfo unchanged (:mod:`verifier.cms`);
    (3) parse it; (4) require an imprint algorithm among ``algorithms``
    (default :data:`IMPRINT_ALGORITHMS`: weak ones are refused) and hash
    ``message`` with it; (5) with rfc3161-client: the CMS signature, the TSA
    certificate's chain to one of ``roots`` with every certificate valid at
    the token's genTime (not now), a critical id-kp-timeStamping extended
    key usage, the imprint, and ``nonce`` when given; (6) the signed
    content type and the ESS signing-certificate binding to the certificate
    that signed; (7) check again, here, that this certificate was valid at
    genTime.
    """
    if not roots:  # (1)
        raise VerificationError("timestamp: no trusted TSA roots given")
    if (message is None) == (digest is None):
        raise ValueError("verify_token needs exactly one of message and digest")
    norm = cms.normalise_token(token)  # (2)
    resp = _parse(norm.der)  # (3)
    info = resp.tst_info
    name = _algorithm(info, IMPRINT_ALGORITHMS if algorithms is None else algorithms)  # (4)
    if message is not None:
        digest = hashlib.new(name, message).digest()
    assert digest is not None
    if len(digest) != hashlib.new(name).digest_size:
        raise VerificationError(
            f"timestamp: a {name} digest has {hashlib.new(name).digest_size} bytes, "
            f"got {len(digest)}"
        )
    builder = rfc3161_client.VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    if nonce is not None:
        builder = builder.nonce(nonce)
    try:  # (5)
        builder.build().verify(resp, digest)
    except rfc3161_client.VerificationError as e:
        raise _library_error(str(e)) from e
    except ValueError as e:
        raise VerificationError(f"timestamp: token does not verify ({e})") from e
    if norm.signer_certificate is None:
        raise VerificationError("timestamp: the signing certificate is not in the token")
    cms.check_signing_certificate(norm.signed_attributes, norm.signer_certificate)  # (6)
    signer = x509.load_der_x509_certificate(norm.signer_certificate)
    gen_time = info.gen_time.astimezone(UTC)
    if not signer.not_valid_before_utc <= gen_time <= signer.not_valid_after_utc:  # (7)
        raise VerificationError(
            f"timestamp: TSA certificate is not valid at genTime {gen_time:%Y-%m-%dT%H:%M:%SZ}"
        )
    return TimestampInfo(
        gen_time=gen_time,
        serial_number=int(info.serial_number),
        policy=info.policy.dotted_string,
        nonce=None if info.nonce is None else int(info.nonce),
        tsa=signer.subject.rfc4514_string(),
        hash_algorithm=name,
        normalised=norm.changes,
        tsa_not_after=signer.not_valid_after_utc,
    )


def _library_error(text: str) -> VerificationError:
    """rfc3161-client's reasons as one-line ``timestamp: ...`` messages."""
    if "Mismatch between messages" in text:
        return VerificationError(
            "timestamp: token is over another message (imprint does not match)"
        )
    if "Nonce mismatch" in text:
        return VerificationError("timestamp: token nonce does not match the request")
    if "EKU" in text:
        return VerificationError(
            "timestamp: TSA certificate lacks a critical id-kp-timeStamping extended key usage"
        )
    why = _VERIFY_ERROR.search(text)
    if why and why[1] == "unsuitable certificate purpose":
        return VerificationError(
            "timestamp: TSA certificate chain does not verify at genTime (unsuitable "
            "certificate purpose: a TSA needs a critical id-kp-timeStamping extended key usage)"
        )
    if why:
        return VerificationError(
            f"timestamp: TSA certificate chain does not verify at genTime ({why[1]})"
        )
    return VerificationError(f"timestamp: {text}")


# ---------------------------------------------------------------- several TSAs


@dataclass(frozen=True, slots=True)
class StampedCheckpoint:
    """The tokens over a checkpoint that count towards a :class:`TsaPolicy`."""

    stamps: tuple[tuple[str, TimestampInfo], ...]
    """(authority name, what its token says), in policy order."""
    quorum: int
    ignored: tuple[str, ...]
    """One reason per token that did not count."""
    indexes: tuple[int, ...] = ()
    """For each stamp, the position of its token in the token set."""

    @property
    def bound(self) -> TimestampInfo:
        """The token whose genTime the checkpoint surely existed by: the quorum-th
        earliest, so that fewer than ``quorum`` TSAs backdating cannot move it."""
        return sorted((info for _, info in self.stamps), key=lambda i: i.gen_time)[self.quorum - 1]


def encode_token_set(tokens: Sequence[bytes]) -> bytes:
    """A checkpoint's timestamp from its tokens: the token alone, or a token set.

    One token stays itself (what single-TSA ledgers always stored); several
    become a DER ``SEQUENCE OF TimeStampToken``, each token as sent.
    """
    if not tokens or len(tokens) > cms.MAX_TOKENS:
        raise MalformedError(f"timestamp: {len(tokens)} tokens, expected 1 to {cms.MAX_TOKENS}")
    return tokens[0] if len(tokens) == 1 else der.tlv(0x30, b"".join(tokens))


def verify_token_set(data: bytes, message: bytes, policy: TsaPolicy) -> StampedCheckpoint:
    """Verify a checkpoint's token or token set over ``message`` against ``policy``.

    (1) split ``data`` into its tokens (:func:`verifier.cms.split_token_set`);
    (2) verify each token (:func:`verify_timestamp`) against the roots of each
    authority in policy order, and count it for the first one that is not
    counted yet; a second token by a TSA already counted (same signing
    certificate subject) does not count again; (3) require ``quorum``
    authorities counted, else raise :class:`VerificationError` naming what
    each token failed (a single token's own error when it is the only one).
    """
    tokens = cms.split_token_set(data)  # (1)
    counted: dict[str, TimestampInfo] = {}
    positions: dict[str, int] = {}
    signers: set[str] = set()
    ignored: list[str] = []
    last: Exception | None = None
    for i, token in enumerate(tokens):  # (2)
        why = "its TSA is already counted"
        for authority in policy.authorities:
            if authority.name in counted:
                continue
            try:
                info = verify_timestamp(token, message, authority.roots)
            except (MalformedError, VerificationError) as e:
                last, why = e, str(e).removeprefix("timestamp: ")
                continue
            if info.tsa in signers:
                why = f"{info.tsa} is already counted"
                break
            counted[authority.name] = info
            positions[authority.name] = i
            signers.add(info.tsa)
            why = ""
            break
        if why:
            ignored.append(f"token {i}: {why}")
    if len(counted) < policy.quorum:  # (3)
        if len(tokens) == 1 and len(policy.authorities) == 1 and last is not None:
            raise last
        n = len(policy.authorities)
        detail = f" ({'; '.join(ignored)})" if ignored else ""
        raise VerificationError(
            f"timestamp: {len(counted)} of {n} TSAs timestamped the checkpoint, "
            f"quorum is {policy.quorum}{detail}"
        )
    names = [a.name for a in policy.authorities if a.name in counted]
    return StampedCheckpoint(
        stamps=tuple((n, counted[n]) for n in names),
        quorum=policy.quorum,
        ignored=tuple(ignored),
        indexes=tuple(positions[n] for n in names),
    )
