"""Storage backends behind one contract (:class:`ledger.storage.base.Store`)."""

from __future__ import annotations

from pathlib import Path

from ledger.errors import ConfigError
from ledger.storage.base import Appended, CheckpointRow, Store, TileRow

__all__ = ["Appended", "CheckpointRow", "Store", "TileRow", "create_store", "open_store"]


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///").removeprefix("sqlite://"))


def open_store(url: str, *, create: bool = False) -> Store:
    """Open (or create) the store named by ``sqlite:///PATH`` or ``postgresql://...``."""
    if url.startswith("sqlite:"):
        from ledger.storage.sqlite import SqliteStore

        return SqliteStore(_sqlite_path(url), create=create)
    if url.startswith(("postgresql://", "postgres://")):
        from ledger.storage.postgres import PostgresStore

        return PostgresStore(url, create=create)
    raise ConfigError(f"database: unsupported URL {url!r} (sqlite:///PATH or postgresql://...)")


def create_store(url: str) -> Store:
    return open_store(url, create=True)
