"""The two hottest routes without FastAPI's per-request machinery.

:class:`api.app.EvidenceAPI` asks :func:`serve_fast` first for every request.

Plain deposits (``POST /v1/evidence`` with no query and no Idempotency-Key)
and inclusion proofs (``GET /v1/evidence/{id}/proof`` with no query) carry
most of the traffic. When such a request bears a token this worker
authenticated in the last seconds (:class:`api.auth.TokenCache`), this
middleware takes the account from the cache and calls the very functions the
routes call (:func:`api.evidence.deposit_request`,
:func:`api.evidence.proof_response`); their errors become the same problem
responses (:func:`api.problems.problem_for`).

Everything else goes to the FastAPI application untouched: other routes,
requests with parameters or an Idempotency-Key, tokens not in the cache (so
authentication, its 401s and the 403s of wrong roles are decided in one
place), and roles the route does not admit. The routes stay the definition
of behaviour; this only skips dependency solving and parameter parsing
where there is nothing to solve or parse.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.auth import READERS, Account, TokenCache
from api.evidence import deposit_request, proof_response
from api.problems import problem_for
from ledger.accounts import hash_token
from ledger.core import Ledger
from ledger.offload import in_thread

__all__ = ["serve_fast"]

_DEPOSITS = "/v1/evidence"
_PROOF_PREFIX = "/v1/evidence/"
_PROOF_SUFFIX = "/proof"


async def serve_fast(app: FastAPI, scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer ``scope`` here if it is a plain deposit or proof; False to defer."""
    if scope["type"] != "http" or scope["query_string"]:
        return False
    method, path = scope["method"], scope["path"]
    if method == "POST" and path == _DEPOSITS:
        account = _cached_account(app, scope, ("rights_holder",), deposit=True)
        if account is None:
            return False
        app.state.fast_path_served += 1
        work = deposit_request(Request(scope, receive), app.state.ledger, account)
        await _answer(scope, receive, send, work)
        return True
    if method == "GET" and path.endswith(_PROOF_SUFFIX):
        evidence_id = path[len(_PROOF_PREFIX) : -len(_PROOF_SUFFIX)]
        if not path.startswith(_PROOF_PREFIX) or not evidence_id or "/" in evidence_id:
            return False
        account = _cached_account(app, scope, READERS, deposit=False)
        if account is None:
            return False
        app.state.fast_path_served += 1
        accept = _header(scope, b"accept") or ""
        ledger = app.state.ledger
        await _answer(scope, receive, send, _proof(ledger, account, evidence_id, accept))
        return True
    return False


async def _proof(ledger: Ledger, account: Account, evidence_id: str, accept: str) -> Response:
    # SQLite reads are page-cache reads inside this process (WAL: never behind
    # a writer), a few tens of microseconds for a whole proof, less than a hop
    # to a thread costs; PostgreSQL reads are round trips, made off the loop.
    if ledger.store.kind == "sqlite":
        return proof_response(ledger, account, evidence_id, None, accept)
    return await in_thread(proof_response, ledger, account, evidence_id, None, accept)


async def _answer(
    scope: Scope, receive: Receive, send: Send, work: Coroutine[Any, Any, Response]
) -> None:
    """Send the response ``work`` produces, or the problem for what it raised."""
    response: Response | None
    try:
        response = await work
    except Exception as e:
        response = problem_for(e)
        if response is None:
            raise
    await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _cached_account(
    app: FastAPI, scope: Scope, roles: tuple[str, ...], *, deposit: bool
) -> Account | None:
    """The caller, if their token is cached and their role fits; None to defer."""
    authorization = None
    for key, value in scope["headers"]:
        if key == b"authorization" and authorization is None:
            authorization = value
        elif deposit and key == b"idempotency-key":
            return None
    if authorization is None:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    cache: TokenCache = app.state.token_cache
    account = cache.get(hash_token(token))
    if account is None or account.role not in roles:
        return None
    return account
