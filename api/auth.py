"""Bearer-token authentication and role checks.

Tokens are looked up by their SHA-256 (``ledger.accounts.authenticate``); the
service never stores or logs a token. Every non-public route declares the
roles it admits with :func:`require`; an unknown or revoked token is 401, a
known account with the wrong role is 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import get_ledger
from ledger.accounts import authenticate

__all__ = ["Account", "AnyAccount", "require"]

_bearer = HTTPBearer(auto_error=False, description="Bearer token from `account create`")


@dataclass(frozen=True, slots=True)
class Account:
    """The authenticated caller."""

    account_id: str
    role: str
    name: str


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def current_account(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required")
    row: dict[str, Any] | None = authenticate(get_ledger(request), credentials.credentials)
    if row is None:
        raise _unauthorized("unknown or revoked token")
    return Account(account_id=row["account_id"], role=row["role"], name=row["name"])


AnyAccount = Annotated[Account, Depends(current_account)]


def require(*roles: str) -> Callable[[Account], Account]:
    """A dependency admitting only accounts with one of ``roles``."""

    def check(account: AnyAccount) -> Account:
        if account.role not in roles:
            raise HTTPException(403, f"this route is for {' or '.join(roles)} accounts")
        return account

    return check
