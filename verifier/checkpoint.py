"""C2SP tlog-checkpoint bodies: origin, tree size, root hash, extension lines."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from verifier.errors import MalformedError, VerificationError
from verifier.merkle import HASH_SIZE
from verifier.note import Note, VerifierKey, b64decode_strict, parse_note, verify_note

__all__ = ["Checkpoint", "SignedCheckpoint", "open_checkpoint"]

_MAX_SIZE = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The body of a checkpoint (C2SP tlog-checkpoint)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body strictly: decimal size without leading zeros,
        canonical base64 of a 32-byte root, non-empty extension lines."""
        if not text.endswith("\n"):
            raise MalformedError("checkpoint: body does not end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedError("checkpoint: body needs origin, size and root lines")
        origin, size_s, root_s, *ext = lines
        if not origin or origin != origin.strip():
            raise MalformedError("checkpoint: empty or padded origin line")
        if not size_s.isdigit() or not size_s.isascii() or (size_s != "0" and size_s[0] == "0"):
            raise MalformedError(f"checkpoint: size {size_s!r} is not a canonical decimal")
        size = int(size_s)
        if size > _MAX_SIZE:
            raise MalformedError("checkpoint: size does not fit in 63 bits")
        root = b64decode_strict(root_s, "checkpoint: root")
        if len(root) != HASH_SIZE:
            raise MalformedError(f"checkpoint: root has {len(root)} bytes, expected {HASH_SIZE}")
        if any(not line for line in ext):
            raise MalformedError("checkpoint: empty extension line")
        return cls(origin=origin, size=size, root=root, extensions=tuple(ext))

    def to_text(self) -> str:
        """Serialise the body (the text a log signs)."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        return "\n".join([*lines, *self.extensions]) + "\n"


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint together with the note that carries it and its signatures."""

    checkpoint: Checkpoint
    note: Note


def open_checkpoint(
    text: str | bytes, log_keys: Sequence[VerifierKey], origin: str | None = None
) -> SignedCheckpoint:
    """Parse and verify a signed checkpoint.

    (1) parse the note; (2) parse its body as a checkpoint; (3) require the
    expected origin when one is given; (4) require a valid signature by a
    trusted log key whose name is the origin.
    """
    note = parse_note(text)  # (1)
    cp = Checkpoint.from_text(note.text)  # (2)
    if origin is not None and cp.origin != origin:  # (3)
        raise VerificationError(f"checkpoint: origin {cp.origin!r}, expected {origin!r}")
    named = [k for k in log_keys if k.name == cp.origin]  # (4)
    if not named:
        raise VerificationError(f"checkpoint: no trusted log key for origin {cp.origin!r}")
    verify_note(note, named)
    return SignedCheckpoint(checkpoint=cp, note=note)
