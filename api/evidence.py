"""在线存证: deposits, receipts, evidence listings, content and proofs.

Rights holders deposit and see only their own evidence (another account's id
answers 404, never 403, so ids cannot be probed); notaries, auditors and
admins may read all of it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import READERS, SEE_ALL, Account, require
from api.deps import LedgerDep
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
from ledger.core import Ledger
from ledger.errors import IntegrityError, NotFound, TooLarge
from ledger.events import Draft, evidence_deposited
from ledger.projections import deposit_number
from ledger.storage.base import Appended, CheckpointRow
from verifier.canonical import canonicalize
from verifier.tlogproof import TlogProof

__all__ = ["router"]

router = APIRouter(
    prefix="/v1", tags=["evidence"], responses=problem_responses(400, 401, 403, 404, 413, 415, 422)
)

Depositor = Annotated[Account, Depends(require("rights_holder"))]
Reader = Annotated[Account, Depends(require(*READERS))]
_POLL = 0.05


class Wait(StrEnum):
    durable = "durable"
    sealed = "sealed"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def checkpoint_public(cp: CheckpointRow) -> dict[str, Any]:
    """A checkpoint as the API shows it (``CheckpointPublic``)."""
    return {"size": cp.size, "root": b64(cp.root), "note": cp.note}


# Evidence rows with their log entry's leaf hash (``_leaf_hash``, bytes), in one query.
_WITH_LEAF = "select e.*, v.leaf_hash as _leaf_hash from evidence e join events v on v.idx = e.idx"


def visible_evidence(
    ledger: Ledger, account: Account, evidence_id: str, *, leaf_hash: bool = False
) -> dict[str, Any]:
    """The evidence row if ``account`` may see it; 404 otherwise (no probing).

    With ``leaf_hash`` the row also carries its log entry's ``_leaf_hash``."""
    if leaf_hash:
        query = _WITH_LEAF + " where e.evidence_id = ?"
    else:
        query = "select * from evidence where evidence_id = ?"
    rows = ledger.store.query(query, (evidence_id,))
    if not rows or (account.role not in SEE_ALL and rows[0]["owner"] != account.account_id):
        raise NotFound(f"evidence: {evidence_id} not found")
    return rows[0]


def _receipt(row: dict[str, Any], sealed_size: int) -> dict[str, Any]:
    """A ``ReceiptPublic`` (plain JSON: receipts are the hottest response)."""
    receipt = {
        "evidence_id": row["evidence_id"],
        "deposit_no": row["deposit_no"],
        "index": row["idx"],
        "leaf_hash": bytes(row["_leaf_hash"]).hex(),
        "time": row["time"],
        "kind": row["kind"],
        "sha256": row["sha256"],
        "sm3": row["sm3"],
        "size": row["size"],
        "title": row["title"],
        "file_name": row["file_name"],
        "status": "sealed" if row["idx"] < sealed_size else "durable",
    }
    return {k: v for k, v in receipt.items() if v is not None}


def _replay(ledger: Ledger, owner: str, key: str, request_sha256: str) -> list[dict[str, Any]]:
    """Rows already deposited under this Idempotency-Key; 409 if the body differs."""
    rows = ledger.store.query(
        _WITH_LEAF + " where e.owner = ? and e.idem_key >= ? and e.idem_key < ? order by e.idx",
        (owner, key + "#", key + "$"),
    )
    if rows and any(r["request_sha256"] != request_sha256 for r in rows):
        raise HTTPException(409, "Idempotency-Key was already used with another request body")
    return rows


def _published_size(ledger: Ledger, covering: int = 0) -> int:
    """Entries covered by the latest published checkpoint (a reading <= 50 ms
    old, unless it covers fewer than ``covering`` entries)."""
    return ledger.published_size(max_age=_POLL, covering=covering)


async def _respond(
    ledger: Ledger, rows: list[dict[str, Any]], wait: Wait, timeout: float, created: bool
) -> JSONResponse:
    """Receipts, after waiting (if asked) until every entry is in a published checkpoint."""
    last = max(r["idx"] for r in rows)
    sealed = _published_size(ledger)
    if wait is Wait.sealed:
        deadline = time.monotonic() + timeout
        while sealed <= last and time.monotonic() < deadline:
            await asyncio.sleep(_POLL)
            sealed = _published_size(ledger)
    receipts = [_receipt(r, sealed) for r in rows]
    if sealed > last:
        for rec in receipts:
            rec["proof"] = await run_in_threadpool(_inclusion, ledger, rec["index"], None)
    status = 201 if created else 200
    if wait is Wait.sealed and sealed <= last:
        status = 202  # durable, not yet sealed: retry with the same Idempotency-Key
    return JSONResponse({"receipts": receipts}, status_code=status)


