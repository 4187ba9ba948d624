"""Accounts, bearer tokens and notaries' certificate-signing keys.

Roles (:data:`verifier.events.ROLES`): ``rights_holder``, ``notary``,
``auditor``, ``admin``. Creating an
account appends ``account.registered`` (role public; name and the SHA-256 of
the bearer token private); the token itself is shown once and never stored.
A notary also gets an Ed25519 key in ``HOME/keys/notary-<account id>.key``
(mode 0600) whose verifier key is published with ``key.registered``, so the
log shows which notary keys were valid when. Revoking an account appends
``account.revoked`` and ``key.revoked`` for each of its keys.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.core import Ledger
from ledger.errors import ConfigError, Conflict, InvalidInput, LedgerError, NotFound
from ledger.events import (
    Draft,
    account_registered,
    account_revoked,
    key_registered,
    key_revoked,
    new_id,
)
from ledger.keys import NoteSigner, generate_key_file, load_signer
from ledger.storage.queries import AccountRecord, ReadModel
from verifier.events import CERTIFICATE_KEY_PURPOSE, ROLES, format_time
from verifier.note import VerifierKey

__all__ = [
    "KEY_PURPOSE",
    "ROLES",
    "CreatedAccount",
    "authenticate",
    "create_account",
    "find_account",
    "hash_token",
    "notary_key_name",
    "notary_signer",
    "revoke_account",
]

KEY_PURPOSE = CERTIFICATE_KEY_PURPOSE
TOKEN_PREFIX = "elt_"  # noqa: S105 - a public marker, not a secret


@dataclass(frozen=True, slots=True)
class CreatedAccount:
    """A new account; ``token`` is the only copy of the bearer token."""

    account_id: str
    role: str
    name: str
    index: int
    vkey: str | None = None
    key_file: Path | None = None
    token: str = field(default="", repr=False)

    def to_json(self) -> dict[str, Any]:
        """Public facts of the account (never the token)."""
        out: dict[str, Any] = {
            "account_id": self.account_id,
            "role": self.role,
            "name": self.name,
            "index": self.index,
        }
        if self.vkey is not None:
            out["vkey"] = self.vkey
            out["key_file"] = str(self.key_file)
        return out


def hash_token(token: str) -> str:
    """The stored form of a bearer token: lowercase hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def notary_key_name(ledger: Ledger, account_id: str) -> str:
    """Signed-note key name of a notary's key: ``<origin>/notary/<account id>``."""
    return f"{ledger.config.origin}/notary/{account_id}"


def _key_path(ledger: Ledger, account_id: str) -> Path:
    return ledger.config.home / "keys" / f"notary-{account_id}.key"


def _reads(ledger: Ledger) -> ReadModel:
    return ReadModel(ledger.store)


def _active(ledger: Ledger, role: str, name: str) -> list[AccountRecord]:
    return _reads(ledger).active_accounts_by_name(name, role)


def create_account(ledger: Ledger, role: str, name: str) -> CreatedAccount:
    """Register an account (and, for a notary, its signing key) in the log.

    (1) refuse an unknown role or a name already used by an active account of
    the same role; (2) draw a 256-bit token, keep only its SHA-256; (3) for a
    notary, write a new key file (0600) and draft ``key.registered``; (4)
    append the drafts in one durable group, removing the key file if that
    fails.
    """
    if role not in ROLES:  # (1)
        raise InvalidInput(f"account: role must be one of {', '.join(ROLES)}")
    if not name or name != name.strip():
        raise InvalidInput("account: name must be non-empty without surrounding spaces")
    if _active(ledger, role, name):  # checked again inside the append (ledger.guards)
        raise Conflict(f"account: an active {role} named {name!r} already exists")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)  # (2)
    account_id = new_id()
    drafts: list[Draft] = [
        account_registered(
            role=role, name=name, token_sha256=hash_token(token), account_id=account_id
        )
    ]
    key_file: Path | None = None
    vkey: str | None = None
    if role == "notary":  # (3)
        key_file = _key_path(ledger, account_id)
        generate_key_file(key_file)
        vkey = load_signer(key_file, notary_key_name(ledger, account_id)).verifier_key.to_text()
        drafts.append(
            key_registered(
                account_id=account_id,
                vkey=vkey,
                purpose=KEY_PURPOSE,
                valid_from=format_time(datetime.now(UTC)),
            )
        )
    try:  # (4)
        appended = ledger.append(drafts)
    except BaseException:
        if key_file is not None:
            key_file.unlink(missing_ok=True)
        raise
    return CreatedAccount(
        account_id=account_id,
        role=role,
        name=name,
        index=appended[0].index,
        vkey=vkey,
        key_file=key_file,
        token=token,
    )


def find_account(ledger: Ledger, ident: str, role: str | None = None) -> AccountRecord:
    """The active account whose id is ``ident`` or, failing that, whose name is.

    A name shared by active accounts of different roles needs ``role``.
    """
    reads = _reads(ledger)
    rows = reads.active_accounts_by_id(ident) or reads.active_accounts_by_name(ident)
    if role is not None:
        rows = [r for r in rows if r.role == role]
    if not rows:
        what = f"{role} " if role else ""
        raise NotFound(f"account: no active {what}account {ident!r}")
    if len(rows) > 1:
        raise InvalidInput(f"account: {ident!r} names {len(rows)} accounts; use the account id")
    return rows[0]


def authenticate(ledger: Ledger, token: str) -> AccountRecord | None:
    """The active account a bearer token belongs to, or None.

    Lookup is by the token's SHA-256 (tokens carry 256 random bits, so the
    hash reveals nothing and the lookup leaks nothing useful by timing); the
    stored hash is then compared in constant time.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    for row in _reads(ledger).active_account_by_token(digest):
        if hmac.compare_digest(str(row.token_sha256), digest):
            return row
    return None


def notary_signer(ledger: Ledger, account: AccountRecord) -> NoteSigner:
    """The signing key of an active notary, checked against its registered key."""
    if account.role != "notary":
        raise InvalidInput(f"account: {account.name!r} is not a notary")
    keys = _reads(ledger).keys(account_id=account.account_id, purpose=KEY_PURPOSE, active=True)
    if not keys:
        raise NotFound(f"account: notary {account.name!r} has no active signing key")
    vkey = VerifierKey.from_text(keys[-1].vkey)  # the latest registered
    signer = load_signer(_key_path(ledger, account.account_id), vkey.name)
    if signer.verifier_key != vkey:
        raise ConfigError(
            f"key: {_key_path(ledger, account.account_id)} is not the registered key "
            f"of notary {account.name!r}"
        )
    return signer


def revoke_account(ledger: Ledger, ident: str, role: str | None = None) -> dict[str, Any]:
    """Append ``account.revoked`` and ``key.revoked`` for each active key; return
    the account id and the revoked keys."""
    account = find_account(ledger, ident, role)
    aid = account.account_id
    keys = [k.vkey for k in _reads(ledger).keys(account_id=aid, active=True)]
    drafts = [account_revoked(account_id=aid)]
    drafts += [key_revoked(account_id=aid, vkey=k) for k in keys]
    appended = ledger.append(drafts)
    if not appended:
        raise LedgerError("account: nothing was appended")
    return {"account_id": aid, "index": appended[0].index, "revoked_keys": keys}
