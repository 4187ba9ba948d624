"""Content-addressed blob stores behind one interface (:class:`BlobStore`).

Two backends: the filesystem (:class:`FsBlobStore`, ``HOME/blobs``; the
default with SQLite) and PostgreSQL (:class:`PgBlobStore`, chunked rows in
the ledger's database; the default with PostgreSQL, so that every host of a
deployment serves every file). ``evidence-ledger init --blobs fs|postgresql``
chooses; the choice is kept in ``config.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ledger.blobs.base import (
    CHUNK,
    BlobHold,
    BlobInfo,
    BlobStore,
    BlobWriter,
    Staging,
    StreamHasher,
    Swept,
    check_address,
)
from ledger.blobs.fs import FsBlobStore
from ledger.errors import ConfigError

__all__ = [
    "BLOB_KINDS",
    "CHUNK",
    "BlobHold",
    "BlobInfo",
    "BlobStore",
    "BlobWriter",
    "FsBlobStore",
    "Staging",
    "StreamHasher",
    "Swept",
    "check_address",
    "default_blob_kind",
    "open_blob_store",
]

BLOB_KINDS = ("fs", "postgresql")


def _is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgresql://", "postgres://"))


def default_blob_kind(database_url: str) -> str:
    """``postgresql`` for a ledger on PostgreSQL, ``fs`` otherwise."""
    return "postgresql" if _is_postgres(database_url) else "fs"


def open_blob_store(
    kind: str,
    root: Path,
    database_url: str,
    inline: Callable[[str], bytes | None] | None = None,
) -> BlobStore:
    """The blob store of a ledger: files under ``root`` or rows in its database."""
    if kind == "fs":
        return FsBlobStore(root, inline)
    if kind == "postgresql":
        if not _is_postgres(database_url):
            raise ConfigError("blobs: the postgresql blob store needs a PostgreSQL database")
        from ledger.blobs.postgres import PgBlobStore

        return PgBlobStore(database_url, inline)
    raise ConfigError(f"blobs: unknown blob store {kind!r} (one of {', '.join(BLOB_KINDS)})")
