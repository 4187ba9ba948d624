"""C2SP signed-note: parsing, verifier keys, signature verification."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from verifier_helpers import private_key, sign_note, signature, verifier_key

from verifier.errors import MalformedError, VerificationError
from verifier.note import (
    ALG_ED25519,
    Note,
    NoteSignature,
    VerifierKey,
    b64decode_strict,
    key_id,
    parse_note,
    verify_note,
)

# The example of golang.org/x/mod/sumdb/note (package documentation and
# note_test.go): verifier key, text and the signed note Go produces.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# The matching signer key of the Go example: base64(0x01 || Ed25519 seed).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
# An Ed25519 verifier key whose base64 contains '+' (transparency-dev/formats
# note tests): the parser must split only at the first two '+'.
PLUS_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"

LOG = private_key("note test log")
OTHER = private_key("note test other")
NAME = "ledger.test/log"


# ---------------------------------------------------------------- known answers


def test_go_example_verifies() -> None:
    key = VerifierKey.from_text(GO_VKEY)
    assert key.name == "PeterNeumann"
    assert key.key_id == bytes.fromhex("c74f20a3")
    note = parse_note(GO_NOTE)
    assert note.text == GO_TEXT
    assert note.to_text() == GO_NOTE
    assert verify_note(note, [key]) == [key]
    assert verify_note(parse_note(GO_NOTE.encode("utf-8")), [key]) == [key]


def test_go_example_is_reproduced_by_signing() -> None:
    # Ed25519 is deterministic (RFC 8032): signing Go's text with Go's seed must
    # give Go's note byte for byte, so Go's verifiers accept what we write.
    raw = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert raw[0] == ALG_ED25519
    seed = Ed25519PrivateKey.from_private_bytes(raw[1:])
    assert verifier_key("PeterNeumann", seed).to_text() == GO_VKEY
    assert sign_note(GO_TEXT, ("PeterNeumann", seed)) == GO_NOTE


def test_go_example_tampered_text_fails() -> None:
    key = VerifierKey.from_text(GO_VKEY)
    note = parse_note(GO_NOTE.replace("cryptography", "cryptographY"))
    with pytest.raises(VerificationError, match="invalid signature by PeterNeumann"):
        verify_note(note, [key])


def test_go_example_key_round_trip() -> None:
    assert VerifierKey.from_text(GO_VKEY).to_text() == GO_VKEY
    assert VerifierKey.from_text("  " + GO_VKEY + "\n").to_text() == GO_VKEY


def test_key_whose_base64_contains_plus() -> None:
    key = VerifierKey.from_text(PLUS_VKEY)
    assert key.name == "TEST"
    assert key.to_text() == PLUS_VKEY


def test_key_id_definition() -> None:
    # key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4]
    key = VerifierKey.from_text(GO_VKEY)
    assert key_id("PeterNeumann", ALG_ED25519, key.public_key) == bytes.fromhex("c74f20a3")


# ---------------------------------------------------------------- verifier keys


def test_verifier_key_round_trip() -> None:
    key = verifier_key(NAME, LOG)
    assert VerifierKey.from_text(key.to_text()) == key
    assert key.name == NAME
    assert len(key.public_key) == 32


@settings(max_examples=50, deadline=None)
@given(
    st.binary(min_size=32, max_size=32), st.sampled_from(["a", "log.example/x", "名前", "x-y_z"])
)
def test_verifier_key_round_trip_property(public: bytes, name: str) -> None:
    key = VerifierKey.from_public_key(name, public)
    assert VerifierKey.from_text(key.to_text()) == key


def _mangle_hash(text: str) -> str:
    name, kid, b64 = text.split("+", 2)
    return f"{name}+{(int(kid, 16) ^ 1):08x}+{b64}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_mangle_hash(GO_VKEY), "key hash does not match"),
        (GO_VKEY.replace("c74f20a3", "C74F20A3"), "8 lowercase hex"),
        (GO_VKEY.replace("c74f20a3", "c74f20a"), "8 lowercase hex"),
        (GO_VKEY.replace("c74f20a3", "c74f 0a3"), "8 lowercase hex"),
        (GO_VKEY.replace("c74f20a3", "+c74f20a3"), "8 lowercase hex"),
        ("PeterNeumann+c74f20a3", r"expected name\+hash\+key"),
        ("PeterNeumann", r"expected name\+hash\+key"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "empty"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "whitespace"),
        (GO_VKEY + "=", "base64"),
        (GO_VKEY[:-1], "base64"),
        (GO_VKEY.replace("ARpc", "Apc"), "base64"),
        ("PeterNeumann+c74f20a3+" + base64.b64encode(b"\x02" + b"\x00" * 32).decode(), "Ed25519"),
        ("PeterNeumann+c74f20a3+" + base64.b64encode(b"\x01" + b"\x00" * 31).decode(), "Ed25519"),
    ],
)
def test_verifier_key_refusals(text: str, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        VerifierKey.from_text(text)


def test_verifier_key_every_single_byte_change_is_refused() -> None:
    # After golang.org/x/mod/sumdb/note TestNewVerifier: no mangling is accepted.
    for i in range(len(GO_VKEY)):
        for delta in (1, -1):
            mangled = GO_VKEY[:i] + chr(ord(GO_VKEY[i]) + delta) + GO_VKEY[i + 1 :]
            with pytest.raises(MalformedError):
                VerifierKey.from_text(mangled)
    for i in range(len(GO_VKEY)):
        for j in range(i + 1, len(GO_VKEY) + 1):
            if (i, j) != (0, len(GO_VKEY)) and GO_VKEY[i:j].strip() == GO_VKEY[i:j]:
                with pytest.raises(MalformedError):
                    VerifierKey.from_text(GO_VKEY[i:j])


@pytest.mark.parametrize("name", ["", "a+b", "a b", "a\tb", "a\u00a0b", "a\u3000b"])
def test_bad_key_names(name: str) -> None:
    with pytest.raises(MalformedError, match="key name"):
        VerifierKey.from_public_key(name, b"\x00" * 32)


def test_public_key_length() -> None:
    with pytest.raises(MalformedError, match="32 bytes"):
        VerifierKey.from_public_key("a", b"\x00" * 31)


# ---------------------------------------------------------------- parsing


def test_round_trip_of_a_signed_note() -> None:
    text = "hello\nworld\n"
    signed = sign_note(text, (NAME, LOG), ("other.example", OTHER))
    note = parse_note(signed)
    assert note.text == text
    assert [s.name for s in note.signatures] == [NAME, "other.example"]
    assert note.to_text() == signed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("hello\n— a AAAAAAAA\n", "no blank line"),
        ("hello\n\n— a AAAAAAAAAA==", "newline"),
        ("hello\n\n— a AAAAAAAAAA==\n\n", "em dash"),
        ("hello\n\n", "em dash"),
        ("\n\n— a AAAAAAAAAA==\n", "empty text"),
        ("hel\x00lo\n\n— a AAAAAAAAAA==\n", "control character"),
        ("hello\r\n\n— a AAAAAAAAAA==\n", "control character"),
        ("hel\tlo\n\n— a AAAAAAAAAA==\n", "control character"),
        ("hello\x7f\n\n— a AAAAAAAAAA==\n", "control character"),
        ("hello\n\n- a AAAAAAAAAA==\n", "em dash"),
        ("hello\n\n—a AAAAAAAAAA==\n", "em dash"),
        ("hello\n\n— a  AAAAAAAAAA==\n", "'— name signature'"),
        ("hello\n\n— a AAAAAAAAAA== x\n", "'— name signature'"),
        ("hello\n\n— a+b AAAAAAAAAA==\n", "key name"),
        ("hello\n\n— a AAAAAAAA*A==\n", "invalid base64"),
        ("hello\n\n— a AAAAAAAAAA=\n", "invalid base64"),
        ("hello\n\n— a AAAAAAAAAB==\n", "non-canonical base64"),
        ("hello\n\n— a AAAAAA==\n", "too short"),
        ("hello\n\n— a \n", "too short"),
    ],
)
def test_parse_refusals(data: str, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        parse_note(data)


def test_parse_refuses_invalid_utf8() -> None:
    with pytest.raises(MalformedError, match="UTF-8"):
        parse_note(b"hel\xfflo\n\n\xe2\x80\x94 a AAAAAAAAAA==\n")


def test_parse_refuses_too_many_signatures() -> None:
    line = "— a AAAAAAAAAA==\n"
    parse_note("hello\n\n" + line * 100)
    with pytest.raises(MalformedError, match="more than 100"):
        parse_note("hello\n\n" + line * 101)


def test_blank_lines_inside_the_text() -> None:
    # The last blank line separates the signatures: the text keeps its own.
    text = "a\n\nb\n"
    note = parse_note(sign_note(text, (NAME, LOG)))
    assert note.text == text
    verify_note(note, [verifier_key(NAME, LOG)])


def test_b64decode_strict() -> None:
    assert b64decode_strict("AAE=", "x") == b"\x00\x01"
    for bad in ("AAF=", "AAE", "AA E=", "AAE=\n", "é", "AAE==", "-_8="):
        with pytest.raises(MalformedError):
            b64decode_strict(bad, "x")


# ---------------------------------------------------------------- verification


def test_verify_returns_the_trusted_signers() -> None:
    signed = parse_note(sign_note("t\n", (NAME, LOG), ("other.example", OTHER)))
    log_key, other_key = verifier_key(NAME, LOG), verifier_key("other.example", OTHER)
    assert verify_note(signed, [log_key]) == [log_key]
    assert verify_note(signed, [log_key, other_key]) == [log_key, other_key]


def test_unknown_signatures_are_ignored() -> None:
    stranger = private_key("stranger")
    note = parse_note(sign_note("t\n", ("stranger.example", stranger), (NAME, LOG)))
    assert verify_note(note, [verifier_key(NAME, LOG)]) == [verifier_key(NAME, LOG)]
    # Same name, other key ID: not this key's signature, ignored.
    impostor = signature("t\n", NAME, OTHER)
    note2 = Note("t\n", (impostor, *note.signatures))
    assert verify_note(note2, [verifier_key(NAME, LOG)]) == [verifier_key(NAME, LOG)]


def test_no_trusted_signature_fails() -> None:
    note = parse_note(sign_note("t\n", ("other.example", OTHER)))
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        verify_note(note, [verifier_key(NAME, LOG)])


def test_empty_trust_fails_closed() -> None:
    note = parse_note(sign_note("t\n", (NAME, LOG)))
    with pytest.raises(VerificationError, match="no trusted keys"):
        verify_note(note, [])


def test_bad_signature_by_a_trusted_key_fails_even_with_a_good_one() -> None:
    good = signature("t\n", NAME, LOG)
    forged = NoteSignature(NAME, good.key_id, bytes(64))
    for sigs in ((forged,), (good, forged), (forged, good)):
        with pytest.raises(VerificationError):
            verify_note(Note("t\n", sigs), [verifier_key(NAME, LOG)])


def test_flipped_signature_bit_fails() -> None:
    good = signature("t\n", NAME, LOG)
    for i in range(0, 64, 7):
        bad = bytearray(good.signature)
        bad[i] ^= 0x10
        with pytest.raises(VerificationError, match="invalid signature"):
            verify_note(
                Note("t\n", (NoteSignature(NAME, good.key_id, bytes(bad)),)),
                [verifier_key(NAME, LOG)],
            )


def test_wrong_length_signature_fails() -> None:
    good = signature("t\n", NAME, LOG)
    for sig in (good.signature[:-1], good.signature + b"\x00", b"x"):
        with pytest.raises(VerificationError, match="wrong length"):
            verify_note(
                Note("t\n", (NoteSignature(NAME, good.key_id, sig),)), [verifier_key(NAME, LOG)]
            )


def test_duplicate_signature_by_one_key_fails() -> None:
    good = signature("t\n", NAME, LOG)
    with pytest.raises(VerificationError, match="two signatures"):
        verify_note(Note("t\n", (good, good)), [verifier_key(NAME, LOG)])


def test_with_signatures_adds_without_duplicates() -> None:
    a = signature("t\n", NAME, LOG)
    b = signature("t\n", "other.example", OTHER)
    note = Note("t\n", (a,)).with_signatures([a, b, b])
    assert note.signatures == (a, b)


def test_signature_over_the_text_only() -> None:
    # The signed message is the text including its final newline, nothing more.
    sig = signature("t\n", NAME, LOG)
    verifier_key(NAME, LOG).verify(b"t\n", sig.signature)
    with pytest.raises(VerificationError):
        verifier_key(NAME, LOG).verify(b"t\n\n", sig.signature)
    with pytest.raises(VerificationError):
        verifier_key(NAME, LOG).verify(b"t", sig.signature)
