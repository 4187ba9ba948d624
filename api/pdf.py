"""在线出证, as a PDF: ``GET /v1/certificates/{id}/pdf``.

The signed PDF certificate (PDF/A-3b, PAdES) of a certificate, visible to
whoever may read the certificate itself (the same rule, from
:mod:`api.certificates`). Rendering and signing run in the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import READERS, Account, require
from api.certificates import _visible
from api.deps import LedgerDep
from api.schemas import problem_responses
from ledger.pdfcert.service import certificate_pdf

__all__ = ["router"]

router = APIRouter(
    prefix="/v1", tags=["certificates"], responses=problem_responses(400, 401, 403, 404, 422)
)

Reader = Annotated[Account, Depends(require(*READERS))]


@router.get(
    "/certificates/{certificate_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The PDF certificate"}},
)
async def pdf(certificate_id: str, ledger: LedgerDep, account: Reader) -> Response:
    """The signed PDF certificate (存证证书): the rendering of the certificate's JSON,
    which it carries as an attachment; check it with ``evidence-verify pdf``."""
    await run_in_threadpool(_visible, ledger, account, certificate_id)
    data = await run_in_threadpool(certificate_pdf, ledger, certificate_id)
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="certificate-{certificate_id[:16]}.pdf"'
        },
    )
