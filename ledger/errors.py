"""Exception tree of the ledger: every user-facing failure is a :class:`LedgerError`."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

__all__ = [
    "AuditError",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "IntegrityError",
    "InvalidInput",
    "LedgerError",
    "NotFound",
    "StateConflict",
    "StorageError",
    "StorageFull",
    "TooLarge",
    "disk_full",
]


class LedgerError(Exception):
    """Root of every error the ledger raises on purpose; the message is one line."""


class ConfigError(LedgerError):
    """The ledger home, its configuration or its key is missing or unusable."""


class InvalidInput(LedgerError):
    """A caller passed something malformed (a bad digest, an unknown type)."""


class TooLarge(InvalidInput):
    """An entry or upload exceeds a configured size limit."""


class Forbidden(LedgerError):
    """The caller is known but their role does not admit this action."""


class Conflict(LedgerError):
    """The request conflicts with what is stored: an Idempotency-Key reused
    with another body, evidence not yet sealed, a state change already made."""


class StateConflict(Conflict):
    """An event's requirement on the ledger's state failed inside the append
    transaction (a certificate already revoked, a request already closed):
    nothing was appended for it. ``position`` is the draft's place in the
    group the store was given, so the other drafts can be appended without it."""

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.position = position

    def __reduce__(self) -> tuple[type[StateConflict], tuple[str, int]]:
        return (StateConflict, (str(self), self.position))


class NotFound(LedgerError):
    """A requested entry, evidence record, tile or checkpoint does not exist."""


class StorageError(LedgerError):
    """The database refused an operation or is not a ledger database."""


class StorageFull(StorageError):
    """The disk (or quota) under the database or the blob store is full
    (ENOSPC, EDQUOT, SQLite's SQLITE_FULL, PostgreSQL's SQLSTATE 53100): the
    write was undone and nothing of it was kept; retry once space is freed."""


class IntegrityError(StorageError):
    """A write would break an invariant (append-only, contiguity, uniqueness)."""


class AuditError(LedgerError):
    """Stored data does not verify; ``index`` names the first entry that fails."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index

    def __reduce__(self) -> tuple[type[AuditError], tuple[str, int | None]]:
        # Keep the index when the error crosses a process boundary.
        return (AuditError, (str(self), self.index))


def disk_full(e: BaseException) -> bool:
    """Whether ``e`` is the operating system saying the disk or a quota is full."""
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def os_errors(subject: str, what: str, outcome: str) -> Iterator[None]:
    """Operating system errors while ``what`` as ledger errors: a full disk is
    :class:`StorageFull` (507 on the API), anything else a :class:`StorageError`
    (503); messages read ``{subject}: ...``."""
    try:
        yield
    except OSError as e:
        if disk_full(e):
            raise StorageFull(f"{subject}: the disk is full ({what}); {outcome}") from e
        raise StorageError(f"{subject}: cannot {what} ({e.strerror or e})") from e
