"""C2SP signed-note: notes, Ed25519 signatures, key IDs and verifier keys.

A note is UTF-8 text ending in a newline, followed by a blank line and one or
more signature lines ``— <name> base64(key ID || signature)``. A verifier key
is written ``<name>+<hex key ID>+base64(type || public key)``; the key ID is
the first four bytes of ``SHA-256(name || 0x0A || type || public key)``.

Two key types are understood: 0x01, a plain Ed25519 note signature (the log's
own key), and 0x04, a C2SP tlog-cosignature/v1 Ed25519 cosignature (a
witness), whose signature is ``u64 timestamp || Ed25519 signature`` over
``cosignature/v1\ntime <timestamp>\n`` followed by the note text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from verifier.errors import MalformedError, VerificationError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "Note",
    "NoteSignature",
    "VerifierKey",
    "b64decode_strict",
    "cosigned_message",
    "key_id",
    "parse_note",
    "parse_signature_lines",
    "verify_note",
]

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
_ALGS = {ALG_ED25519: "Ed25519", ALG_COSIGNATURE_V1: "Ed25519 cosignature/v1"}
_SIG_SIZES = {ALG_ED25519: 64, ALG_COSIGNATURE_V1: 8 + 64}
_MAX_TIMESTAMP = 2**63 - 1
_DASH = "\u2014 "
_MAX_SIGNATURES = 100
_HEX_ID = re.compile(r"[0-9a-f]{8}")


def b64decode_strict(text: str, what: str) -> bytes:
    """Decode standard padded base64, refusing anything non-canonical."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise MalformedError(f"{what}: invalid base64") from e
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedError(f"{what}: non-canonical base64")
    return raw


