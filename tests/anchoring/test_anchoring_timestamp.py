"""RFC 3161 tokens from a real TSA (``openssl ts -reply`` behind loopback HTTP).

Tokens the ledger's client obtains verify with ``openssl ts -verify`` and with
:mod:`verifier.timestamp`; the TSA certificate is checked at the token's
genTime, so a token stays valid after its certificate expires, and a
certificate that was not valid at genTime fails even if it is valid now.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import rfc3161_client
from anchoring_support import TsaProc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pki import Ca, TsaFiles, issue_tsa, make_ca, make_intermediate, openssl
from token_forms import (
    attribute_certificate,
    ber_response,
    ber_token,
    certificates,
    ess_v2,
    granted_response,
    resign,
    with_certificate_choice,
)

from ledger.anchoring import Timeouts, TsaClient, _Refused
from ledger.config import TsaConfig
from verifier import der
from verifier.cms import normalise_token
from verifier.errors import MalformedError, VerificationError
from verifier.timestamp import load_roots, response_token, verify_timestamp

BODY = b"anchoring.test/log\n42\nq2Gm0ZcLrSJ0/9hgAQdWzJVWqH4D6TOj1ZLCrVD6Ovk=\n"
OTHER = b"anchoring.test/log\n43\nq2Gm0ZcLrSJ0/9hgAQdWzJVWqH4D6TOj1ZLCrVD6Ovk=\n"


class Pki:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca: Ca = make_ca(root / "ca")
        self.tsa: TsaFiles = issue_tsa(self.ca, root / "tsa")
        self.roots = load_roots([self.ca.cert.read_bytes()])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tsa(pki: Pki) -> Iterator[TsaProc]:
    p = TsaProc(pki.tsa.config, pki.root / "tsa.log")
    p.start()
    try:
        yield p
    finally:
        p.stop()


def client(url: str, roots: Path, http: httpx.Client) -> TsaClient:
    return TsaClient(TsaConfig(url=url, roots=str(roots)), Path("/"), http, Timeouts())


def token_from(url: str, roots: Path, body: bytes = BODY) -> bytes:
    with httpx.Client() as http:
        return client(url, roots, http).timestamp(body, time.monotonic() + 30)


def openssl_verify(token: bytes, data: bytes, ca: Path, tmp: Path, *extra: str) -> str:
    """``openssl ts -verify`` of a DER token over ``data``; returns its combined output."""
    (tmp / "token.der").write_bytes(token)
    (tmp / "data.txt").write_bytes(data)
    r = subprocess.run(
        [
            *("openssl", "ts", "-verify", "-token_in", "-in", str(tmp / "token.der")),
            *("-data", str(tmp / "data.txt"), "-CAfile", str(ca), *extra),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return r.stdout + r.stderr


# ---------------------------------------------------------------- valid tokens


def test_token_verifies_with_openssl_and_with_our_verifier(
    pki: Pki, tsa: TsaProc, tmp_path: Path
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    token = token_from(tsa.url, pki.ca.cert)
    info = verify_timestamp(token, BODY, pki.roots)
    assert before - timedelta(seconds=2) <= info.gen_time <= datetime.now(UTC)
    assert info.tsa == "CN=Evidence Test TSA" and info.policy == "1.3.6.1.4.1.55555.1"
    assert info.nonce is not None  # the client always asks with a nonce
    assert "Verification: OK" in openssl_verify(token, BODY, pki.ca.cert, tmp_path)


def test_token_over_another_checkpoint_fails(pki: Pki, tsa: TsaProc, tmp_path: Path) -> None:
    token = token_from(tsa.url, pki.ca.cert)
    with pytest.raises(VerificationError, match="over another message"):
        verify_timestamp(token, OTHER, pki.roots)
    assert "Verification: FAILED" in openssl_verify(token, OTHER, pki.ca.cert, tmp_path)


def test_token_needs_a_trusted_root(pki: Pki, tsa: TsaProc, tmp_path: Path) -> None:
    token = token_from(tsa.url, pki.ca.cert)
    stranger = make_ca(tmp_path / "other-ca", "Someone Else's CA")
    with pytest.raises(VerificationError, match="does not verify at genTime"):
        verify_timestamp(token, BODY, load_roots([stranger.cert.read_bytes()]))
    with pytest.raises(VerificationError, match="no trusted TSA roots"):
        verify_timestamp(token, BODY, [])
    # The TSA's own certificate is not a root.
    with pytest.raises(VerificationError):
        verify_timestamp(token, BODY, load_roots([pki.tsa.cert.read_bytes()]))


def test_certificate_expired_now_but_valid_at_gentime(pki: Pki, tmp_path: Path) -> None:
    """The TSA certificate expires seconds after the token is made: the token stays valid
    (checked at genTime), while a check at the current time (openssl's default) fails."""
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    short = issue_tsa(pki.ca, tmp_path / "short", not_after=expires)
    proc = TsaProc(short.config, tmp_path / "short.log")
    proc.start()
    try:
        token = token_from(proc.url, pki.ca.cert)
    finally:
        proc.stop()
    gen = verify_timestamp(token, BODY, pki.roots).gen_time
    assert gen < expires
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.2)
    assert datetime.now(UTC) > expires
    info = verify_timestamp(token, BODY, pki.roots)  # still valid, years later too
    assert info.gen_time == gen
    out = openssl_verify(token, BODY, pki.ca.cert, tmp_path)
    assert "certificate has expired" in out
    at = str(int(gen.timestamp()))
    assert "Verification: OK" in openssl_verify(token, BODY, pki.ca.cert, tmp_path, "-attime", at)


