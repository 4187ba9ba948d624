"""Private files: what only the ledger's own user may read.

The ledger home holds the configuration (a PostgreSQL URL may carry a
password), signing keys, the SQLite database with every private body, and
deposited files. The home directory is made 0700 and those files 0600 when
they are created, and tightened again when a home is opened, so a home made
by an earlier version (or copied with a permissive umask) does not stay
readable by other users of the machine. Files meant to be published (an
``export`` without ``--private``) keep the process's umask.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "private_dir", "secure_home", "write_private"]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

# Files of a home that must never be readable by others, besides keys/.
_HOME_FILES = ("config.json", "ledger.db", "ledger.db-wal", "ledger.db-shm")


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if needed; make ``path`` itself 0700."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    path.chmod(PRIVATE_DIR)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a sibling temporary file, then
    a rename), with mode 0600 from the first byte."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def secure_home(home: Path) -> None:
    """Make a ledger home 0700 and its private files 0600 (those this user owns).

    Files of another owner are left alone: changing them would fail, and the
    operator who shares a home between users decided so deliberately.
    """
    uid = os.getuid()
    for path, mode in (
        (home, PRIVATE_DIR),
        (home / "keys", PRIVATE_DIR),
        *((home / name, PRIVATE_FILE) for name in _HOME_FILES),
    ):
        with contextlib.suppress(FileNotFoundError):
            st = path.stat()
            if st.st_uid == uid and st.st_mode & 0o777 != mode:
                path.chmod(mode)
