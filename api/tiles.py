"""C2SP tlog-tiles read endpoints: ``/checkpoint``, ``/tile/...``, ``/tile/entries/...``.

Full tiles and bundles never change, so they are cacheable as immutable;
partial ones and the checkpoint change as the log grows.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import LedgerDep
from api.schemas import problem_responses
from ledger.errors import NotFound
from ledger.export import bundle_bytes, tile_bytes
from verifier.errors import MalformedError
from verifier.tiles import TILE_WIDTH, parse_tile_path

__all__ = ["router"]

router = APIRouter(tags=["tlog-tiles"], responses=problem_responses(404))
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=5"


@router.get("/checkpoint", response_class=Response, summary="Latest signed checkpoint")
def checkpoint(ledger: LedgerDep) -> Response:
    cp = ledger.latest_checkpoint()
    return Response(
        cp.note,
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/tile/{path:path}", response_class=Response, summary="Hash tile or entry bundle")
def tile(path: str, request: Request, ledger: LedgerDep) -> Response:
    try:
        level, index, width = parse_tile_path("tile/" + path)
    except MalformedError as e:
        raise NotFound(str(e)) from e
    size = ledger.latest_checkpoint().size
    if level < 0:
        data = bundle_bytes(ledger.store, index, width, size)
    else:
        data = tile_bytes(ledger.store, level, index, width, size)
    if data is None:
        raise NotFound(f"tile: {path} is not covered by the latest checkpoint")
    cache = IMMUTABLE if width == TILE_WIDTH else SHORT
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})
