"""RFC 3161 tokens from a real TSA (``openssl ts -reply`` behind loopback HTTP).

Tokens the ledger's client obtains verify with ``openssl ts -verify`` and with
:mod:`verifier.timestamp`; the TSA certificate is checked at the token's
genTime, so a token stays valid after its certificate expires, and a
certificate that was not valid at genTime fails even if it is valid now.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from anchoring_support import TsaProc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pki import Ca, TsaFiles, issue_tsa, make_ca, openssl

from ledger.anchoring import Timeouts, TsaClient, _Refused
from ledger.config import TsaConfig
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
        (lambda t: t + b"\x00", "length says"),
        (lambda t: t[:-1], "length says"),
        (lambda t: b"", "not a DER SEQUENCE"),
        (lambda t: b"\x04\x02ab", "not a DER SEQUENCE"),
        (lambda t: b"\x30\x80" + t[2:], "bad DER length"),
        (lambda t: b"\x30" + bytes(70_000), "limit"),
        (lambda t: b"\x30\x03\x02\x01\x00", "does not parse"),
    ],
    ids=["trailing-byte", "truncated", "empty", "not-sequence", "indefinite", "huge", "garbage"],
)
def test_malformed_tokens_are_refused(pki: Pki, tsa: TsaProc, mutate: object, message: str) -> None:
    token = token_from(tsa.url, pki.ca.cert)
    with pytest.raises(MalformedError, match=message):
        verify_timestamp(mutate(token), BODY, pki.roots)  # type: ignore[operator]


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
