"""Backup and restore of a ledger home, consistent while deposits go on.

A backup directory holds ``manifest.json`` and a copy of the home: the SQLite
database (``ledger.db``), ``config.json``, ``keys/`` (mode 0600), the blob
store's files (``blobs/``) and any other file of the home. The manifest
(``evidence-ledger-backup/1``) names the log's origin, the published
checkpoint the copied database serves, and every file with its size, mode and
SHA-256; it is written last, so a directory without one is not a backup.

Consistency: (1) the database is copied first, as one read snapshot (SQLite's
online backup API, :meth:`~ledger.storage.sqlite.SqliteStore.backup_to`),
while the service keeps appending; (2) the blob files are copied after it.
A file is committed to the blob store before the event that deposits it, so
every file the snapshot refers to already exists when it is copied; files
stored later are copied too or not, and are harmless orphans either way
(``evidence-ledger sweep`` removes them).

On PostgreSQL the database (and its blobs, with ``--blobs postgresql``) is
saved with ``pg_dump`` and restored with ``pg_restore`` (see
docs/operations.md); the backup then holds the home's files and a manifest
that says so.

:func:`restore` checks every digest before anything is written where the
ledger will live, refuses a home that is not empty, and points a restored
SQLite home at its own database.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from ledger.config import default_database_url, load_config, save_config
from ledger.errors import ConfigError, InvalidInput, LedgerError
from ledger.storage import open_store
from ledger.storage.sqlite import SqliteStore

__all__ = ["BACKUP_FORMAT", "MANIFEST", "backup", "read_manifest", "restore"]

BACKUP_FORMAT = "evidence-ledger-backup/1"
MANIFEST = "manifest.json"
DATABASE = "ledger.db"
_CHUNK = 1 << 20
MAX_MANIFEST = 256 * 1024**2

Progress = Callable[[int, int], None]
"""Told the bytes copied so far and the total."""


class BackupError(LedgerError):
    """A backup that cannot be made or restored (its message says why)."""


def _empty_dir(path: Path, what: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BackupError(f"{what}: {path} exists and is not an empty directory")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)


def _skipped(rel: PurePosixPath, db_names: set[str]) -> bool:
    """Files of a home that are not copied: the live database, locks, staged uploads."""
    return (
        str(rel) in db_names
        or rel.name.endswith(".writer-lock")
        or rel.parts[:2] == ("blobs", "tmp")
        or rel.name.endswith(".tmp")
    )


def _home_files(home: Path, db_names: set[str]) -> Iterator[tuple[PurePosixPath, Path]]:
    for root, dirs, files in os.walk(home):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            rel = PurePosixPath(path.relative_to(home).as_posix())
            if not _skipped(rel, db_names) and path.is_file() and not path.is_symlink():
                yield rel, path


def _copy(src: Path, dest: Path, mode: int, advance: Callable[[int], None]) -> dict[str, Any]:
    """Copy ``src`` to ``dest`` (created with ``mode``), fsynced; its size and SHA-256."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    h = hashlib.sha256()
    size = 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with src.open("rb") as f, os.fdopen(fd, "wb") as out:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
            size += len(chunk)
            advance(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    os.chmod(dest, mode)
    return {"size": size, "sha256": h.hexdigest(), "mode": f"{mode:04o}"}


def _mode_of(rel: PurePosixPath, path: Path) -> int:
    # Keys stay private whatever the source's mode; other files keep theirs.
    if rel.parts[0] == "keys":
        return 0o600
    return path.stat().st_mode & 0o644 | 0o600


def backup(home: Path, dest: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Back up the ledger at ``home`` into the empty directory ``dest``; return the manifest.

    The steps are in the module doc: (1) database snapshot, (2) the home's
    files, (3) the manifest, last.
    """
    cfg = load_config(home)
    if dest.resolve().is_relative_to(home.resolve()):
        raise BackupError(f"backup: {dest} is inside the ledger home {home}")
    _empty_dir(dest, "backup")
    store = open_store(cfg.database_url)
    try:
        database: dict[str, Any] = {"kind": store.kind}
        db_names = {DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm"}
        if isinstance(store, SqliteStore):  # (1)
            store.backup_to(dest / DATABASE)
            database["file"] = DATABASE
            if store.path.resolve().parent == home.resolve():
                name = store.path.name
                db_names |= {name, f"{name}-wal", f"{name}-shm"}
        else:
            database["file"] = None
            database["restore"] = "pg_dump / pg_restore (docs/operations.md)"
    finally:
        store.close()
    snapshot: dict[str, Any] = {"size": 0, "published": None}
    if database["file"]:
        copied = SqliteStore(dest / DATABASE)
        try:
            served = copied.latest_publication()
            snapshot = {
                "size": copied.size(),
                "published": None if served is None else {"size": served.size, "note": served.note},
            }
        finally:
            copied.close()
    else:  # the dump, taken apart, decides what a restore serves
        snapshot = {"size": None, "published": None}

    sources = list(_home_files(home, db_names))  # (2)
    total = sum(p.stat().st_size for _, p in sources)
    db_path = dest / DATABASE
    if database["file"]:
        total += db_path.stat().st_size
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    files: list[dict[str, Any]] = []
    if database["file"]:
        files.append({"path": DATABASE, **_digest(db_path, advance), "mode": "0600"})
        db_path.chmod(0o600)
    for rel, path in sources:
        try:
            entry = _copy(path, dest / rel, _mode_of(rel, path), advance)
        except FileNotFoundError:
            continue  # an orphan blob swept meanwhile: nothing refers to it
        files.append({"path": str(rel), **entry})
    manifest = {  # (3)
        "format": BACKUP_FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "origin": cfg.origin,
        "database": database,
        "log_size": snapshot["size"],
        "checkpoint": snapshot["published"],
        "files": files,
    }
    tmp = dest / (MANIFEST + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dest / MANIFEST)
    _fsync_dir(dest)
    return manifest


def _digest(path: Path, advance: Callable[[int], None]) -> dict[str, Any]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
            advance(len(chunk))
    return {"size": size, "sha256": h.hexdigest()}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of the backup at ``src``, checked for form (not yet digests)."""
    path = src / MANIFEST
    try:
        if path.stat().st_size > MAX_MANIFEST:
            raise BackupError(f"restore: {path} is too large")
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as e:
        raise BackupError(f"restore: {src} has no {MANIFEST} (not a finished backup)") from e
    except (OSError, ValueError) as e:
        raise BackupError(f"restore: cannot read {path} ({e})") from e
    if not isinstance(raw, dict) or raw.get("format") != BACKUP_FORMAT:
        raise BackupError(f"restore: {path} is not an {BACKUP_FORMAT} manifest")
    files = raw.get("files")
    if not isinstance(files, list):
        raise BackupError(f"restore: {path} lists no files")
    for entry in files:
        rel = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(rel, str) or not _safe(rel):
            raise BackupError(f"restore: {path} names an unsafe path {rel!r}")
        if not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("size"), int):
            raise BackupError(f"restore: {path}: {rel} has no size or digest")
    return raw


def _safe(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and "\\" not in rel


def restore(
    src: Path, home: Path, database_url: str | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Restore the backup at ``src`` into the empty (or new) directory ``home``.

    (1) read the manifest; (2) copy every file into a staging directory beside
    ``home``, checking its size and digest; (3) move them into ``home``; (4)
    point the configuration at the restored database (SQLite: ``home``'s own;
    PostgreSQL: ``database_url`` or the one recorded); (5) open the ledger and
    check it serves the manifest's checkpoint. Returns a summary.
    """
    manifest = read_manifest(src)  # (1)
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise BackupError(f"restore: {home} exists and is not an empty directory")
    files: list[dict[str, Any]] = manifest["files"]
    total = sum(int(e["size"]) for e in files)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    staging = home.with_name(home.name + ".restoring")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True, mode=0o700)
    try:
        for entry in files:  # (2)
            rel = PurePosixPath(entry["path"])
            mode = 0o600 if rel.parts[0] == "keys" else int(str(entry.get("mode", "0600")), 8)
            try:
                got = _copy(src / rel, staging / rel, mode & 0o777, advance)
            except FileNotFoundError as e:
                raise BackupError(f"restore: {rel} is missing from the backup") from e
            if got["sha256"] != entry["sha256"] or got["size"] != entry["size"]:
                raise BackupError(f"restore: {rel} does not match its digest in the manifest")
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        for child in staging.iterdir():  # (3)
            os.replace(child, home / child.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    home.chmod(0o700)
    try:
        cfg = load_config(home)  # (4)
    except ConfigError as e:
        raise BackupError(f"restore: the backup's configuration is unusable ({e})") from e
    if manifest["database"].get("file"):
        url = default_database_url(home)
    else:
        url = database_url or cfg.database_url
    if url != cfg.database_url:
        save_config(replace(cfg, database_url=url))
    store = open_store(url)  # (5)
    try:
        pub = store.latest_publication()
        size = store.size()
    finally:
        store.close()
    want = manifest.get("checkpoint")
    if want is not None and (pub is None or pub.note != want.get("note")):
        raise InvalidInput(
            "restore: the restored database does not serve the backup's checkpoint "
            f"{want.get('size')} (is the PostgreSQL dump from the same backup?)"
        )
    return {
        "home": str(home),
        "files": len(files),
        "bytes": total,
        "size": size,
        "checkpoint_size": pub.size if pub else 0,
    }
