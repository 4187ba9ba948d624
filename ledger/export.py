"""Write the public log as a static C2SP tlog-tiles tree.

``DIR/checkpoint``, ``DIR/tile/<L>/<N>[.p/<W>]`` and
``DIR/tile/entries/<N>[.p/<W>]`` for the latest checkpoint, so the directory
can be served by any web server and audited by any tlog-tiles client. With
``private=True`` it adds ``DIR/private/<N>.jsonl`` (salt and private body of
every entry, per bundle) for an authorised auditor: mode 0600, in a 0700
directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ledger.files import private_dir, write_private
from ledger.storage.base import CheckpointRow, Store
from verifier.merkle import HASH_SIZE
from verifier.tiles import TILE_HEIGHT, TILE_WIDTH, encode_bundle, encode_index, tile_path

__all__ = ["bundle_bytes", "export", "file_count", "tile_bytes"]


def tile_bytes(store: Store, level: int, index: int, width: int, size: int) -> bytes | None:
    """Hashes of tile ``level/index`` at ``width``, if the tree of ``size`` covers it."""
    if index * TILE_WIDTH + width > size >> (TILE_HEIGHT * level):
        return None
    row = store.tiles([(level, index)]).get((level, index))
    if row is None or row.width < width:
        return None
    return row.hashes[: width * HASH_SIZE]


def bundle_bytes(store: Store, index: int, width: int, size: int) -> bytes | None:
    """Entry bundle ``index`` at ``width``, if the tree of ``size`` covers it."""
    start = index * TILE_WIDTH
    if start + width > size:
        return None
    rows = store.entries(start, start + width)
    if len(rows) != width:
        return None
    return encode_bundle(r[3] for r in rows)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_private(path: Path, data: bytes) -> None:
    """Private bodies: a 0700 directory, files 0600 (the public tiles beside
    them keep the umask, to be served by any web server)."""
    private_dir(path.parent)
    write_private(path, data)


def file_count(size: int, private: bool = False) -> int:
    """How many files :func:`export` writes for a tree of ``size`` entries."""
    files, level = 1, 0  # the checkpoint
    while count := size >> (TILE_HEIGHT * level):
        files += (count + TILE_WIDTH - 1) // TILE_WIDTH
        level += 1
    bundles = (size + TILE_WIDTH - 1) // TILE_WIDTH
    return files + bundles * (2 if private else 1)


def export(
    store: Store,
    out: Path,
    cp: CheckpointRow,
    private: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Export the tree of checkpoint ``cp`` to ``out``; return files written
    (``progress`` is told the files written so far, after each bundle)."""
    files = 0
    size = cp.size
    level = 0
    while True:
        count = size >> (TILE_HEIGHT * level)
        if count == 0:
            break
        for index in range((count + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, count - index * TILE_WIDTH)
            data = tile_bytes(store, level, index, width, size)
            if data is None:
                raise FileNotFoundError(f"tile {level}/{index} missing for size {size}")
            _write(out / tile_path(level, index, width), data)
            files += 1
        level += 1
    for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - index * TILE_WIDTH)
        start = index * TILE_WIDTH
        rows = store.entries(start, start + width)
        _write(out / tile_path(-1, index, width), encode_bundle(r[3] for r in rows))
        files += 1
        if private:
            lines = [
                json.dumps({"index": i, "salt": s.hex(), "body": json.loads(b)}, sort_keys=True)
                for i, s, b in store.privates(start, start + width)
            ]
            _write_private(
                out / "private" / f"{encode_index(index).replace('/', '-')}.jsonl",
                ("\n".join(lines) + "\n").encode(),
            )
            files += 1
        if progress is not None:
            progress(files)
    _write(out / "checkpoint", cp.note.encode("utf-8"))
    return files + 1