@pytest.mark.parametrize(
    ("when", "message"),
    [("future", "not yet valid"), ("past", "has expired")],
    ids=["not-yet-valid-at-gentime", "expired-at-gentime"],
)
def test_certificate_not_valid_at_gentime_fails(
    pki: Pki, tmp_path: Path, when: str, message: str
) -> None:
    now = datetime.now(UTC)
    if when == "future":
        files = issue_tsa(pki.ca, tmp_path / when, not_before=now + timedelta(days=1))
    else:
        start, end = now - timedelta(days=2), now - timedelta(days=1)
        files = issue_tsa(pki.ca, tmp_path / when, not_before=start, not_after=end)
    (tmp_path / "body").write_bytes(BODY)
    openssl("ts", "-query", "-data", tmp_path / "body", "-sha256", "-cert", "-out", tmp_path / "q")
    openssl(
        *("ts", "-reply", "-config", files.config, "-queryfile", tmp_path / "q"),
        *("-out", tmp_path / "r"),
    )
    token = response_token((tmp_path / "r").read_bytes())
    with pytest.raises(VerificationError, match=message):
        verify_timestamp(token, BODY, pki.roots)


# ---------------------------------------------------------------- the ledger's client


def test_replayed_response_fails_the_nonce_check(pki: Pki, tmp_path: Path) -> None:
    proc = TsaProc(pki.tsa.config, tmp_path / "replay.log", replay=True)
    proc.start()
    try:
        with httpx.Client() as http:
            c = client(proc.url, pki.ca.cert, http)
            first = c.timestamp(BODY, time.monotonic() + 30)
            with pytest.raises(_Refused, match="nonce does not match"):
                c.timestamp(BODY, time.monotonic() + 30)
            with pytest.raises(_Refused, match=r"nonce does not match|over another message"):
                c.timestamp(OTHER, time.monotonic() + 30)
    finally:
        proc.stop()
    verify_timestamp(first, BODY, pki.roots)


def test_client_refuses_a_tsa_that_chains_to_other_roots(
    pki: Pki, tsa: TsaProc, tmp_path: Path
) -> None:
    stranger = make_ca(tmp_path / "other-ca", "Someone Else's CA")
    with httpx.Client() as http:
        c = client(tsa.url, stranger.cert, http)
        with pytest.raises(_Refused, match="does not verify at genTime"):
            c.timestamp(BODY, time.monotonic() + 30)


