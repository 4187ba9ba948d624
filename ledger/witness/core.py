"""A C2SP tlog-witness: check a log's new checkpoint against what it cosigned before.

The witness follows logs by their verifier keys. ``add-checkpoint`` requests
carry an old size, a consistency proof and the new checkpoint; the witness
answers with a tlog-cosignature/v1 line only if the checkpoint is signed by a
followed key and provably extends the latest checkpoint it cosigned for that
origin. It never cosigns two different trees of the same log.

A witness home (``--home``) holds ``witness.json`` (its name),
``keys/witness.key`` (Ed25519, mode 0600) and ``witness.db`` (its state, see
:mod:`ledger.witness.store`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ledger.errors import ConfigError, LedgerError
from ledger.events import format_time
from ledger.files import private_dir
from ledger.keys import NoteSigner, generate_key_file, load_signer
from ledger.witness.store import Cosigned, WitnessStore
from verifier.checkpoint import Checkpoint
from verifier.cosignature import cosignature_line
from verifier.errors import Error as VerifierError
from verifier.errors import MalformedError, VerificationError
from verifier.merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from verifier.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Note,
    NoteSignature,
    VerifierKey,
    b64decode_strict,
    cosigned_message,
    parse_note,
    verify_note,
)

__all__ = [
    "MAX_PROOF_LINES",
    "MAX_REQUEST_BYTES",
    "AddCheckpoint",
    "BadProof",
    "Conflict",
    "Cosigner",
    "Forbidden",
    "MalformedRequest",
    "UnknownLog",
    "Witness",
    "WitnessError",
    "format_add_checkpoint",
    "parse_add_checkpoint",
]

HOME_FORMAT = "evidence-witness-home/1"
MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = 64 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~:/-]{0,253}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


class WitnessError(LedgerError):
    """A refused ``add-checkpoint`` request; ``status`` is its HTTP status code."""

    status = 400


class MalformedRequest(WitnessError):
    """The request body is not an old size line, proof lines and a checkpoint (400)."""

    status = 400


class UnknownLog(WitnessError):
    """The checkpoint's origin is not a log this witness follows (404)."""

    status = 404


class Forbidden(WitnessError):
    """No followed key signed the checkpoint, or its signature is invalid (403)."""

    status = 403


class Conflict(WitnessError):
    """The old size is not the size last cosigned, or a different root was
    cosigned for this size (409); ``size`` is the size last cosigned."""

    status = 409

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class BadProof(WitnessError):
    """The consistency proof does not verify (422)."""

    status = 422


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    """A parsed ``add-checkpoint`` request body."""

    old_size: int
    proof: tuple[bytes, ...]
    note: Note
    checkpoint: Checkpoint


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note_text: str) -> bytes:
    """The request body: ``old N``, one base64 hash per line, a blank line, the note."""
    lines = [f"old {old_size}\n"]
    lines.extend(base64.b64encode(h).decode("ascii") + "\n" for h in proof)
    return ("".join(lines) + "\n" + note_text).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse a request body strictly (C2SP tlog-witness ``add-checkpoint``).

    (1) size limit and UTF-8; (2) ``old <decimal>`` without leading zeros;
    (3) at most 63 proof lines, each the canonical base64 of a 32-byte hash;
    (4) an empty line; (5) a signed note whose text is a checkpoint.
    """
    if len(body) > MAX_REQUEST_BYTES:  # (1)
        raise MalformedRequest(f"request: larger than {MAX_REQUEST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedRequest("request: not valid UTF-8") from e
    head, sep, rest = text.partition("\n")
    if not sep or not head.startswith("old ") or not _DECIMAL.fullmatch(head[4:]):  # (2)
        raise MalformedRequest("request: first line must be 'old <size>' (decimal, no zeros)")
    old_size = int(head[4:])
    proof: list[bytes] = []
    while True:
        line, sep, rest = rest.partition("\n")
        if not sep:
            raise MalformedRequest("request: no empty line before the checkpoint")
        if line == "":  # (4)
            break
        if len(proof) == MAX_PROOF_LINES:  # (3)
            raise MalformedRequest(f"request: more than {MAX_PROOF_LINES} proof lines")
        try:
            h = b64decode_strict(line, "request: proof line")
        except MalformedError as e:
            raise MalformedRequest(str(e)) from e
        if len(h) != HASH_SIZE:
            raise MalformedRequest(f"request: proof hash has {len(h)} bytes, expected 32")
        proof.append(h)
    try:  # (5)
        note = parse_note(rest)
        cp = Checkpoint.from_text(note.text)
    except MalformedError as e:
        raise MalformedRequest(f"request: {e}") from e
    return AddCheckpoint(old_size, tuple(proof), note, cp)


def check_witness_name(name: str) -> str:
    """A witness name: a schema-less URL, usable as a signed-note key name."""
    if not _NAME.fullmatch(name) or "+" in name or "://" in name:
        raise ConfigError(
            f"witness name: {name!r} is not a schema-less URL (e.g. witness.example/w1)"
        )
    return name


@dataclass(frozen=True, slots=True)
class Cosigner:
    """Signs tlog-cosignature/v1 lines; the private key never leaves it."""

    signer: NoteSigner

    def __repr__(self) -> str:
        return f"Cosigner(name={self.signer.name!r})"

    @property
    def verifier_key(self) -> VerifierKey:
        """The witness's public key in ``name+hash+base64(0x04 || key)`` form."""
        ed = self.signer.verifier_key
        return VerifierKey.from_public_key(ed.name, ed.public_key, ALG_COSIGNATURE_V1)

    def cosign(self, text: str, timestamp: int) -> NoteSignature:
        """Cosign a checkpoint body at ``timestamp`` (POSIX seconds, > 0)."""
        sig = self.signer.sign(cosigned_message(text, timestamp))
        return cosignature_line(self.verifier_key, timestamp, sig)


