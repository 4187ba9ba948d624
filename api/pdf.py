"""在线出证, as a PDF: ``GET /v1/certificates/{id}/pdf``.

The signed PDF certificate (PDF/A-3b, PAdES) of a certificate, visible to
whoever may read the certificate itself (the certificate service decides).
Rendering and signing run off the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from api.auth import Account, permit
from api.deps import ServicesDep
from api.schemas import problem_responses
from ledger.offload import in_thread

__all__ = ["router"]

router = APIRouter(
    prefix="/v1", tags=["certificates"], responses=problem_responses(400, 401, 403, 404, 422)
)

Reader = Annotated[Account, Depends(permit("certificate.read"))]


@router.get(
    "/certificates/{certificate_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The PDF certificate"}},
)
async def pdf(certificate_id: str, services: ServicesDep, account: Reader) -> Response:
    """The signed PDF certificate (存证证书): the rendering of the certificate's JSON,
    which it carries as an attachment; check it with ``evidence-verify pdf``."""
    data = await in_thread(services.certificates.pdf, account, certificate_id)
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="certificate-{certificate_id[:16]}.pdf"'
        },
    )
