"""Request and response models of the HTTP API (pydantic only at the edge)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CheckpointPublic",
    "ConsistencyPublic",
    "DepositResponse",
    "EvidenceList",
    "EvidencePublic",
    "HashDeposit",
    "InclusionPublic",
    "Problem",
    "ReceiptPublic",
    "problem_responses",
]

HEX64 = r"^[0-9a-fA-F]{64}$"
TEXT = r"^[^\x00-\x08\x0b-\x1f]*$"  # no control characters but tab and newline


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None


def problem_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for problem-JSON error responses."""
    from http import HTTPStatus

    return {
        code: {
            "model": Problem,
            "description": HTTPStatus(code).phrase,
            "content": {"application/problem+json": {"schema": Problem.model_json_schema()}},
        }
        for code in codes
    }


class HashDeposit(BaseModel):
    """Hash-only deposit (trade secrets): the content never reaches the ledger."""

    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=HEX64, description="SHA-256 of the content, hex")
    sm3: str | None = Field(default=None, pattern=HEX64, description="SM3 of the content, hex")
    title: str | None = Field(default=None, max_length=1000, pattern=TEXT)
    description: str | None = Field(default=None, max_length=10000, pattern=TEXT)


class CheckpointPublic(BaseModel):
    size: int
    root: str = Field(description="base64 root hash")
    note: str = Field(description="the signed checkpoint (C2SP signed note)")


class InclusionPublic(BaseModel):
    """An RFC 9162 inclusion proof of one entry against a published checkpoint."""

    index: int
    leaf_hash: str
    tree_size: int
    hashes: list[str] = Field(description="base64 proof hashes, leaf to root")
    checkpoint: CheckpointPublic


class ReceiptPublic(BaseModel):
    """回执: what a depositor keeps. Returned only once the deposit is durable."""

    evidence_id: str
    deposit_no: str = Field(description="存证编号")
    index: int
    leaf_hash: str
    time: str
    kind: str
    sha256: str
    sm3: str | None = None
    size: int | None = None
    title: str | None = None
    file_name: str | None = None
    status: str = Field(description="durable, or sealed once inside a published checkpoint")
    proof: InclusionPublic | None = None


class DepositResponse(BaseModel):
    receipts: list[ReceiptPublic]


class EvidencePublic(BaseModel):
    evidence_id: str
    deposit_no: str
    index: int
    time: str
    kind: str
    sha256: str
    sm3: str | None = None
    size: int | None = None
    title: str | None = None
    description: str | None = None
    file_name: str | None = None
    media_type: str | None = None
    sealed: bool


class EvidenceList(BaseModel):
    items: list[EvidencePublic]
    next_cursor: int | None = Field(
        default=None, description="pass as ?cursor= for the next page (log index)"
    )


class ConsistencyPublic(BaseModel):
    old: CheckpointPublic
    new: CheckpointPublic
    hashes: list[str] = Field(description="base64 RFC 9162 consistency proof")
