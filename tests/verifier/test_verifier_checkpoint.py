"""C2SP tlog-checkpoint bodies and signed checkpoints."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifier_helpers import private_key, sign_note, verifier_key

from verifier.checkpoint import Checkpoint, open_checkpoint
from verifier.errors import MalformedError, VerificationError
from verifier.merkle import EMPTY_ROOT

ORIGIN = "ledger.test/log"
LOG = private_key("checkpoint test log")
WITNESS = private_key("checkpoint test witness")
ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()


def body(size: str = "42", root: str = ROOT_B64, origin: str = ORIGIN, ext: str = "") -> str:
    return f"{origin}\n{size}\n{root}\n{ext}"


def test_parse_and_serialise() -> None:
    cp = Checkpoint.from_text(body())
    assert (cp.origin, cp.size, cp.root, cp.extensions) == (ORIGIN, 42, ROOT, ())
    assert cp.to_text() == body()


def test_extension_lines_are_kept_in_order() -> None:
    text = body(ext="Timestamp: 1700000000\nsomething else\n")
    cp = Checkpoint.from_text(text)
    assert cp.extensions == ("Timestamp: 1700000000", "something else")
    assert cp.to_text() == text


@settings(max_examples=100, deadline=None)
@given(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40),
    st.integers(0, 2**63 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1), max_size=3
    ),
)
def test_round_trip_property(origin: str, size: int, root: bytes, ext: list[str]) -> None:
    cp = Checkpoint(origin=origin, size=size, root=root, extensions=tuple(ext))
    assert Checkpoint.from_text(cp.to_text()) == cp


def test_size_zero_and_maximum() -> None:
    assert (
        Checkpoint.from_text(body(size="0", root=base64.b64encode(EMPTY_ROOT).decode())).size == 0
    )
    assert Checkpoint.from_text(body(size=str(2**63 - 1))).size == 2**63 - 1
    with pytest.raises(MalformedError, match="63 bits"):
        Checkpoint.from_text(body(size=str(2**63)))


@pytest.mark.parametrize(
    "size", ["042", "00", "-1", "+1", "1.0", "1e3", " 1", "1 ", "", "٤٢", "²", "0x2a"]
)
def test_size_must_be_canonical_decimal(size: str) -> None:
    with pytest.raises(MalformedError, match="canonical decimal"):
        Checkpoint.from_text(body(size=size))


@pytest.mark.parametrize(
    ("root", "message"),
    [
        (base64.b64encode(ROOT[:31]).decode(), "31 bytes, expected 32"),
        (base64.b64encode(ROOT + b"\x00").decode(), "33 bytes, expected 32"),
        ("", "0 bytes"),
        (ROOT_B64.rstrip("="), "invalid base64"),
        (ROOT_B64[:-2] + "B=", "non-canonical base64"),
        (base64.urlsafe_b64encode(b"\xff" * 32).decode(), "invalid base64"),
        (" " + ROOT_B64, "invalid base64"),
    ],
)
def test_root_must_be_32_bytes_of_canonical_base64(root: str, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        Checkpoint.from_text(body(root=root))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (body().rstrip("\n"), "newline"),
        (f"{ORIGIN}\n42\n", "origin, size and root"),
        (body(origin=""), "empty or padded origin"),
        (body(origin=" " + ORIGIN), "empty or padded origin"),
        (body(origin=ORIGIN + " "), "empty or padded origin"),
        (body(ext="\n"), "empty extension line"),
        (body(ext="a\n\nb\n"), "empty extension line"),
    ],
)
def test_body_layout(text: str, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        Checkpoint.from_text(text)


# ---------------------------------------------------------------- open_checkpoint


def test_open_checkpoint() -> None:
    key = verifier_key(ORIGIN, LOG)
    signed = open_checkpoint(sign_note(body(), (ORIGIN, LOG)), [key], origin=ORIGIN)
    assert signed.checkpoint == Checkpoint.from_text(body())
    assert signed.note.text == body()


def test_open_checkpoint_with_cosignatures_and_other_keys() -> None:
    text = sign_note(body(), ("witness.example", WITNESS), (ORIGIN, LOG))
    keys = [verifier_key("witness.example", WITNESS), verifier_key(ORIGIN, LOG)]
    signed = open_checkpoint(text.encode(), keys)
    assert signed.checkpoint.size == 42


def test_origin_mismatch() -> None:
    other = "other.test/log"
    text = sign_note(body(origin=other), (other, LOG))
    with pytest.raises(VerificationError, match=r"origin 'other\.test/log', expected"):
        open_checkpoint(text, [verifier_key(other, LOG)], origin=ORIGIN)


def test_missing_log_key() -> None:
    text = sign_note(body(), (ORIGIN, LOG))
    with pytest.raises(VerificationError, match="no trusted log key"):
        open_checkpoint(text, [verifier_key("other.test/log", LOG)])
    with pytest.raises(VerificationError, match="no trusted log key"):
        open_checkpoint(text, [])


def test_signed_only_by_a_witness_is_not_enough() -> None:
    # The witness key is trusted but it is not the log's key: the log must sign.
    text = sign_note(body(), ("witness.example", WITNESS))
    keys = [verifier_key("witness.example", WITNESS), verifier_key(ORIGIN, LOG)]
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        open_checkpoint(text, keys)


def test_key_with_the_origin_name_but_other_key() -> None:
    text = sign_note(body(), (ORIGIN, WITNESS))
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        open_checkpoint(text, [verifier_key(ORIGIN, LOG)])


def test_tampered_body_fails() -> None:
    text = sign_note(body(), (ORIGIN, LOG)).replace("\n42\n", "\n43\n")
    with pytest.raises(VerificationError, match="invalid signature"):
        open_checkpoint(text, [verifier_key(ORIGIN, LOG)])


def test_malformed_note_or_body() -> None:
    with pytest.raises(MalformedError):
        open_checkpoint(body(), [verifier_key(ORIGIN, LOG)])
    with pytest.raises(MalformedError, match="canonical decimal"):
        open_checkpoint(sign_note(body(size="042"), (ORIGIN, LOG)), [verifier_key(ORIGIN, LOG)])