def _check_name(name: str, what: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise MalformedError(f"{what}: key name {name!r} is empty or has '+' or whitespace")


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """Return the 4-byte signed-note key ID of a key."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()[:4]


def cosigned_message(text: str, timestamp: int) -> bytes:
    """The message a C2SP tlog-cosignature/v1 (Ed25519) cosigner signs.

    Two header lines, ``cosignature/v1`` and ``time <timestamp>``, followed by
    the whole note text (the checkpoint body, final newline included).
    """
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise MalformedError(f"cosignature: timestamp {timestamp} is out of range")
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A signed-note verifier key (``name+hash+base64``): Ed25519 (type 0x01)
    or a tlog-cosignature/v1 Ed25519 cosigner (type 0x04)."""

    name: str
    key_id: bytes
    public_key: bytes
    alg: int = ALG_ED25519

    @classmethod
    def from_text(cls, text: str) -> VerifierKey:
        """Parse ``name+hexid+base64(type || key)``, checking the key ID."""
        # Split at the first two '+' only: standard base64 may itself contain '+'.
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise MalformedError("verifier key: expected name+hash+key")
        name, hex_id, b64 = parts
        _check_name(name, "verifier key")
        if not _HEX_ID.fullmatch(hex_id):
            raise MalformedError("verifier key: key hash must be 8 lowercase hex digits")
        kid = bytes.fromhex(hex_id)
        raw = b64decode_strict(b64, "verifier key")
        if len(raw) != 33 or raw[0] not in _ALGS:
            raise MalformedError(
                "verifier key: not an Ed25519 key (type 0x01 or cosignature 0x04, 32 bytes)"
            )
        if key_id(name, raw[0], raw[1:]) != kid:
            raise MalformedError("verifier key: key hash does not match name and key")
        return cls(name=name, key_id=kid, public_key=raw[1:], alg=raw[0])

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes, alg: int = ALG_ED25519) -> VerifierKey:
        """Build the verifier key of type ``alg`` for an Ed25519 public key under ``name``."""
        _check_name(name, "verifier key")
        if alg not in _ALGS:
            raise MalformedError(f"verifier key: unsupported key type 0x{alg:02x}")
        if len(public_key) != 32:
            raise MalformedError("verifier key: Ed25519 public keys have 32 bytes")
        return cls(name=name, key_id=key_id(name, alg, public_key), public_key=public_key, alg=alg)

    def to_text(self) -> str:
        """Serialise as ``name+hexid+base64(type || key)``."""
        b64 = base64.b64encode(bytes([self.alg]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{b64}"

    @property
    def signature_size(self) -> int:
        """Bytes of a note signature by this key (after the 4-byte key ID)."""
        return _SIG_SIZES[self.alg]

    def verify(self, message: bytes, signature: bytes) -> None:
        """Verify an Ed25519 signature over ``message``; raise on failure."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError) as e:
            raise VerificationError(f"note: invalid signature by {self.name}") from e

    def verify_note_signature(self, text: str, signature: bytes) -> int | None:
        """Verify one note signature over ``text`` by this key; raise on failure.

        For a cosigner key (0x04) the signature is ``u64 timestamp || Ed25519``
        over :func:`cosigned_message`; the timestamp is returned. Plain Ed25519
        keys return ``None``.
        """
        if len(signature) != self.signature_size:
            raise VerificationError(f"note: signature by {self.name} has the wrong length")
        if self.alg == ALG_ED25519:
            self.verify(text.encode("utf-8"), signature)
            return None
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > _MAX_TIMESTAMP:
            raise VerificationError(f"note: cosignature by {self.name} has a timestamp >= 2^63")
        self.verify(cosigned_message(text, timestamp), signature[8:])
        return timestamp


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a note."""

    name: str
    key_id: bytes
    signature: bytes

    def to_line(self) -> str:
        """Serialise as ``— name base64(keyid || sig)`` plus newline."""
        b64 = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{_DASH}{self.name} {b64}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed signed note: the signed text and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_text(self) -> str:
        """Serialise the note with all its signatures."""
        return self.text + "\n" + "".join(s.to_line() for s in self.signatures)

    def with_signatures(self, extra: Iterable[NoteSignature]) -> Note:
        """Return a copy with ``extra`` signatures appended (no duplicates)."""
        seen = {(s.name, s.key_id, s.signature) for s in self.signatures}
        added: list[NoteSignature] = []
        for s in extra:
            if (s.name, s.key_id, s.signature) not in seen:
                seen.add((s.name, s.key_id, s.signature))
                added.append(s)
        return Note(self.text, self.signatures + tuple(added))


def parse_note(data: str | bytes) -> Note:
    """Parse a signed note strictly (C2SP signed-note).

    The text must be valid UTF-8 without control characters other than
    newline, end in a newline, and be separated from its signature block by
    exactly one blank line. Signature lines must be well formed even when they
    come from unknown keys.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedError("note: not valid UTF-8") from e
    if any((c < " " and c != "\n") or c == "\x7f" for c in data):
        raise MalformedError("note: control character in note")
    if not data.endswith("\n"):
        raise MalformedError("note: does not end in a newline")
    split = data.rfind("\n\n")
    if split < 0:
        raise MalformedError("note: no blank line before the signatures")
    text, block = data[: split + 1], data[split + 2 :]
    if not text.strip("\n"):
        raise MalformedError("note: empty text")
    return Note(text=text, signatures=parse_signature_lines(block))


def parse_signature_lines(block: str) -> tuple[NoteSignature, ...]:
    """Parse a block of one or more newline-terminated signature lines.

    This is the signature part of a note, and also the body a C2SP
    tlog-witness returns from ``add-checkpoint``.
    """
    if block and not block.endswith("\n"):
        raise MalformedError("note: signature block does not end in a newline")
    if any((c < " " and c != "\n") or c == "\x7f" for c in block):
        raise MalformedError("note: control character in note")
    sigs: list[NoteSignature] = []
    for line in block[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise MalformedError("note: signature line does not start with an em dash")
        fields = line[len(_DASH) :].split(" ")
        if len(fields) != 2:
            raise MalformedError("note: signature line must be '— name signature'")
        name, b64 = fields
        _check_name(name, "note")
        raw = b64decode_strict(b64, "note: signature")
        if len(raw) < 5:
            raise MalformedError("note: signature too short")
        sigs.append(NoteSignature(name=name, key_id=raw[:4], signature=raw[4:]))
        if len(sigs) > _MAX_SIGNATURES:
            raise MalformedError(f"note: more than {_MAX_SIGNATURES} signatures")
    return tuple(sigs)


def verify_note(note: Note, keys: Sequence[VerifierKey]) -> list[VerifierKey]:
    """Verify ``note`` against trusted ``keys``; return the keys that signed it.

    Signatures whose name and key ID match no trusted key are ignored. A
    signature from a trusted key that does not verify is an error, as is a
    note that no trusted key signed (fail closed: an empty key list fails).
    Cosigner keys (type 0x04) verify tlog-cosignature/v1 signatures.
    """
    if not keys:
        raise VerificationError("note: no trusted keys given")
    by_id = {(k.name, k.key_id): k for k in keys}
    signed: list[VerifierKey] = []
    for sig in note.signatures:
        key = by_id.get((sig.name, sig.key_id))
        if key is None:
            continue
        if key in signed:
            raise VerificationError(f"note: two signatures by {key.name}")
        key.verify_note_signature(note.text, sig.signature)
        signed.append(key)
    if not signed:
        raise VerificationError("note: no signature by a trusted key")
    return signed
