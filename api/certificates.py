"""在线出证 and 在线验真: certificates, packages, revocation, status, trust, verification.

Notaries issue and revoke. A rights holder may read the certificates (and
packages) of their own evidence; notaries, auditors and admins read all.
Status, the trust file and verification are public; verification is
rate-limited per client address.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Account, permit
from api.deps import ServicesDep
from api.schemas import TEXT, problem_responses
from api.upload import FilePart, TempSink, read_multipart
from ledger.offload import in_thread
from ledger.services import Services
from ledger.storage.queries import RequestRecord
from verifier.certificate import MAX_CERTIFICATE_SIZE
from verifier.errors import Error as VerifierError
from verifier.report import Report, render_json

__all__ = ["MAX_VERIFY_BYTES", "VERIFY_PARTS", "router"]

router = APIRouter(
    prefix="/v1", tags=["certificates"], responses=problem_responses(400, 401, 403, 404, 409, 422)
)

Notary = Annotated[Account, Depends(permit("certificate.issue"))]
Reviewer = Annotated[Account, Depends(permit("certificate.review"))]
Requester = Annotated[Account, Depends(permit("certificate.request"))]
Revoker = Annotated[Account, Depends(permit("certificate.revoke"))]
Reader = Annotated[Account, Depends(permit("certificate.read"))]
MAX_VERIFY_BYTES = 256 * 1024 * 1024
# What a verification may upload: one package, or one certificate (the
# verifier's own size limit, applied while it streams in) and its files.
VERIFY_PARTS = {
    "package": FilePart(1, MAX_VERIFY_BYTES),
    "certificate": FilePart(1, MAX_CERTIFICATE_SIZE),
    "evidence": FilePart(16, MAX_VERIFY_BYTES),
}


class CertificateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evidence_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")
    statement: str | None = Field(default=None, max_length=4000, pattern=TEXT)
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[0-9a-f]+$",
        description="the certificate request this issue answers (closes it)",
    )


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000, pattern=TEXT)


class RevocationPublic(BaseModel):
    certificate_id: str
    index: int
    time: str


class StatusPublic(BaseModel):
    certificate_id: str
    status: str = Field(description="valid or revoked")
    issued_index: int
    issued_time: str | None = None
    deposit_no: str | None = Field(default=None, description="存证编号 of the certified evidence")
    revoked_index: int | None = None
    revoked_time: str | None = None
    revoked_reason: str | None = None


class CertificateRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evidence_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")
    note: str | None = Field(default=None, max_length=4000, pattern=TEXT)


class RequestPublic(BaseModel):
    """A certificate request (申请出证) and, once closed, how."""

    request_id: str
    evidence_id: str
    index: int
    time: str
    status: str = Field(description="requested (open), rejected or issued")
    note: str | None = None
    closed_index: int | None = None
    closed_time: str | None = None
    reason: str | None = Field(default=None, description="why it was rejected")
    certificate_id: str | None = None


class RequestList(BaseModel):
    items: list[RequestPublic]
    next_cursor: int | None = None


def _request_public(r: RequestRecord) -> RequestPublic:
    return RequestPublic(
        request_id=r.request_id,
        evidence_id=r.evidence_id,
        index=r.index,
        time=r.time,
        status=r.status,
        note=r.note,
        closed_index=r.closed_index,
        closed_time=r.closed_time,
        reason=r.reason,
        certificate_id=r.certificate_id,
    )


@router.post("/certificates", status_code=201, responses={201: {"description": "The certificate"}})
async def issue(body: CertificateRequest, services: ServicesDep, account: Notary) -> Response:
    """Issue a certificate for sealed evidence, signed with this notary's key."""
    issued = await in_thread(
        services.certificates.issue,
        account,
        body.evidence_id,
        body.statement,
        request_id=body.request_id,
    )
    return Response(issued.data, status_code=201, media_type="application/json")


@router.get("/certificates/{certificate_id}", responses={200: {"description": "The certificate"}})
def get(certificate_id: str, services: ServicesDep, account: Reader) -> Response:
    """The certificate JSON (RFC 8785 canonical bytes, exactly as signed)."""
    data = services.certificates.get(account, certificate_id)
    return Response(data, media_type="application/json")


