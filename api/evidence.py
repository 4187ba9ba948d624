"""在线存证: deposits, receipts, evidence listings, content and proofs.

HTTP over :class:`ledger.services.DepositService` and
:class:`ledger.services.EvidenceService`, which decide who may deposit and
see what (another account's evidence answers 404, never 403).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import ValidationError

from api.auth import Account, permit
from api.deps import ServicesDep
from api.fastpath import fast
from api.schemas import (
    TEXT,
    DepositResponse,
    EvidenceList,
    EvidencePublic,
    HashDeposit,
    InclusionPublic,
    problem_responses,
)
from api.upload import read_upload
from ledger.errors import TooLarge
from ledger.offload import in_thread
from ledger.services import (
    DepositPlan,
    EvidenceFilter,
    EvidenceRecord,
    FileDeposit,
    Services,
)
from ledger.services import HashDeposit as HashDepositIn
from ledger.services.evidence import b64

__all__ = ["CONTENT_HEADERS", "MAX_JSON_DEPOSIT", "router"]

router = APIRouter(
    prefix="/v1", tags=["evidence"], responses=problem_responses(400, 401, 403, 404, 413, 415, 422)
)

Depositor = Annotated[Account, Depends(permit("evidence.deposit"))]
Reader = Annotated[Account, Depends(permit("evidence.read"))]
MAX_JSON_DEPOSIT = 64 * 1024
# A deposited file is the depositor's bytes, served from this origin: a
# browser must neither guess it is a page (nosniff) nor run it as one of
# ours (an opaque-origin sandbox with nothing allowed to load).
CONTENT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class Wait(StrEnum):
    durable = "durable"
    sealed = "sealed"


IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, pattern=r"^[\x21-\x7e]+$"),
]


@router.post(
    "/evidence",
    status_code=201,
    response_model=DepositResponse,
    response_model_exclude_none=True,
    summary="Deposit evidence: multipart file upload, or JSON {sha256, sm3?, title?}",
    responses={
        200: {"description": "Idempotent replay of an earlier deposit"},
        202: {"description": "Durable but not sealed before the timeout"},
        409: {"description": "Idempotency-Key reused with another body"},
        413: {"description": "Upload larger than the configured limit"},
        415: {"description": "Neither JSON nor multipart/form-data"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": HashDeposit.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "additionalProperties": False,
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "title": {"type": "string", "maxLength": 1000, "pattern": TEXT},
                            "description": {
                                "type": "string",
                                "maxLength": 10000,
                                "pattern": TEXT,
                            },
                        },
                    }
                },
            },
        }
    },
)
@fast
async def deposit(
    request: Request,
    services: ServicesDep,
    account: Depositor,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = Wait.durable,
    timeout: Annotated[float, Query(ge=0, le=120)] = 30.0,
) -> JSONResponse:
    """Deposit one hash (JSON) or one or more files (multipart, field ``file``).

    Every receipt is returned only once its entry is durable; with
    ``?wait=sealed`` only once it is inside a published checkpoint, with its
    inclusion proof.
    """
    return await deposit_request(request, services, account, idempotency_key, wait, timeout)


async def deposit_request(
    request: Request,
    services: Services,
    account: Account,
    idempotency_key: str | None = None,
    wait: Wait = Wait.durable,
    timeout: float = 30.0,
) -> JSONResponse:
    """The deposit route once its parameters are resolved (also called by
    :mod:`api.fastpath` for plain deposits with a recently seen token)."""
    plan = await _plan(request, services, account, idempotency_key)
    deposits = services.deposits
    result = await deposits.commit_async(plan)
    if wait is Wait.sealed:
        result = await deposits.until_sealed(result, timeout)
    elif result.sealed:
        result = await in_thread(deposits.with_proofs, result, services.evidence.published_size())
    status = 200 if result.replayed else 201
    if wait is Wait.sealed and not result.sealed:
        status = 202  # durable, not yet sealed: retry with the same Idempotency-Key
    return JSONResponse(result.to_json(), status_code=status)


async def _plan(
    request: Request, services: Services, account: Account, key: str | None
) -> DepositPlan:
    """Read the request body (JSON hash, or streamed multipart files) into a plan."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        raw = await request.body()
        if len(raw) > MAX_JSON_DEPOSIT:
            raise TooLarge("hash deposit: JSON body larger than 64 KiB")
        try:
            req = HashDeposit.model_validate_json(raw)
        except ValidationError as e:
            raise RequestValidationError(e.errors(include_url=False, include_input=False)) from None
        dep = HashDepositIn(req.sha256, req.sm3, req.title, req.description)
        if key is None:
            return services.deposits.plan_hash(account, dep)
        return await in_thread(services.deposits.plan_hash, account, dep, key)  # reads the key
    if ctype == "multipart/form-data":
        ledger = services.ledger
        upload = await read_upload(request, ledger.blobs, ledger.config.max_upload_bytes)
        try:
            files = [
                FileDeposit(f.info, f.file_name, f.media_type)
                for f in upload.files
                if f.info is not None
            ]
            plan = await in_thread(
                services.deposits.plan_files,
                account,
                files,
                title=upload.fields.get("title"),
                description=upload.fields.get("description"),
                key=key,
            )
            # Published only now that the deposit is accepted: a refused one
            # (a bad title, a key used with other files) leaves no blob behind;
            # a replay's files are stored already.
            if plan.replay:
                upload.abort()
            else:
                await in_thread(services.deposits.publish, plan, upload.blob_writers())
        except BaseException:
            upload.abort()
            raise
        return plan
    raise HTTPException(415, "send application/json or multipart/form-data")


