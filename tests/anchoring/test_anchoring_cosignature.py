"""C2SP tlog-cosignature/v1: cosigner keys (type 0x04), the signed message, k-of-n policy.

Adversarial cases named for what they break: a cosignature from an unknown
witness does not count; a cosignature moved to another checkpoint fails; one
witness cannot count twice (same line twice, or one key under two names).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.keys import NoteSigner
from ledger.witness import Cosigner
from verifier.checkpoint import Checkpoint
from verifier.cosignature import (
    WitnessPolicy,
    cosignature_line,
    open_cosigned_checkpoint,
    verify_cosignatures,
)
from verifier.errors import MalformedError, VerificationError
from verifier.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Note,
    NoteSignature,
    VerifierKey,
    cosigned_message,
    key_id,
    parse_note,
    parse_signature_lines,
    verify_note,
)

ORIGIN = "cosign.test/log"
T0 = 1_700_000_000


def _seed_key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


LOG = NoteSigner(ORIGIN, _seed_key("log"))
W = [Cosigner(NoteSigner(f"w{i}.test/witness", _seed_key(f"witness {i}"))) for i in range(4)]
POLICY = WitnessPolicy(tuple(w.verifier_key for w in W[:3]), 2)


def checkpoint(size: int = 7) -> Note:
    root = hashlib.sha256(f"root {size}".encode()).digest()
    return LOG.sign_note(Checkpoint(ORIGIN, size, root).to_text())


def cosigned(note: Note, *witnesses: Cosigner, t: int = T0) -> Note:
    return note.with_signatures(w.cosign(note.text, t) for w in witnesses)


# ---------------------------------------------------------------- keys and message


def test_cosigner_vkey_round_trip_and_key_id() -> None:
    vk = W[0].verifier_key
    assert vk.alg == ALG_COSIGNATURE_V1
    assert base64.b64decode(vk.to_text().split("+", 2)[2])[0] == 0x04
    assert VerifierKey.from_text(vk.to_text()) == vk
    assert vk.key_id == key_id(vk.name, 0x04, vk.public_key)
    plain = W[0].signer.verifier_key  # the same key as a note signer (0x01)
    assert plain.alg == ALG_ED25519 and plain.key_id != vk.key_id
    # Positional construction of a plain key keeps working (alg defaults to 0x01).
    assert VerifierKey(plain.name, plain.key_id, plain.public_key) == plain


def test_unsupported_key_types_are_refused() -> None:
    vk = W[0].verifier_key
    raw = bytes([0x06]) + vk.public_key  # ML-DSA-44's type, with an Ed25519-sized key
    kid = key_id(vk.name, 0x06, vk.public_key).hex()
    with pytest.raises(MalformedError, match="not an Ed25519 key"):
        VerifierKey.from_text(f"{vk.name}+{kid}+{base64.b64encode(raw).decode()}")
    with pytest.raises(MalformedError, match="unsupported key type"):
        VerifierKey.from_public_key(vk.name, vk.public_key, 0x02)


def test_signed_message_is_exactly_the_spec_layout() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert cosigned_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + body.encode()
    )
    with pytest.raises(MalformedError):
        cosigned_message(body, 2**63)


def test_a_cosignature_line_is_key_id_then_timestamp_then_signature() -> None:
    note = checkpoint()
    line = W[0].cosign(note.text, T0)
    assert (line.name, line.key_id) == (W[0].verifier_key.name, W[0].verifier_key.key_id)
    assert int.from_bytes(line.signature[:8], "big") == T0 and len(line.signature) == 72
    msg = cosigned_message(note.text, T0)
    W[0].verifier_key.verify(msg, line.signature[8:])
    assert parse_signature_lines(line.to_line()) == (line,)
    with pytest.raises(MalformedError, match="not a cosigner key"):
        cosignature_line(LOG.verifier_key, T0, bytes(64))


def test_verify_note_checks_cosigner_keys_and_still_ignores_unknown_lines() -> None:
    note = cosigned(checkpoint(), W[0], W[3])
    assert verify_note(note, [LOG.verifier_key]) == [LOG.verifier_key]
    assert verify_note(note, [W[0].verifier_key]) == [W[0].verifier_key]
    assert verify_note(note, [LOG.verifier_key, W[0].verifier_key, W[1].verifier_key]) == [
        LOG.verifier_key,
        W[0].verifier_key,
    ]
    short = Note(
        note.text, (NoteSignature(W[1].verifier_key.name, W[1].verifier_key.key_id, bytes(64)),)
    )
    with pytest.raises(VerificationError, match="wrong length"):
        verify_note(short, [W[1].verifier_key])


# ---------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("keys", "quorum", "message"),
    [
        ((), 1, "no witness keys"),
        ((W[0].verifier_key,), 0, "quorum 0"),
        ((W[0].verifier_key,), 2, "quorum 2"),
        ((W[0].signer.verifier_key,), 1, "not a cosignature key"),
        ((W[0].verifier_key, W[0].verifier_key), 1, "share a name"),
        (
            (
                W[0].verifier_key,
                VerifierKey.from_public_key("alias.test/w", W[0].verifier_key.public_key, 0x04),
            ),
            2,
            "one public key appears under two names",
        ),
    ],
    ids=["empty", "quorum-zero", "quorum-above-n", "log-key", "same-name", "key-two-names"],
)
def test_policies_that_could_be_met_wrongly_are_refused(
    keys: tuple[VerifierKey, ...], quorum: int, message: str
) -> None:
    with pytest.raises(MalformedError, match=message):
        WitnessPolicy(keys, quorum)


def test_policy_json_round_trip_and_errors() -> None:
    obj = POLICY.to_json()
    assert obj == {
        "quorum": 2,
        "keys": [{"name": w.verifier_key.name, "vkey": w.verifier_key.to_text()} for w in W[:3]],
    }
    assert WitnessPolicy.from_json(obj) == POLICY
    renamed = {"quorum": 1, "keys": [{"name": "other", "vkey": W[0].verifier_key.to_text()}]}
    with pytest.raises(MalformedError, match="named 'other'"):
        WitnessPolicy.from_json(renamed)
    with pytest.raises(MalformedError, match="quorum must be an integer"):
        WitnessPolicy.from_json({"quorum": True, "keys": []})
    with pytest.raises(MalformedError, match="keys must be a list"):
        WitnessPolicy.from_json({"quorum": 1, "keys": "w0"})


# ---------------------------------------------------------------- quorum


def test_two_of_three_is_met_and_reports_who_and_when() -> None:
    note = cosigned(checkpoint(), W[2], W[0], t=T0 + 5)
    got = verify_cosignatures(note, POLICY)
    assert [(c.name, c.timestamp) for c in got] == [
        (W[2].verifier_key.name, T0 + 5),
        (W[0].verifier_key.name, T0 + 5),
    ]


def test_one_of_three_is_not_a_quorum() -> None:
    note = cosigned(checkpoint(), W[1])
    with pytest.raises(VerificationError, match=r"1 of 3 trusted witnesses cosigned \(w1"):
        verify_cosignatures(note, POLICY)


def test_cosignature_from_unknown_witness_does_not_count() -> None:
    note = cosigned(checkpoint(), W[0], W[3])  # W[3] is valid but not in the policy
    with pytest.raises(VerificationError, match="1 of 3"):
        verify_cosignatures(note, POLICY)
    # ...nor does a trusted witness's key used as a plain (0x01) note signature.
    plain = W[1].signer.sign_note(note.text).signatures[0]
    with pytest.raises(VerificationError, match="1 of 3"):
        verify_cosignatures(note.with_signatures([plain]), POLICY)


def test_cosignature_over_another_checkpoint_fails() -> None:
    moved = cosigned(checkpoint(8), W[0]).signatures[-1]
    note = cosigned(checkpoint(7), W[1]).with_signatures([moved])
    with pytest.raises(VerificationError, match=r"invalid cosignature by w0\.test/witness"):
        verify_cosignatures(note, POLICY)


def test_one_witness_cannot_count_twice() -> None:
    note = checkpoint()
    a, b = W[0].cosign(note.text, T0), W[0].cosign(note.text, T0 + 1)
    with pytest.raises(VerificationError, match="two cosignatures by w0"):
        verify_cosignatures(note.with_signatures([a, b]), POLICY)


def test_timestamps_are_bound_and_checked() -> None:
    note = checkpoint()
    line = W[0].cosign(note.text, T0)
    later = NoteSignature(line.name, line.key_id, (T0 + 1).to_bytes(8, "big") + line.signature[8:])
    with pytest.raises(VerificationError, match="invalid cosignature"):
        verify_cosignatures(note.with_signatures([later, W[1].cosign(note.text, T0)]), POLICY)
    huge = NoteSignature(line.name, line.key_id, (2**63).to_bytes(8, "big") + line.signature[8:])
    with pytest.raises(VerificationError, match="invalid cosignature"):
        verify_cosignatures(note.with_signatures([huge]), POLICY)
    future = cosigned(note, W[0], W[1], t=T0 + 3600)
    now = datetime.fromtimestamp(T0, UTC)
    with pytest.raises(VerificationError, match="in the future"):
        verify_cosignatures(future, POLICY, now=now)
    assert len(verify_cosignatures(future, POLICY)) == 2


def test_open_cosigned_checkpoint_checks_the_log_then_the_witnesses() -> None:
    note = cosigned(checkpoint(), W[0], W[1])
    signed, cos = open_cosigned_checkpoint(note.to_text(), [LOG.verifier_key], POLICY, ORIGIN)
    assert signed.checkpoint.size == 7 and len(cos) == 2
    other_log = NoteSigner(ORIGIN, _seed_key("other log")).verifier_key
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        open_cosigned_checkpoint(note.to_text(), [other_log], POLICY, ORIGIN)


@settings(max_examples=200, deadline=None)
@given(which=st.integers(0, 1), pos=st.integers(0, 75), bit=st.integers(0, 7))
def test_any_flipped_bit_in_a_cosignature_line_stops_it_counting(
    which: int, pos: int, bit: int
) -> None:
    note = checkpoint()
    lines = [W[0].cosign(note.text, T0), W[1].cosign(note.text, T0)]
    raw = bytearray(lines[which].key_id + lines[which].signature)
    raw[pos] ^= 1 << bit
    lines[which] = NoteSignature(lines[which].name, bytes(raw[:4]), bytes(raw[4:]))
    text = note.with_signatures(lines).to_text()
    with pytest.raises(VerificationError):
        verify_cosignatures(parse_note(text), POLICY)
