"""Passwords: an optional second way for an account to log in to the web console.

An account logs in with its API token; it may also set a password and then
log in with its name and that password. Only an argon2id hash (RFC 9106,
``argon2-cffi``'s defaults: 64 MiB, 3 passes, 4 lanes) is stored, beside
the log (:mod:`ledger.storage.credentials`), never the password; clearing it
deletes the hash. The API keeps using tokens only.

Who may set or clear a password: the account itself, proving who it is with
its current token or current password; or the operator (the command line on
the ledger's host), for any account. A name logs in only one account: a
password cannot be set on an account whose name another active account
with a password already uses.
"""

from __future__ import annotations

import functools
import hmac
import time
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ledger.accounts import authenticate
from ledger.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.services.policy import Actor
from ledger.storage.credentials import PasswordRows
from ledger.storage.queries import AccountRecord, ReadModel

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = ["MAX_PASSWORD", "MIN_PASSWORD", "PasswordService"]

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
"""Characters: long passphrases are welcome; unbounded input is not."""


@functools.cache
def _decoy() -> str:
    return PasswordHasher().hash("no account has this password")


class PasswordService:
    """Set, clear and check account passwords."""

    def __init__(self, ledger: Ledger, reads: ReadModel) -> None:
        self._ledger = ledger
        self._reads = reads
        self._rows = PasswordRows(ledger.store)
        self._hasher = PasswordHasher()

    def has_password(self, actor: Actor, account_id: str | None = None) -> bool:
        """Whether the account (the actor's own by default) has a password."""
        return self._rows.get(self._target(actor, account_id).account_id) is not None

    def set(self, actor: Actor, new: str, current: str = "", account_id: str | None = None) -> None:
        """Set or change a password.

        (1) the account is the actor's own, proven by ``current`` (its token
        or current password), or the operator names it; (2) the password is
        12 to 1024 characters and not the account's token; (3) no other
        active account of the same name has a password; (4) only its argon2id
        hash is stored.
        """
        account = self._target(actor, account_id)  # (1)
        self._prove(actor, account, current)
        if not MIN_PASSWORD <= len(new) <= MAX_PASSWORD:  # (2)
            raise InvalidInput(
                f"password: use {MIN_PASSWORD} to {MAX_PASSWORD} characters "
                f"(this one has {len(new)})"
            )
        if not new.strip():
            raise InvalidInput("password: a password cannot be only spaces")
        if authenticate(self._ledger, new) is not None:
            raise InvalidInput("password: an API token cannot be used as a password")
        others = [  # (3)
            a.account_id
            for a in self._reads.active_accounts_by_name(account.name)
            if a.account_id != account.account_id
        ]
        if self._rows.having(others):
            raise Conflict(
                f"password: another account named {account.name!r} already logs in with a "
                "password; rename one of them first"
            )
        self._rows.put(account.account_id, self._hasher.hash(new), int(time.time()))  # (4)

    def clear(self, actor: Actor, current: str = "", account_id: str | None = None) -> bool:
        """Remove a password (the token still logs in); False if there was none."""
        account = self._target(actor, account_id)
        self._prove(actor, account, current)
        return self._rows.delete(account.account_id)

    def login(self, name: str, password: str) -> Actor | None:
        """The active account named ``name`` whose password this is, or None."""
        if not name or len(name) > 1000 or not password or len(password) > MAX_PASSWORD:
            return None
        accounts = self._reads.active_accounts_by_name(name)
        with_password = set(self._rows.having([a.account_id for a in accounts]))
        found = None
        for account in accounts:
            if account.account_id in with_password and self._check(account, password):
                found = account
        if not with_password:
            # A wrong name costs the same time as a wrong password.
            self._verify(_decoy(), password)
        if found is None:
            return None
        return Actor(account_id=found.account_id, role=found.role, name=found.name)

    # -- helpers -------------------------------------------------------------
    def _target(self, actor: Actor, account_id: str | None) -> AccountRecord:
        if account_id is not None and account_id != actor.account_id and not actor.is_operator:
            raise Forbidden("password: an account sets only its own password")
        wanted = account_id or actor.account_id
        found = self._reads.active_accounts_by_id(wanted) if wanted else []
        if not found:
            raise NotFound(f"password: no active account {wanted!r}")
        return found[0]

    def _prove(self, actor: Actor, account: AccountRecord, current: str) -> None:
        if actor.is_operator:
            return
        by_token = authenticate(self._ledger, current.strip()) if current else None
        if by_token is not None and hmac.compare_digest(by_token.account_id, account.account_id):
            return
        if current and self._check(account, current):
            return
        raise Forbidden("password: give your current API token or current password")

    def _check(self, account: AccountRecord, password: str) -> bool:
        stored = self._rows.get(account.account_id)
        if stored is None or not self._verify(stored, password):
            return False
        if self._hasher.check_needs_rehash(stored):
            self._rows.put(account.account_id, self._hasher.hash(password), int(time.time()))
        return True

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
