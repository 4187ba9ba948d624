"""Public proof endpoints over the published log (no account needed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ServicesDep
from api.schemas import ConsistencyPublic, problem_responses

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["proofs"], responses=problem_responses(404, 422))


@router.get("/proofs/consistency", response_model=ConsistencyPublic)
def consistency(
    services: ServicesDep,
    old: Annotated[int, Query(ge=0, le=2**53)],
    new: Annotated[int, Query(ge=0, le=2**53)],
) -> ConsistencyPublic:
    """RFC 9162 consistency proof between two published checkpoints."""
    return ConsistencyPublic.model_validate(services.log.consistency(old, new).to_json())