def _public(r: EvidenceRecord, sealed: int) -> dict[str, Any]:
    """An ``EvidencePublic``, as plain JSON."""
    out = {
        "evidence_id": r.evidence_id,
        "deposit_no": r.deposit_no,
        "index": r.index,
        "time": r.time,
        "kind": r.kind,
        "sha256": r.sha256,
        "sm3": r.sm3,
        "size": r.size,
        "title": r.title,
        "description": r.description,
        "file_name": r.file_name,
        "media_type": r.media_type,
        "sealed": r.index < sealed,
    }
    return {k: v for k, v in out.items() if v is not None}


@router.get("/evidence", response_model=EvidenceList, response_model_exclude_none=True)
def list_evidence(
    services: ServicesDep,
    account: Reader,
    cursor: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    since: Annotated[str | None, Query(max_length=40, description="UTC time, inclusive")] = None,
    until: Annotated[str | None, Query(max_length=40, description="UTC time, exclusive")] = None,
    title: Annotated[str | None, Query(max_length=1000, description="substring")] = None,
    sha256: Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{64}$")] = None,
    deposit_no: Annotated[str | None, Query(pattern=r"^EL-[0-9]{8}-[0-9]{10}$")] = None,
    kind: Annotated[str | None, Query(pattern=r"^(file|hash|capture)$")] = None,
) -> Any:
    """Deposits in log order: one's own for rights holders, all for the other roles."""
    filters = EvidenceFilter(
        since=since, until=until, title=title, sha256=sha256, deposit_no=deposit_no, kind=kind
    )
    page = services.evidence.list(account, filters, cursor, limit)
    return {
        "items": [_public(r, page.published_size) for r in page.items],
        "next_cursor": page.next_cursor,
    }


@router.get("/evidence/{evidence_id}", response_model=EvidencePublic)
def get_evidence(evidence_id: str, services: ServicesDep, account: Reader) -> Any:
    """One deposit's facts."""
    record = services.evidence.get(account, evidence_id)
    return _public(record, services.ledger.published_size())


@router.get(
    "/evidence/{evidence_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_content(evidence_id: str, services: ServicesDep, account: Reader) -> StreamingResponse:
    """The deposited file itself (not for hash-only deposits)."""
    content = services.evidence.content(account, evidence_id)
    r = content.record
    name = (r.file_name or "evidence").replace('"', "")
    return StreamingResponse(
        content.chunks,
        media_type=r.media_type or "application/octet-stream",
        headers={
            **CONTENT_HEADERS,
            "Content-Length": str(r.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
            "Digest": "sha-256=" + b64(bytes.fromhex(r.sha256)),
        },
    )


@router.get(
    "/evidence/{evidence_id}/proof",
    response_model=InclusionPublic,
    responses={200: {"content": {"text/plain": {}}}},
)
@fast
def get_proof(
    evidence_id: str,
    request: Request,
    services: ServicesDep,
    account: Reader,
    size: Annotated[int | None, Query(ge=1, le=2**53)] = None,
) -> Response:
    """Inclusion proof to the latest (or a given) checkpoint; JSON, or C2SP
    tlog-proof text with ``Accept: text/plain``."""
    return proof_response(services, account, evidence_id, size, request.headers.get("accept", ""))


def proof_response(
    services: Services, account: Account, evidence_id: str, size: int | None, accept: str
) -> Response:
    """The proof route once its parameters are resolved (also used by :mod:`api.fastpath`)."""
    if "text/plain" in accept:
        return PlainTextResponse(services.evidence.tlog_proof(account, evidence_id, size))
    return JSONResponse(services.evidence.inclusion(account, evidence_id, size).to_json())
