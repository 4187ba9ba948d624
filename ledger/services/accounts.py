"""Accounts: authentication by bearer token, creation and revocation.

Admins (and the operator) manage accounts; auditors may list them. A token is
shown once at creation and stored only as its SHA-256
(:func:`ledger.accounts.hash_token`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.accounts import (
    CreatedAccount,
    authenticate,
    create_account,
    find_account,
    revoke_account,
)
from ledger.errors import Forbidden
from ledger.services.policy import Actor, authorize
from ledger.storage.queries import AccountRecord, ReadModel

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = ["AccountService"]


class AccountService:
    def __init__(self, ledger: Ledger, reads: ReadModel) -> None:
        self._ledger = ledger
        self._reads = reads

    def authenticate(self, token: str) -> Actor | None:
        """The active account a bearer token belongs to, or None."""
        row = authenticate(self._ledger, token)
        if row is None:
            return None
        return Actor(account_id=row.account_id, role=row.role, name=row.name)

    def create(self, actor: Actor, role: str, name: str) -> CreatedAccount:
        """Register an account; its token is in the result, and nowhere else."""
        authorize(actor, "account.manage")
        return create_account(self._ledger, role, name)

    def revoke(self, actor: Actor, ident: str, role: str | None = None) -> dict[str, Any]:
        """Revoke an account (by id or name) and its signing keys."""
        authorize(actor, "account.manage")
        if not actor.is_operator and ident == actor.account_id:
            raise Forbidden("account.manage: an admin cannot revoke their own account")
        return revoke_account(self._ledger, ident, role)

    def find(self, actor: Actor, ident: str, role: str | None = None) -> AccountRecord:
        """The active account whose id, or else name, is ``ident`` (``role`` when a
        name is shared across roles)."""
        authorize(actor, "account.manage")
        return find_account(self._ledger, ident, role)

    def list(self, actor: Actor) -> list[AccountRecord]:
        """Every account, active or revoked, in log order."""
        if actor.role != "auditor":
            authorize(actor, "account.manage")
        return self._reads.accounts()
