"""Published checkpoints with their anchoring: ``GET /v1/checkpoints/{size}``.

``GET /checkpoint`` (tlog-tiles) serves only the latest; this returns any
published one, with the witnesses' cosignatures in its note and the RFC 3161
token over its body, so a certificate can be checked against it years later.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.deps import ServicesDep

__all__ = ["PublishedCheckpoint", "router"]

router = APIRouter(prefix="/v1", tags=["checkpoints"])


class PublishedCheckpoint(BaseModel):
    """A published checkpoint: the signed note with cosignatures, and its token."""

    size: int
    note: str = Field(description="C2SP signed note: log signature, then witness cosignatures")
    token: str | None = Field(
        description="base64 DER RFC 3161 TimeStampToken over SHA-256 of the checkpoint body; "
        "null if published without a TSA"
    )
    time: str = Field(description="when the ledger published it (UTC)")


@router.get(
    "/checkpoints/{size}",
    response_model=PublishedCheckpoint,
    responses={404: {"description": "No checkpoint of that size was published"}},
)
def published_checkpoint(
    size: Annotated[int, Path(ge=0, le=2**63 - 1)], services: ServicesDep
) -> PublishedCheckpoint:
    """The published checkpoint of exactly ``size`` entries, with its RFC 3161 token."""
    pub = services.log.published(size)
    token = None if pub.token is None else base64.b64encode(pub.token).decode("ascii")
    return PublishedCheckpoint(size=pub.size, note=pub.note, token=token, time=pub.time)