def _inclusion(
    ledger: Ledger, index: int, size: int | None, leaf_hash: bytes | None = None
) -> dict[str, Any]:
    """An ``InclusionPublic``: the proof, verified against its checkpoint
    (the latest published one, as read at most 50 ms ago, unless ``size``)."""
    if size is None:
        size = _published_size(ledger, covering=index + 1)
        if size == 0:
            raise NotFound("checkpoint: none published yet")
    cp, proof, leaf_hash = ledger.inclusion(index, size, leaf_hash)
    return {
        "index": index,
        "leaf_hash": leaf_hash.hex(),
        "tree_size": cp.size,
        "hashes": [b64(h) for h in proof],
        "checkpoint": checkpoint_public(cp),
    }


def _rows_from(drafts: list[Draft], appended: list[Appended]) -> list[dict[str, Any]]:
    """Projection-shaped rows for fresh deposits, without reading them back."""
    rows = []
    for d, a in zip(drafts, appended, strict=True):
        p = d.private
        rows.append(
            {
                "evidence_id": a.ref,
                "idx": a.index,
                "time": a.time,
                "deposit_no": deposit_number(a.index, a.time),
                "kind": p["kind"],
                "sha256": p["sha256"],
                "sm3": p.get("sm3"),
                "size": p.get("size"),
                "title": p.get("title"),
                "file_name": p.get("file_name"),
                "_leaf_hash": a.leaf_hash,
            }
        )
    return rows


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
async def deposit(
    request: Request,
    ledger: LedgerDep,
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
    return await deposit_request(request, ledger, account, idempotency_key, wait, timeout)


async def deposit_request(
    request: Request,
    ledger: Ledger,
    account: Account,
    idempotency_key: str | None = None,
    wait: Wait = Wait.durable,
    timeout: float = 30.0,
) -> JSONResponse:
    """The deposit route once its parameters are resolved (also called by
    ``api.fastpath`` for plain deposits with a recently seen token)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    owner = account.account_id
    if ctype == "application/json":
        raw = await request.body()
        if len(raw) > 64 * 1024:
            raise TooLarge("hash deposit: JSON body larger than 64 KiB")
        try:
            req = HashDeposit.model_validate_json(raw)
        except ValidationError as e:
            raise RequestValidationError(e.errors(include_url=False, include_input=False)) from None
        req_hash = ""
        if idempotency_key:
            req_hash = hashlib.sha256(canonicalize(req.model_dump())).hexdigest()
            done = await run_in_threadpool(_replay, ledger, owner, idempotency_key, req_hash)
            if done:
                return await _respond(ledger, done, wait, timeout, created=False)
        drafts = [
            evidence_deposited(
                kind="hash",
                sha256=req.sha256,
                sm3=req.sm3,
                title=req.title,
                description=req.description,
                owner=owner,
                idempotency_key=f"{idempotency_key}#0" if idempotency_key else None,
                request_sha256=req_hash if idempotency_key else None,
            )
        ]
        committed: list[str] = []
    elif ctype == "multipart/form-data":
        upload = await read_upload(request, ledger.blobs, ledger.config.max_upload_bytes)
        try:
            title, description = upload.fields.get("title"), upload.fields.get("description")
            files = [f for f in upload.files if f.info is not None]
            req_hash = ""
            if idempotency_key:
                described = {
                    "title": title,
                    "description": description,
                    "files": [
                        {"name": f.file_name, "media_type": f.media_type, "sha256": f.info.sha256}
                        for f in files
                        if f.info is not None
                    ],
                }
                req_hash = hashlib.sha256(canonicalize(described)).hexdigest()
            committed = [f.info.sha256 for f in files if f.info is not None and f.info.data is None]
            if idempotency_key:
                done = await run_in_threadpool(_replay, ledger, owner, idempotency_key, req_hash)
                if done:
                    upload.abort()
                    return await _respond(ledger, done, wait, timeout, created=False)
            drafts = [
                evidence_deposited(
                    kind="file",
                    sha256=f.info.sha256,
                    sm3=f.info.sm3,
                    size=f.info.size,
                    title=title,
                    description=description,
                    file_name=f.file_name,
                    media_type=f.media_type,
                    owner=owner,
                    idempotency_key=f"{idempotency_key}#{i}" if idempotency_key else None,
                    request_sha256=req_hash if idempotency_key else None,
                    content=f.info.data,
                )
                for i, f in enumerate(files)
                if f.info is not None
            ]
            # Published only now that the deposit is accepted: a refused one
            # (a bad title, say) leaves no blob behind.
            await run_in_threadpool(upload.commit)
        except BaseException:
            upload.abort()
            raise
    else:
        raise HTTPException(415, "send application/json or multipart/form-data")
    try:
        # Await the group commit without tying up a thread per request.
        appended = await ledger.submit_async(drafts)
    except IntegrityError:
        # A concurrent retry with the same Idempotency-Key won the race.
        if not idempotency_key:
            raise
        done = await run_in_threadpool(_replay, ledger, owner, idempotency_key, req_hash)
        if not done:
            raise
        return await _respond(ledger, done, wait, timeout, created=False)
    except BaseException:
        await run_in_threadpool(_drop_orphans, ledger, committed)
        raise
    return await _respond(ledger, _rows_from(drafts, appended), wait, timeout, created=True)


def _drop_orphans(ledger: Ledger, sha256s: list[str]) -> None:
    """Remove blobs of a failed deposit that no evidence refers to."""
    for h in sha256s:
        if not ledger.store.query("select 1 from evidence where sha256 = ? limit 1", (h,)):
            ledger.blobs.delete(h)


def _public(row: dict[str, Any], sealed: int) -> EvidencePublic:
    return EvidencePublic(
        evidence_id=row["evidence_id"],
        deposit_no=row["deposit_no"],
        index=row["idx"],
        time=row["time"],
        kind=row["kind"],
        sha256=row["sha256"],
        sm3=row["sm3"],
        size=row["size"],
        title=row["title"],
        description=row["description"],
        file_name=row["file_name"],
        media_type=row["media_type"],
        sealed=row["idx"] < sealed,
    )


@router.get("/evidence", response_model=EvidenceList, response_model_exclude_none=True)
def list_evidence(
    ledger: LedgerDep,
    account: Reader,
    cursor: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    since: Annotated[str | None, Query(max_length=40, description="UTC time, inclusive")] = None,
    until: Annotated[str | None, Query(max_length=40, description="UTC time, exclusive")] = None,
    title: Annotated[str | None, Query(max_length=1000, description="substring")] = None,
    sha256: Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{64}$")] = None,
    kind: Annotated[str | None, Query(pattern=r"^(file|hash|capture)$")] = None,
) -> EvidenceList:
    """Deposits in log order: one's own for rights holders, all for the other roles."""
    where: list[str] = ["idx >= ?"]
    params: list[int | str] = [cursor]
    if account.role not in SEE_ALL:
        where.append("owner = ?")
        params.append(account.account_id)
    for column, op, value in (
        ("time", ">=", since),
        ("time", "<", until),
        ("sha256", "=", sha256.lower() if sha256 else None),
        ("kind", "=", kind),
    ):
        if value is not None:
            where.append(f"{column} {op} ?")
            params.append(value)
    if title:
        where.append("lower(title) like ? escape '\\'")
        escaped = title.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(f"%{escaped}%")
    rows = ledger.store.query(
        f"select * from evidence where {' and '.join(where)} order by idx limit ?",  # noqa: S608
        (*params, limit + 1),
    )
    sealed = ledger.published_size()
    more = len(rows) > limit
    rows = rows[:limit]
    return EvidenceList(
        items=[_public(r, sealed) for r in rows],
        next_cursor=rows[-1]["idx"] + 1 if more else None,
    )


@router.get("/evidence/{evidence_id}", response_model=EvidencePublic)
def get_evidence(evidence_id: str, ledger: LedgerDep, account: Reader) -> EvidencePublic:
    """One deposit's facts."""
    return _public(visible_evidence(ledger, account, evidence_id), ledger.published_size())


@router.get(
    "/evidence/{evidence_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_content(evidence_id: str, ledger: LedgerDep, account: Reader) -> StreamingResponse:
    """The deposited file itself (not for hash-only deposits)."""
    row = visible_evidence(ledger, account, evidence_id)
    if row["kind"] != "file" or not ledger.blobs.exists(row["sha256"]):
        raise NotFound(f"evidence: {evidence_id} has no stored content ({row['kind']} deposit)")
    name = (row["file_name"] or "evidence").replace('"', "")
    return StreamingResponse(
        ledger.blobs.iter_chunks(row["sha256"]),
        media_type=row["media_type"] or "application/octet-stream",
        headers={
            "Content-Length": str(row["size"]),
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(name)}",
            "Digest": "sha-256=" + b64(bytes.fromhex(row["sha256"])),
        },
    )


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


@router.get(
    "/evidence/{evidence_id}/proof",
    response_model=InclusionPublic,
    responses={200: {"content": {"text/plain": {}}}},
)
def get_proof(
    evidence_id: str,
    request: Request,
    ledger: LedgerDep,
    account: Reader,
    size: Annotated[int | None, Query(ge=1, le=2**53)] = None,
) -> Response:
    """Inclusion proof to the latest (or a given) checkpoint; JSON, or C2SP
    tlog-proof text with ``Accept: text/plain``."""
    return proof_response(ledger, account, evidence_id, size, request.headers.get("accept", ""))


def proof_response(
    ledger: Ledger, account: Account, evidence_id: str, size: int | None, accept: str
) -> Response:
    """The proof route once its parameters are resolved (also used by ``api.fastpath``)."""
    row = visible_evidence(ledger, account, evidence_id, leaf_hash=True)
    proof = _inclusion(ledger, row["idx"], size, bytes(row["_leaf_hash"]))
    if "text/plain" in accept:
        leaf = ledger.store.entries(row["idx"], row["idx"] + 1)[0][3]
        text = TlogProof(
            index=proof["index"],
            hashes=tuple(base64.b64decode(h) for h in proof["hashes"]),
            checkpoint=proof["checkpoint"]["note"],
            extra=leaf,
        ).to_text()
        return PlainTextResponse(text)
    return JSONResponse(proof)
