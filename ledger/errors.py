"""Exception tree of the ledger: every user-facing failure is a :class:`LedgerError`."""

from __future__ import annotations

__all__ = [
    "AuditError",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "IntegrityError",
    "InvalidInput",
    "LedgerError",
    "NotFound",
    "StorageError",
    "TooLarge",
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


class NotFound(LedgerError):
    """A requested entry, evidence record, tile or checkpoint does not exist."""


class StorageError(LedgerError):
    """The database refused an operation or is not a ledger database."""


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
