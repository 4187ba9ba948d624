"""Server-side sessions of the web console.

A session is opened by presenting an account's API token (checked by
:func:`ledger.accounts.authenticate`, the same check as the HTTP API). The
browser gets a random 256-bit session id; the database keeps only its SHA-256,
so a copy of the ``sessions`` table opens no session. A session ends when it
is closed (logout), when it has been idle longer than ``idle`` seconds, when it
is older than ``lifetime`` seconds, or when its account is revoked: every
lookup joins the account and refuses a revoked one, and revoking an account
through :meth:`Sessions.end_account` also deletes its rows.

Sessions are operational state, not evidence: they live beside the log in the
same database (the ``sessions`` table, schema migration 6), so every API host
sees the same sessions, and are never appended to it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ledger.accounts import authenticate
from ledger.core import Ledger
from ledger.errors import LedgerError
from ledger.storage.credentials import SessionRows

__all__ = ["LoginFailed", "Session", "Sessions", "csrf_token", "session_digest"]


class LoginFailed(LedgerError):
    """The token presented at login is unknown, malformed or revoked."""


@dataclass(frozen=True, slots=True)
class Session:
    """An open session: whose it is and the CSRF token its forms carry."""

    account_id: str
    role: str
    name: str
    created: int
    seen: int
    csrf: str


def session_digest(session_id: str) -> str:
    """The stored form of a session id: lowercase hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session, derived from its id under a separate label.

    Derived rather than stored: it needs no column, changes with the session,
    and cannot be computed from the stored digest.
    """
    mac = hashlib.sha256(b"evidence-ledger csrf\x00" + session_id.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


class Sessions:
    """Open, resume and end sessions of one ledger.

    ``touch_every`` bounds the writes a busy session costs: the last-seen time
    is written at most that often, so the idle timeout is exact to within it.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        idle: int = 30 * 60,
        lifetime: int = 12 * 3600,
        touch_every: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if idle <= 0 or lifetime <= 0 or touch_every < 0:
            raise ValueError("sessions: idle and lifetime must be positive")
        self.ledger = ledger
        self._rows = SessionRows(ledger.store)
        self.idle = idle
        self.lifetime = lifetime
        self.touch_every = touch_every
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def login(self, token: str) -> tuple[str, Session]:
        """Open a session for the active account that ``token`` belongs to.

        Returns the new session id (the only copy; it goes into the cookie)
        and the session. Raises :class:`LoginFailed` for any token that does
        not name an active account.
        """
        row = authenticate(self.ledger, token.strip())
        if row is None:
            raise LoginFailed("login: unknown or revoked token")
        return self.open(row.account_id)

    def open(self, account_id: str) -> tuple[str, Session]:
        """Open a session for ``account_id`` (already authenticated)."""
        session_id = secrets.token_urlsafe(32)
        now = self._now()
        self._rows.insert(session_digest(session_id), account_id, now)
        session = self.resume(session_id)
        if session is None:
            raise LoginFailed("login: the account was revoked")
        return session_id, session

    def resume(self, session_id: str) -> Session | None:
        """The session named by ``session_id``, or None if it is unknown, expired,
        or its account was revoked. An expired session's row is deleted."""
        if not session_id or len(session_id) > 100:
            return None
        digest = session_digest(session_id)
        row = self._rows.active(digest)
        if row is None:
            return None
        now = self._now()
        created, seen = row.created, row.seen
        if now - seen > self.idle or now - created > self.lifetime:
            self._rows.delete(digest)
            return None
        if now - seen >= self.touch_every:
            self._rows.touch(digest, now)
            seen = now
        return Session(
            account_id=row.account_id,
            role=row.role,
            name=row.name,
            created=created,
            seen=seen,
            csrf=csrf_token(session_id),
        )

    def end(self, session_id: str) -> bool:
        """Close one session (logout); True if it was open."""
        return self._rows.delete(session_digest(session_id)) > 0

    def end_account(self, account_id: str) -> int:
        """Close every session of an account (after it is revoked); how many."""
        return self._rows.delete_account(account_id)

    def count(self, account_id: str) -> int:
        """Open (not yet purged) sessions of an account."""
        return self._rows.count(account_id)

    def purge(self) -> int:
        """Delete every idle or too old session; how many."""
        now = self._now()
        return self._rows.purge(now - self.idle, now - self.lifetime)
