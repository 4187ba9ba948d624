"""Credentials kept beside the log: password hashes of accounts (table
``account_passwords``, schema migration 9) and web console sessions (table
``sessions``, migration 6).

Operational rows, not events: the hash (argon2id, made by
:mod:`ledger.services.passwords`) is all that is stored of a password, and
clearing it deletes its row; a session is stored by the SHA-256 of its id only
(:mod:`ledger.services.sessions`), and logging out deletes its row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.storage.base import Store

__all__ = ["PasswordRows", "SessionRow", "SessionRows"]


class PasswordRows:
    """Reads and writes of ``account_passwords``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, account_id: str) -> str | None:
        """The stored hash of an account's password, or None if it has none."""
        rows = self.store.query(
            "select hash from account_passwords where account_id = ?", (account_id,)
        )
        return str(rows[0]["hash"]) if rows else None

    def having(self, account_ids: Sequence[str]) -> list[str]:
        """Those of ``account_ids`` that have a password."""
        if not account_ids:
            return []
        marks = ", ".join("?" * len(account_ids))
        rows = self.store.query(
            f"select account_id from account_passwords where account_id in ({marks})",  # noqa: S608
            tuple(account_ids),
        )
        return [str(r["account_id"]) for r in rows]

    def put(self, account_id: str, hashed: str, now: int) -> None:
        """Set (or replace) an account's password hash."""
        self.store.execute(
            "insert into account_passwords values (?, ?, ?) on conflict (account_id) "
            "do update set hash = excluded.hash, set_at = excluded.set_at",
            (account_id, hashed, now),
        )

    def delete(self, account_id: str) -> bool:
        """Remove an account's password; False if it had none."""
        return (
            self.store.execute("delete from account_passwords where account_id = ?", (account_id,))
            > 0
        )


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A stored session joined with its (active) account."""

    account_id: str
    created: int
    seen: int
    role: str
    name: str


class SessionRows:
    """Reads and writes of ``sessions`` (keyed by the SHA-256 of the session id)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def insert(self, digest: str, account_id: str, now: int) -> None:
        self.store.execute(
            "insert into sessions values (?, ?, ?, ?)", (digest, account_id, now, now)
        )

    def active(self, digest: str) -> SessionRow | None:
        """The session with this digest if its account is still active."""
        rows = self.store.query(
            "select s.account_id, s.created, s.seen, a.role, a.name from sessions s "
            "join accounts a on a.account_id = s.account_id "
            "where s.id_sha256 = ? and a.revoked_idx is null",
            (digest,),
        )
        if not rows:
            return None
        r = rows[0]
        return SessionRow(
            account_id=str(r["account_id"]),
            created=int(r["created"]),
            seen=int(r["seen"]),
            role=str(r["role"]),
            name=str(r["name"]),
        )

    def touch(self, digest: str, now: int) -> None:
        self.store.execute("update sessions set seen = ? where id_sha256 = ?", (now, digest))

    def delete(self, digest: str) -> int:
        return self.store.execute("delete from sessions where id_sha256 = ?", (digest,))

    def delete_account(self, account_id: str) -> int:
        return self.store.execute("delete from sessions where account_id = ?", (account_id,))

    def count(self, account_id: str) -> int:
        rows = self.store.query(
            "select count(*) as n from sessions where account_id = ?", (account_id,)
        )
        return int(rows[0]["n"])

    def purge(self, seen_before: int, created_before: int) -> int:
        return self.store.execute(
            "delete from sessions where seen < ? or created < ?", (seen_before, created_before)
        )
