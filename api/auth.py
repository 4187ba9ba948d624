"""Bearer-token authentication and role checks.

Tokens are looked up by their SHA-256 (``ledger.accounts.authenticate``); the
service never stores or logs a token. Every non-public route declares the
roles it admits with :func:`require`; an unknown or revoked token is 401, a
known account with the wrong role is 403.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import get_ledger
from ledger.accounts import authenticate, hash_token
from ledger.offload import in_thread

__all__ = ["READERS", "SEE_ALL", "Account", "AnyAccount", "TokenCache", "require"]

# Roles that read every account's evidence, certificates and captures; a rights
# holder reads only their own.
SEE_ALL = ("notary", "auditor", "admin")
# Every role: who may read evidence, proofs, certificates and captures at all.
READERS = ("rights_holder", *SEE_ALL)

_bearer = HTTPBearer(auto_error=False, description="Bearer token from `account create`")


@dataclass(frozen=True, slots=True)
class Account:
    """The authenticated caller."""

    account_id: str
    role: str
    name: str


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
        self._entries: dict[str, tuple[float, Account]] = {}

    def get(self, digest: str) -> Account | None:
        hit = self._entries.get(digest)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return None
        return hit[1]

    def put(self, digest: str, account: Account) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[digest] = (time.monotonic(), account)


async def current_account(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required")
    token = credentials.credentials
    cache: TokenCache = request.app.state.token_cache
    digest = hash_token(token)
    account = cache.get(digest)
    if account is None:
        row: dict[str, Any] | None = await in_thread(authenticate, get_ledger(request), token)
        if row is None:
            raise _unauthorized("unknown or revoked token")
        account = Account(account_id=row["account_id"], role=row["role"], name=row["name"])
        cache.put(digest, account)
    return account


AnyAccount = Annotated[Account, Depends(current_account)]


def require(*roles: str) -> Callable[[Account], Awaitable[Account]]:
    """A dependency admitting only accounts with one of ``roles``."""

    async def check(account: AnyAccount) -> Account:
        if account.role not in roles:
            raise HTTPException(403, f"this route is for {' or '.join(roles)} accounts")
        return account

    return check
