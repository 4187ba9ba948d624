"""Witness service: C2SP tlog-witness ``add-checkpoint`` over a log's checkpoints."""

from ledger.witness.core import (
    AddCheckpoint,
    BadProof,
    Conflict,
    Cosigner,
    Forbidden,
    MalformedRequest,
    UnknownLog,
    Witness,
    WitnessError,
    format_add_checkpoint,
    parse_add_checkpoint,
)

__all__ = [
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
