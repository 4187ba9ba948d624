"""The witness service: ``POST /add-checkpoint`` exactly as C2SP tlog-witness.

Status codes: 200 with cosignature lines; 400 malformed request (or old size
above the checkpoint size); 403 checkpoint not signed by a followed key;
404 unknown log origin; 409 old size is not the size last cosigned (body: that
size and a newline, ``Content-Type: text/x.tlog.size``) or another root was
cosigned for the same size; 422 consistency proof does not verify. Error
bodies other than 409's are one line of plain text.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from ledger.errors import LedgerError
from ledger.offload import in_thread
from ledger.witness.core import MAX_REQUEST_BYTES, Conflict, Witness, WitnessError

__all__ = ["create_witness_app", "create_witness_app_from_env"]

log = logging.getLogger("evidence_ledger.witness")
TLOG_SIZE = "text/x.tlog.size"


def _plain(status: int, message: str) -> Response:
    return PlainTextResponse(message + "\n", status_code=status)


async def _read_body(request: Request) -> bytes | None:
    """The request body, or None once it exceeds :data:`MAX_REQUEST_BYTES`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        return None
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > MAX_REQUEST_BYTES:
            return None
    return bytes(buf)


def create_witness_app(witness: Witness) -> FastAPI:
    """Build the witness HTTP service around an open witness home."""
    app = FastAPI(
        title="Evidence ledger witness",
        version="0.1.0",
        summary="C2SP tlog-witness: cosigns checkpoints that extend what it saw before",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.witness = witness

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await _read_body(request)
        if body is None:
            return _plain(400, f"request: larger than {MAX_REQUEST_BYTES} bytes")
        try:
            lines = await in_thread(witness.add_checkpoint, body)
        except Conflict as e:
            log.info("add-checkpoint: 409 %s", e)
            # Set the header itself: media_type would append "; charset=utf-8".
            return Response(f"{e.size}\n", status_code=409, headers={"content-type": TLOG_SIZE})
        except WitnessError as e:
            log.info("add-checkpoint: %d %s", e.status, e)
            return _plain(e.status, str(e))
        except LedgerError as e:
            log.warning("add-checkpoint: %s", e)
            return _plain(503, str(e))
        return Response(lines, media_type="text/plain; charset=utf-8")

    return app


def create_witness_app_from_env() -> FastAPI:
    """Factory for uvicorn: reads the witness home from ``EVIDENCE_WITNESS_HOME``."""
    home = Path(os.environ.get("EVIDENCE_WITNESS_HOME", "./var"))
    return create_witness_app(Witness.open(home))
