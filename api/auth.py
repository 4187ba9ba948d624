"""Bearer-token authentication and the action each route performs.

Tokens are looked up by their SHA-256 (:meth:`AccountService.authenticate`);
the service never stores or logs a token. A route declares the action it
performs with :func:`permit` (an unknown or revoked token is 401, a known
account whose role the action does not admit is 403, before any body is
read); the service it calls checks the same action again
(:mod:`ledger.services.policy`), so the rule lives in one table.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import get_services
from ledger.accounts import hash_token
from ledger.offload import in_thread
from ledger.services.policy import ACTIONS, Actor, authorize

__all__ = ["Account", "AnyAccount", "TokenCache", "permit"]

# The authenticated caller of an HTTP request.
Account = Actor

_bearer = HTTPBearer(auto_error=False, description="Bearer token from `account create`")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


class TokenCache:
    """Accounts of recently seen tokens, for ``ttl`` seconds.

    Keyed by the token's SHA-256, never the token. Only successful lookups are
    kept, so a revoked account loses access within ``ttl`` seconds on every
    worker, and unknown tokens always reach the database.
    """

    def __init__(self, ttl: float = 2.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, tuple[float, Actor]] = {}

    def get(self, digest: str) -> Actor | None:
        hit = self._entries.get(digest)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return None
        return hit[1]

    def put(self, digest: str, account: Actor) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[digest] = (time.monotonic(), account)

    def clear(self) -> None:
        self._entries.clear()


async def current_account(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required")
    token = credentials.credentials
    cache: TokenCache = request.app.state.token_cache
    digest = hash_token(token)
    account = cache.get(digest)
    if account is None:
        account = await in_thread(get_services(request).accounts.authenticate, token)
        if account is None:
            raise _unauthorized("unknown or revoked token")
        cache.put(digest, account)
    return account


AnyAccount = Annotated[Actor, Depends(current_account)]


def permit(action: str) -> Callable[[Actor], Awaitable[Actor]]:
    """A dependency admitting the accounts whose role may perform ``action``.

    The dependency carries the action (``.action``) and its roles
    (``.roles``), which :mod:`api.fastpath` reads from the route itself.
    """
    roles = ACTIONS[action]

    async def check(account: AnyAccount) -> Actor:
        authorize(account, action)
        return account

    check.action = action  # type: ignore[attr-defined]
    check.roles = roles  # type: ignore[attr-defined]
    return check
