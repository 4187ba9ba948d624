"""Public proof endpoints over the published log (no account needed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import LedgerDep
from api.evidence import b64, checkpoint_public
from api.schemas import ConsistencyPublic, problem_responses

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["proofs"], responses=problem_responses(404, 422))


@router.get("/proofs/consistency", response_model=ConsistencyPublic)
def consistency(
    ledger: LedgerDep,
    old: Annotated[int, Query(ge=0, le=2**53)],
    new: Annotated[int, Query(ge=0, le=2**53)],
) -> ConsistencyPublic:
    """RFC 9162 consistency proof between two published checkpoints."""
    a, b, proof = ledger.consistency_proof(old, new)
    hashes = [b64(h) for h in proof]
    return ConsistencyPublic.model_validate(
        {"old": checkpoint_public(a), "new": checkpoint_public(b), "hashes": hashes}
    )
