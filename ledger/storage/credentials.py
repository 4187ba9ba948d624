"""Password hashes of accounts (table ``account_passwords``, schema migration 9).

Operational rows beside the log, like sessions: the hash (argon2id, made by
:mod:`ledger.services.passwords`) is all that is stored, and clearing a
password deletes its row.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.storage.base import Store

__all__ = ["PasswordRows"]


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
