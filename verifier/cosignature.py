"""C2SP tlog-cosignature/v1: witness cosignatures on checkpoints, k-of-n policy.

A witness (cosigner) vouches that a checkpoint is consistent with everything it
has seen of that log. Its cosignature is a signed-note signature line whose key
ID is computed with type 0x04 and whose signature is ``u64 timestamp ||
Ed25519(cosignature/v1\\ntime <timestamp>\\n<checkpoint body>)``
(:func:`verifier.note.cosigned_message`).

A :class:`WitnessPolicy` names the trusted witness keys and how many of them
must have cosigned (the quorum). :func:`verify_cosignatures` applies it and
fails closed: lines from unknown keys are ignored and never count, a line from
a trusted witness that does not verify is an error, and fewer distinct
witnesses than the quorum is an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from verifier.checkpoint import SignedCheckpoint, open_checkpoint
from verifier.errors import MalformedError, VerificationError
from verifier.note import (
    ALG_COSIGNATURE_V1,
    Note,
    NoteSignature,
    VerifierKey,
)

__all__ = [
    "Cosignature",
    "WitnessPolicy",
    "cosignature_line",
    "open_cosigned_checkpoint",
    "verify_cosignatures",
]

MAX_CLOCK_SKEW = 600
"""Seconds a cosignature's timestamp may lie ahead of the verifier's clock."""


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified cosignature: which witness, and the time it says it signed."""

    witness: VerifierKey
    timestamp: int

    @property
    def name(self) -> str:
        return self.witness.name


def cosignature_line(witness: VerifierKey, timestamp: int, signature: bytes) -> NoteSignature:
    """The note signature a witness returns: key ID, then ``u64 timestamp || sig``."""
    if witness.alg != ALG_COSIGNATURE_V1:
        raise MalformedError(f"cosignature: {witness.name} is not a cosigner key (type 0x04)")
    if len(signature) != 64 or not 0 <= timestamp < 2**63:
        raise MalformedError("cosignature: needs a 64-byte signature and a 63-bit timestamp")
    return NoteSignature(witness.name, witness.key_id, timestamp.to_bytes(8, "big") + signature)


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    """Trusted witness keys and the number of them that must cosign (k of n).

    Construction refuses policies that cannot be met or could be met by one
    witness twice: no keys, a quorum below 1 or above the number of keys,
    keys that are not cosigner keys (type 0x04), duplicate names, and one
    public key under two names (the v1 message does not commit to the name,
    so the same key would otherwise count once per name).
    """

    keys: tuple[VerifierKey, ...]
    quorum: int

    def __post_init__(self) -> None:
        if not self.keys:
            raise MalformedError("witness policy: no witness keys")
        if not 1 <= self.quorum <= len(self.keys):
            raise MalformedError(
                f"witness policy: quorum {self.quorum} is not between 1 and {len(self.keys)}"
            )
        for k in self.keys:
            if k.alg != ALG_COSIGNATURE_V1:
                raise MalformedError(
                    f"witness policy: {k.name} is not a cosignature key (type 0x04)"
                )
        if len({k.name for k in self.keys}) != len(self.keys):
            raise MalformedError("witness policy: two witness keys share a name")
        if len({k.public_key for k in self.keys}) != len(self.keys):
            raise MalformedError("witness policy: one public key appears under two names")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> WitnessPolicy:
        """Parse ``{"quorum": int, "keys": [{"name": str, "vkey": str}, ...]}``.

        This is the ``witnesses`` member of an ``evidence-trust/v1`` file; the
        ``name`` must be the name inside the ``vkey``.
        """
        quorum = obj.get("quorum")
        entries = obj.get("keys")
        if not isinstance(quorum, int) or isinstance(quorum, bool):
            raise MalformedError("witness policy: quorum must be an integer")
        if not isinstance(entries, list):
            raise MalformedError("witness policy: keys must be a list")
        keys: list[VerifierKey] = []
        for i, e in enumerate(entries):
            if not isinstance(e, Mapping) or not isinstance(e.get("vkey"), str):
                raise MalformedError(f"witness policy: keys[{i}] needs a vkey string")
            key = VerifierKey.from_text(e["vkey"])
            if e.get("name") != key.name:
                raise MalformedError(
                    f"witness policy: keys[{i}] is named {e.get('name')!r} "
                    f"but its vkey is {key.name!r}"
                )
            keys.append(key)
        return cls(keys=tuple(keys), quorum=quorum)

    def to_json(self) -> dict[str, Any]:
        """The ``witnesses`` member of an ``evidence-trust/v1`` file."""
        return {
            "quorum": self.quorum,
            "keys": [{"name": k.name, "vkey": k.to_text()} for k in self.keys],
        }


def _matching(
    signatures: Iterable[NoteSignature], keys: Sequence[VerifierKey]
) -> list[tuple[VerifierKey, NoteSignature]]:
    by_id = {(k.name, k.key_id): k for k in keys}
    out: list[tuple[VerifierKey, NoteSignature]] = []
    for sig in signatures:
        key = by_id.get((sig.name, sig.key_id))
        if key is not None:
            out.append((key, sig))
    return out


def verify_cosignatures(
    note: Note, policy: WitnessPolicy, *, now: datetime | None = None
) -> list[Cosignature]:
    """Verify a note's cosignatures against ``policy``; return the ones that count.

    (1) keep the signature lines whose name and key ID match a policy key,
    ignoring all others (the log's own signature, unknown witnesses);
    (2) refuse two lines from the same witness; (3) verify each as a
    tlog-cosignature/v1 over the note text, where a failure is an error;
    (4) with ``now``, refuse timestamps more than :data:`MAX_CLOCK_SKEW`
    seconds in the future; (5) require at least ``policy.quorum`` witnesses.
    """
    found = _matching(note.signatures, policy.keys)  # (1)
    out: list[Cosignature] = []
    seen: set[str] = set()
    for key, sig in found:
        if key.name in seen:  # (2)
            raise VerificationError(f"cosignature: two cosignatures by {key.name}")
        seen.add(key.name)
        try:
            ts = key.verify_note_signature(note.text, sig.signature)  # (3)
        except VerificationError as e:
            raise VerificationError(f"cosignature: invalid cosignature by {key.name}") from e
        assert ts is not None  # policy keys are cosigner keys
        if now is not None and ts > now.timestamp() + MAX_CLOCK_SKEW:  # (4)
            raise VerificationError(
                f"cosignature: {key.name} signed at {ts}, in the future of {int(now.timestamp())}"
            )
        out.append(Cosignature(witness=key, timestamp=ts))
    if len(out) < policy.quorum:  # (5)
        names = ", ".join(c.name for c in out) or "none"
        raise VerificationError(
            f"cosignature: {len(out)} of {len(policy.keys)} trusted witnesses cosigned "
            f"({names}), quorum is {policy.quorum}"
        )
    return out


def open_cosigned_checkpoint(
    text: str | bytes,
    log_keys: Sequence[VerifierKey],
    policy: WitnessPolicy,
    origin: str | None = None,
    *,
    now: datetime | None = None,
) -> tuple[SignedCheckpoint, list[Cosignature]]:
    """Parse a checkpoint, verify the log's signature, then the witness quorum.

    (1) :func:`verifier.checkpoint.open_checkpoint` (origin and log key);
    (2) :func:`verify_cosignatures` with ``policy``.
    """
    signed = open_checkpoint(text, log_keys, origin)  # (1)
    return signed, verify_cosignatures(signed.note, policy, now=now)  # (2)