def test_rejections_and_other_imprints(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "body").write_bytes(BODY)
    for alg in ("sha1", "sha512"):
        q, r = tmp_path / f"{alg}.tsq", tmp_path / f"{alg}.tsr"
        openssl("ts", "-query", "-data", tmp_path / "body", f"-{alg}", "-cert", "-out", q)
        openssl("ts", "-reply", "-config", pki.tsa.config, "-queryfile", q, "-out", r)
    # SHA-1 is not in the TSA's list: a granted status never comes back.
    with pytest.raises(VerificationError, match="status 2"):
        response_token((tmp_path / "sha1.tsr").read_bytes())
    # A valid SHA-512 token is still not what a checkpoint needs.
    token = response_token((tmp_path / "sha512.tsr").read_bytes())
    with pytest.raises(VerificationError, match="expected SHA-256"):
        verify_timestamp(token, BODY, pki.roots)


# ---------------------------------------------------------------- malformed tokens


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t + b"\x00", "1 bytes after the end"),
        (lambda t: t[:-1], "runs past the end"),
        (lambda t: b"", "truncated"),
        (lambda t: b"\x04\x02ab", "token: unexpected tag"),
        (lambda t: b"\x30\x80" + t[4:], "without end-of-contents"),
        (lambda t: b"\x30\x80\x04\x80" + t[4:], "indefinite length on a primitive"),
        (lambda t: b"\x30" + bytes(70_000), "limit"),
        (lambda t: b"\x30\x03\x02\x01\x00", "token: expected 2 components"),
    ],
    ids=[
        "trailing-byte",
        "truncated",
        "empty",
        "not-sequence",
        "indefinite-unterminated",
        "indefinite-primitive",
        "huge",
        "garbage",
    ],
)
def test_malformed_tokens_are_refused(pki: Pki, tsa: TsaProc, mutate: object, message: str) -> None:
    token = token_from(tsa.url, pki.ca.cert)
    with pytest.raises(MalformedError, match=message):
        verify_timestamp(mutate(token), BODY, pki.roots)  # type: ignore[operator]


def test_ber_forms_of_a_token_verify_and_keep_the_facts(pki: Pki, tsa: TsaProc) -> None:
    """An indefinite outer length, or a non-minimal one, is BER a TSA may send."""
    token = token_from(tsa.url, pki.ca.cert)
    assert token[1] == 0x82
    good = verify_timestamp(token, BODY, pki.roots)
    assert good.normalised == ()
    for ber in (b"\x30\x80" + token[4:] + b"\x00\x00", b"\x30\x84\x00\x00" + token[2:]):
        info = verify_timestamp(ber, BODY, pki.roots)
        assert (info.gen_time, info.serial_number) == (good.gen_time, good.serial_number)
        assert info.normalised == ("BER lengths or segmented strings re-encoded in DER",)


@pytest.fixture(scope="module")
def one_token(pki: Pki, tsa: TsaProc) -> bytes:
    return token_from(tsa.url, pki.ca.cert)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_flipped_byte_fails_with_our_errors_only(
    pki: Pki, one_token: bytes, data: st.DataObject
) -> None:
    pos = data.draw(st.integers(0, len(one_token) - 1))
    flip = data.draw(st.integers(1, 255))
    bad = bytearray(one_token)
    bad[pos] ^= flip
    try:
        info = verify_timestamp(bytes(bad), BODY, pki.roots)
    except (MalformedError, VerificationError):
        return
    # Bytes outside what is signed (e.g. unsigned parts of the certificate set) may
    # change without breaking the token; the facts it vouches for must not.
    good = verify_timestamp(one_token, BODY, pki.roots)
    assert (info.gen_time, info.serial_number, info.nonce) == (
        good.gen_time,
        good.serial_number,
        good.nonce,
    )


# ---------------------------------------------------------------- what real TSAs send