@router.get(
    "/certificates/{certificate_id}/package",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def package(
    certificate_id: str,
    services: ServicesDep,
    account: Reader,
    include_private: Annotated[
        bool,
        Query(
            description="also the capture's private artefacts (records of secrets typed "
            "during it): only for the rights holder who owns the evidence (403 otherwise)"
        ),
    ] = False,
) -> StreamingResponse:
    """The evidence package (证据包): certificate, evidence files, proof, README."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the response stream
    try:
        services.certificates.write_package(
            account, certificate_id, spool, include_private=include_private
        )
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def chunks() -> Iterator[bytes]:
        with spool:
            while block := spool.read(1 << 20):
                yield block

    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="evidence-{certificate_id[:16]}.zip"',
        },
    )


@router.post("/certificates/{certificate_id}/revoke", response_model=RevocationPublic)
def revoke(
    certificate_id: str, body: RevokeRequest, services: ServicesDep, account: Revoker
) -> RevocationPublic:
    """Revoke a certificate (event ``certificate.revoked``): its issuing notary or an admin."""
    done = services.certificates.revoke(account, certificate_id, body.reason)
    return RevocationPublic(certificate_id=done.certificate_id, index=done.index, time=done.time)


@router.get("/certificates/{certificate_id}/status", response_model=StatusPublic)
def status(certificate_id: str, services: ServicesDep) -> StatusPublic:
    """Public: is this certificate valid or revoked (with the revocation's log index)?"""
    st = services.certificates.status(certificate_id)
    revoked = st.revoked
    issued = st.issued_index if st.issued_index is not None else -1
    return StatusPublic(
        certificate_id=certificate_id,
        status="revoked" if revoked else "valid",
        issued_index=issued,
        issued_time=st.issued_time,
        deposit_no=services.certificates.deposit_no(st),
        revoked_index=revoked.index if revoked else None,
        revoked_time=revoked.time if revoked else None,
        revoked_reason=revoked.reason if revoked else None,
    )


@router.post(
    "/certificate-requests",
    status_code=201,
    response_model=RequestPublic,
    response_model_exclude_none=True,
    responses={409: {"description": "Not sealed yet, or a request is already open"}},
)
def request_certificate(
    body: CertificateRequestIn, services: ServicesDep, account: Requester
) -> RequestPublic:
    """A rights holder asks a notary for a certificate of sealed evidence
    (event ``certificate.requested``)."""
    done = services.certificates.request(account, body.evidence_id, body.note)
    return _request_public(services.certificates.get_request(account, done.request_id))


@router.get("/certificate-requests", response_model=RequestList, response_model_exclude_none=True)
def list_requests(
    services: ServicesDep,
    account: Reader,
    status: Annotated[str | None, Query(pattern="^(requested|rejected|issued)$")] = None,
    cursor: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RequestList:
    """Requests in log order (``status=requested``: the notaries' queue); one's own
    for rights holders."""
    page = services.certificates.requests(account, status, cursor, limit)
    return RequestList(items=[_request_public(r) for r in page.items], next_cursor=page.next_cursor)


@router.get(
    "/certificate-requests/{request_id}",
    response_model=RequestPublic,
    response_model_exclude_none=True,
)
def get_request(request_id: str, services: ServicesDep, account: Reader) -> RequestPublic:
    """One request: its requester's, or any for notaries, auditors and admins."""
    return _request_public(services.certificates.get_request(account, request_id))


@router.post(
    "/certificate-requests/{request_id}/reject",
    response_model=RequestPublic,
    response_model_exclude_none=True,
)
def reject_request(
    request_id: str, body: RevokeRequest, services: ServicesDep, account: Reviewer
) -> RequestPublic:
    """A notary rejects an open request with a reason (event
    ``certificate.request_rejected``)."""
    services.certificates.reject(account, request_id, body.reason)
    return _request_public(services.certificates.get_request(account, request_id))


@router.get("/trust", responses={200: {"description": "evidence-trust/v1 trust file"}})
def trust(services: ServicesDep) -> JSONResponse:
    """Public: the trust file a court can pin (log key, witnesses, notaries, TSA roots)."""
    return JSONResponse(services.trust())


# -- 在线验真 -------------------------------------------------------------------


def _verify(services: Services, upload: Any) -> Report:
    packages, certs, evidence = (
        upload.of("package"),
        upload.of("certificate"),
        upload.of("evidence"),
    )
    if packages:
        if certs:
            raise HTTPException(400, "verify: send a package or a certificate, not both")
        return services.certificates.verify_package(Path(packages[0].path))
    if not certs:
        raise HTTPException(400, "verify: send a 'package' or a 'certificate' (and 'evidence')")
    return services.certificates.verify_certificate(
        Path(certs[0].path), [Path(f.path) for f in evidence], certs[0].file_name
    )


@router.post(
    "/verify",
    responses={429: {"description": "Too many verifications from this address"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "anyOf": [{"required": ["package"]}, {"required": ["certificate"]}],
                        "properties": {
                            "package": {"type": "string", "format": "binary"},
                            "certificate": {"type": "string", "format": "binary"},
                            "evidence": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            },
                        },
                    }
                }
            },
        }
    },
)
async def verify(
    request: Request,
    services: ServicesDep,
    lang: Annotated[str, Query(pattern="^(en|zh)$")] = "en",
) -> JSONResponse:
    """Public 在线验真: the same checks as ``evidence-verify``, with this server's
    trust file and its log for revocation. Upload a ``package``, or a
    ``certificate`` with its ``evidence`` file(s)."""
    client = request.client.host if request.client else None
    wait = await in_thread(services.limits.verify.take, client)
    if wait:
        raise HTTPException(
            429, "verify: too many requests", headers={"Retry-After": str(int(wait) + 1)}
        )
    upload = await read_multipart(request, TempSink, MAX_VERIFY_BYTES, VERIFY_PARTS, {})
    try:
        for f in upload.files:
            f.path = await in_thread(f.writer.commit)
        try:
            report = await in_thread(_verify, services, upload)
        except VerifierError as e:
            raise HTTPException(422, f"verify: input is malformed ({e})") from None
    finally:
        upload.abort()  # removes the temporary files
    return JSONResponse(render_json(report, lang))
