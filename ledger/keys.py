"""Ed25519 signing keys kept in files readable only by their owner (mode 0600)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import ConfigError
from ledger.files import private_dir
from verifier.note import Note, NoteSignature, VerifierKey, parse_note

__all__ = ["NoteSigner", "generate_key_file", "load_signer"]


@dataclass(frozen=True, slots=True)
class NoteSigner:
    """Signs C2SP signed notes under a key name. The private key never leaves it."""

    name: str
    _key: Ed25519PrivateKey

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        return f"NoteSigner(name={self.name!r})"

    @property
    def verifier_key(self) -> VerifierKey:
        raw = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return VerifierKey.from_public_key(self.name, raw)

    def sign(self, message: bytes) -> bytes:
        """Raw Ed25519 signature over ``message``."""
        return self._key.sign(message)

    def sign_note(self, text: str) -> Note:
        """Sign ``text`` (which must end in a newline) as a one-signature note."""
        vk = self.verifier_key
        sig = NoteSignature(self.name, vk.key_id, self._key.sign(text.encode("utf-8")))
        note = Note(text, (sig,))
        parse_note(note.to_text())  # refuses text that would not parse back
        return note


def generate_key_file(path: Path) -> None:
    """Write a new Ed25519 private key (PKCS#8 PEM) with mode 0600, in a
    directory of mode 0700; never overwrite."""
    private_dir(path.parent)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise ConfigError(f"key: {path} already exists") from e
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())


def load_signer(path: Path, name: str) -> NoteSigner:
    """Load an Ed25519 key; refuse missing, unreadable, corrupt or group-readable files."""
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"key: cannot read {path} ({e.strerror})") from e
    if st.st_mode & 0o077:
        raise ConfigError(f"key: {path} is readable by others (mode {st.st_mode & 0o777:o})")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"key: {path} is not a valid private key") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"key: {path} is not an Ed25519 key")
    return NoteSigner(name=name, _key=key)