def _stamp(config: Path, tmp: Path, body: bytes = BODY) -> bytes:
    """A DER TimeStampResp from ``openssl ts -reply`` over ``body``."""
    (tmp / "body").write_bytes(body)
    openssl("ts", "-query", "-data", tmp / "body", "-sha256", "-cert", "-out", tmp / "q")
    openssl("ts", "-reply", "-config", config, "-queryfile", tmp / "q", "-out", tmp / "r")
    return (tmp / "r").read_bytes()


@pytest.fixture(scope="module")
def chain3(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> tuple[TsaFiles, Ca]:
    """A TSA under an intermediate CA whose tokens carry all three certificates."""
    root = tmp_path_factory.mktemp("chain3")
    inter = make_intermediate(pki.ca, root / "inter")
    return issue_tsa(inter, root / "tsa", chain=[inter.cert, pki.ca.cert]), inter


def test_tokens_with_a_three_certificate_chain_verify_in_any_order(
    pki: Pki, chain3: tuple[TsaFiles, Ca], tmp_path: Path
) -> None:
    """OpenSSL writes the set signer first; re-ordered either way, the token verifies."""
    files, _ = chain3
    token = response_token(_stamp(files.config, tmp_path))
    certs = certificates(token)
    assert len(certs) == 3
    assert "Verification: OK" in openssl_verify(token, BODY, pki.ca.cert, tmp_path)
    for order in (certs, sorted(certs), sorted(certs, reverse=True)):
        reordered = token.replace(b"".join(certs), b"".join(order))
        info = verify_timestamp(reordered, BODY, pki.roots)
        expected = () if order == sorted(certs) else ("certificates sorted into DER order",)
        assert info.normalised == expected


def test_ber_responses_and_tokens_verify_and_the_original_is_kept(
    pki: Pki, chain3: tuple[TsaFiles, Ca], tmp_path: Path
) -> None:
    files, _ = chain3
    response = _stamp(files.config, tmp_path)
    ber = ber_response(response)
    token = response_token(ber)
    assert token == ber_token(response_token(response))  # as sent, not normalised
    assert token[1] == 0x80
    info = verify_timestamp(token, BODY, pki.roots)
    assert info.normalised[0] == "BER lengths or segmented strings re-encoded in DER"
    assert "Verification: OK" in openssl_verify(token, BODY, pki.ca.cert, tmp_path)
    assert normalise_token(token).der == normalise_token(response_token(response)).der


@pytest.mark.parametrize("choice", [0, 1, 2, 3], ids=["extended", "v1-ac", "v2-ac", "other"])
def test_non_x509_certificate_choices_are_dropped(
    pki: Pki, chain3: tuple[TsaFiles, Ca], tmp_path: Path, choice: int
) -> None:
    files, inter = chain3
    token = response_token(_stamp(files.config, tmp_path))
    acert = attribute_certificate(_der(files.cert), _der(inter.cert), inter.key)
    with_ac = with_certificate_choice(token, bytes([0xA0 | choice]) + acert[1:])
    info = verify_timestamp(with_ac, BODY, pki.roots)
    names = {0: "extended certificate", 1: "v1 attribute certificate"}
    names |= {2: "v2 attribute certificate", 3: "other certificate format"}
    assert f"{names[choice]} ([{choice}]) dropped" in info.normalised
    assert normalise_token(with_ac).der == normalise_token(token).der
    # Not a CertificateChoices element at all: refused.
    with pytest.raises(MalformedError, match="no CertificateChoices"):
        verify_timestamp(with_certificate_choice(token, b"\x04\x01x"), BODY, pki.roots)


def _der(pem: Path) -> bytes:
    return x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(Encoding.DER)


def test_ess_binding_is_checked_where_the_library_does_not(
    pki: Pki, chain3: tuple[TsaFiles, Ca], tmp_path: Path
) -> None:
    """Signed by the TSA's key, the ESS attribute naming a second certificate for that
    key: rfc3161-client accepts the token, the verifier refuses it."""
    files, inter = chain3
    token = response_token(_stamp(files.config, tmp_path))
    chain = [_der(inter.cert), _der(pki.ca.cert)]
    twin = issue_tsa(inter, tmp_path / "twin", cn="Twin TSA", key=files.key)
    control = resign(token, files.key, _der(files.cert), chain=chain)
    verify_timestamp(control, BODY, pki.roots)
    forged = resign(token, files.key, _der(files.cert), chain=chain, ess=ess_v2(_der(twin.cert)))
    der_form = normalise_token(forged).der
    resp = rfc3161_client.decode_timestamp_response(granted_response(der_form))
    verifier = rfc3161_client.VerifierBuilder().add_root_certificate(pki.roots[0]).build()
    assert verifier.verify(resp, hashlib.sha256(BODY).digest())
    with pytest.raises(VerificationError, match="names another certificate"):
        verify_timestamp(forged, BODY, pki.roots)
    assert "Verification: OK" in openssl_verify(control, BODY, pki.ca.cert, tmp_path)
    # issuerSerial present and right: accepted; naming another serial: refused.
    tbs = _tbs_fields(_der(files.cert))
    right = resign(
        token,
        files.key,
        _der(files.cert),
        chain=chain,
        ess=ess_v2(_der(files.cert), issuer_serial=(tbs[1], tbs[0])),
    )
    verify_timestamp(right, BODY, pki.roots)
    other = _tbs_fields(_der(twin.cert))
    wrong = resign(
        token,
        files.key,
        _der(files.cert),
        chain=chain,
        ess=ess_v2(_der(files.cert), issuer_serial=(tbs[1], other[0])),
    )
    with pytest.raises(VerificationError, match="issuer and serial do not match"):
        verify_timestamp(wrong, BODY, pki.roots)


def _tbs_fields(cert: bytes) -> tuple[bytes, bytes]:
    """(serial INTEGER, issuer Name) encodings of a DER certificate."""
    tbs = der.decode(cert, "cert").children[0].children
    return tbs[1].raw, tbs[3].raw


def test_the_forged_token_is_refused(pki: Pki, tmp_path: Path) -> None:
    """A token signed by a self-signed certificate embedded in it verifies against no
    unrelated root (rfc3161-client before 1.0.9 accepted it), even one bearing the
    trusted root's name; it verifies against that self-signed certificate itself, so
    the refusal is about trust and nothing else."""
    key, crt = tmp_path / "self.key", tmp_path / "self.crt"
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    for subject in ("/CN=Evidence Test TSA", "/CN=Evidence Test Root CA"):
        openssl(
            *("req", "-x509", "-new", "-key", key, "-out", crt, "-subj", subject),
            *("-days", "30", "-addext", "extendedKeyUsage=critical,timeStamping"),
            *("-addext", "keyUsage=critical,digitalSignature"),
        )
        cnf = tmp_path / "self.cnf"
        cnf.write_text(
            pki.tsa.config.read_text()
            .replace("signer_cert = $dir/tsa.crt", f"signer_cert = {crt}")
            .replace(f"signer_key = {pki.tsa.key}", f"signer_key = {key}")
        )
        token = response_token(_stamp(cnf, tmp_path))
        assert certificates(token) == [_der(crt)]  # openssl really signed with it
        with pytest.raises(VerificationError, match="does not verify at genTime"):
            verify_timestamp(token, BODY, pki.roots)
        assert verify_timestamp(token, BODY, load_roots([crt.read_bytes()])).tsa.startswith("CN=")


def test_the_verifier_wheel_requires_a_fixed_rfc3161_client() -> None:
    """Both distributions pin rfc3161-client >= 1.0.9, and that is what is installed."""
    repo = Path(__file__).resolve().parents[2]
    for toml in (repo / "pyproject.toml", repo / "verifier" / "pyproject.toml"):
        deps = tomllib.loads(toml.read_text())["project"]["dependencies"]
        assert "rfc3161-client>=1.0.9" in deps, toml
    installed = tuple(int(x) for x in importlib.metadata.version("rfc3161-client").split(".")[:3])
    assert installed >= (1, 0, 9)
