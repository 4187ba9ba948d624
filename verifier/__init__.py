"""Offline verifier: the definitions of validity for the evidence ledger.

Depends only on ``cryptography``; imports nothing from ``ledger`` or ``api``.
"""

from verifier.canonical import canonicalize, loads_canonical, loads_strict
from verifier.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from verifier.errors import Error, MalformedError, VerificationError
from verifier.logaudit import CheckResult, LogAudit, audit_log
from verifier.merkle import (
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from verifier.note import Note, NoteSignature, VerifierKey, parse_note, verify_note

__all__ = [
    "CheckResult",
    "Checkpoint",
    "Error",
    "LogAudit",
    "MalformedError",
    "Note",
    "NoteSignature",
    "SignedCheckpoint",
    "VerificationError",
    "VerifierKey",
    "audit_log",
    "canonicalize",
    "leaf_hash",
    "loads_canonical",
    "loads_strict",
    "node_hash",
    "open_checkpoint",
    "parse_note",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
    "verify_note",
]
