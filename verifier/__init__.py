"""Offline verifier: the definitions of validity for the evidence ledger.

Depends only on ``cryptography`` (and ``rfc3161-client`` for RFC 3161
tokens); imports nothing from ``ledger`` or ``api``.
"""

import importlib
from typing import TYPE_CHECKING, Any

from verifier.canonical import canonicalize, loads_canonical, loads_strict
from verifier.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from verifier.errors import Error, MalformedError, VerificationError
from verifier.merkle import (
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from verifier.note import Note, NoteSignature, VerifierKey, parse_note, verify_note

if TYPE_CHECKING:
    from verifier.certificate import Certificate, verify_certificate
    from verifier.cosignature import WitnessPolicy, open_cosigned_checkpoint, verify_cosignatures
    from verifier.logaudit import CheckResult, LogAudit, audit_log
    from verifier.package import verify_package
    from verifier.report import Report
    from verifier.timestamp import TimestampInfo, verify_timestamp
    from verifier.trust import Trust, load_trust, read_trust

# Imported on first use (PEP 562): the command line must start fast, and the
# log audit (multiprocessing) or certificates are not needed by every caller.
_LAZY = {
    "CheckResult": "verifier.logaudit",
    "LogAudit": "verifier.logaudit",
    "audit_log": "verifier.logaudit",
    "Certificate": "verifier.certificate",
    "verify_certificate": "verifier.certificate",
    "verify_package": "verifier.package",
    "Report": "verifier.report",
    "Trust": "verifier.trust",
    "load_trust": "verifier.trust",
    "read_trust": "verifier.trust",
    "WitnessPolicy": "verifier.cosignature",
    "open_cosigned_checkpoint": "verifier.cosignature",
    "verify_cosignatures": "verifier.cosignature",
    "TimestampInfo": "verifier.timestamp",
    "verify_timestamp": "verifier.timestamp",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'verifier' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Certificate",
    "CheckResult",
    "Checkpoint",
    "Error",
    "LogAudit",
    "MalformedError",
    "Note",
    "NoteSignature",
    "Report",
    "SignedCheckpoint",
    "TimestampInfo",
    "Trust",
    "VerificationError",
    "VerifierKey",
    "WitnessPolicy",
    "audit_log",
    "canonicalize",
    "leaf_hash",
    "load_trust",
    "loads_canonical",
    "loads_strict",
    "node_hash",
    "open_checkpoint",
    "open_cosigned_checkpoint",
    "parse_note",
    "read_trust",
    "root_from_leaf_hashes",
    "verify_certificate",
    "verify_consistency",
    "verify_cosignatures",
    "verify_inclusion",
    "verify_note",
    "verify_package",
    "verify_timestamp",
]