class Witness:
    """A witness home: its key, the logs it follows and what it cosigned."""

    def __init__(
        self, home: Path, cosigner: Cosigner, store: WitnessStore, clock: Callable[[], float]
    ) -> None:
        self.home = home
        self.cosigner = cosigner
        self.store = store
        self._clock = clock

    @classmethod
    def init(cls, home: Path, name: str) -> Witness:
        """Create a witness home with a new key under ``name``."""
        check_witness_name(name)
        cfg = home / "witness.json"
        if cfg.exists():
            raise ConfigError(f"witness: {home} already holds a witness")
        private_dir(home)
        generate_key_file(home / "keys" / "witness.key")
        store = WitnessStore(home / "witness.db", create=True)
        tmp = home / "witness.json.tmp"
        tmp.write_text(json.dumps({"format": HOME_FORMAT, "name": name}, indent=2) + "\n")
        os.replace(tmp, cfg)
        return cls(
            home, Cosigner(load_signer(home / "keys" / "witness.key", name)), store, time.time
        )

    @classmethod
    def open(cls, home: Path, clock: Callable[[], float] = time.time) -> Witness:
        """Open an existing witness home."""
        path = home / "witness.json"
        try:
            raw = json.loads(path.read_text("utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"witness: no witness in {home} (run 'witness init')") from e
        except (OSError, ValueError) as e:
            raise ConfigError(f"witness: cannot read {path} ({e})") from e
        if not isinstance(raw, dict) or raw.get("format") != HOME_FORMAT:
            raise ConfigError(f"witness: {path} is not a witness configuration")
        name = check_witness_name(str(raw.get("name", "")))
        signer = load_signer(home / "keys" / "witness.key", name)
        return cls(home, Cosigner(signer), WitnessStore(home / "witness.db"), clock)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Witness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def name(self) -> str:
        return self.cosigner.signer.name

    @property
    def verifier_key(self) -> VerifierKey:
        return self.cosigner.verifier_key

    def follow(self, log_vkey: str) -> VerifierKey:
        """Follow the log whose checkpoints ``log_vkey`` signs (origin = key name)."""
        try:
            key = VerifierKey.from_text(log_vkey)
        except MalformedError as e:
            raise ConfigError(str(e)) from e
        if key.alg != ALG_ED25519:
            raise ConfigError("verifier key: a log key must be an Ed25519 key (type 0x01)")
        self.store.follow(key.name, key.to_text(), format_time(datetime.now(UTC)))
        return key

    def _log_keys(self, origin: str) -> list[VerifierKey]:
        return [VerifierKey.from_text(v) for v in self.store.log_keys(origin)]

    def add_checkpoint(self, body: bytes) -> str:
        """Handle one ``add-checkpoint`` request; return the cosignature line(s).

        (1) parse the request (400); (2) the origin must be followed (404);
        (3) a followed key must have signed the checkpoint, and every followed
        key's signature present must verify (403); (4) the old size must not
        exceed the checkpoint size (400); then, holding the database's write
        lock: (5) the old size must be the size last cosigned (409, with that
        size); (6) for an equal size the root must be the one cosigned (409);
        (7) the consistency proof from the cosigned root must verify (422);
        (8) cosign, record the checkpoint, commit, and only then answer.
        Requests that show the log misbehaving, (6) and (7), are recorded.
        """
        req = parse_add_checkpoint(body)  # (1)
        cp = req.checkpoint
        keys = self._log_keys(cp.origin)  # (2)
        if not keys:
            raise UnknownLog(f"unknown log origin {cp.origin!r}")
        try:  # (3)
            verify_note(req.note, keys)
        except VerifierError as e:
            raise Forbidden(f"checkpoint signature: {e}") from e
        if req.old_size > cp.size:  # (4)
            raise MalformedRequest(f"old size {req.old_size} is larger than {cp.size}")
        misbehaviour: WitnessError | None = None
        with self.store.transaction() as c:
            latest = WitnessStore.latest_in(c, cp.origin)
            size = latest.size if latest else 0
            if req.old_size != size:  # (5)
                raise Conflict(
                    f"old size {req.old_size} is not the size last cosigned ({size})", size
                )
            old_root = latest.root if latest else EMPTY_ROOT
            if size == cp.size and old_root != cp.root:  # (6)
                misbehaviour = Conflict(
                    f"a different root was cosigned for size {size} (split view?)", size
                )
            else:
                try:  # (7)
                    verify_consistency(size, cp.size, req.proof, old_root, cp.root)
                except VerificationError as e:
                    misbehaviour = BadProof(
                        f"checkpoint {cp.size} is not consistent with cosigned {size}: {e}"
                    )
            if misbehaviour is None:  # (8)
                now = self._clock()
                line = self.cosigner.cosign(req.note.text, max(1, int(now)))
                stamp = format_time(datetime.fromtimestamp(now, UTC))
                WitnessStore.record_cosigned(
                    c, Cosigned(cp.origin, cp.size, cp.root, stamp), req.note.to_text()
                )
        if misbehaviour is not None:
            self.store.record_refusal(
                cp.origin,
                format_time(datetime.now(UTC)),
                misbehaviour.status,
                str(misbehaviour),
                body.decode("utf-8"),
            )
            raise misbehaviour
        return line.to_line()
