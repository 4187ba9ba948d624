"""C2SP tlog-tiles: tile paths, entry bundles and incremental tree roots.

A tile at level ``L`` and index ``N`` holds up to 256 consecutive hashes of
subtrees of height ``8 * L``; a partial tile of width ``W`` holds the first
``W``. Entry bundles hold up to 256 entries, each prefixed with its length as
a big-endian 16-bit integer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from verifier.errors import MalformedError
from verifier.merkle import EMPTY_ROOT, HASH_SIZE, node_hash

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "CompactRange",
    "TilePath",
    "decode_bundle",
    "encode_bundle",
    "encode_index",
    "parse_tile_path",
    "split_hashes",
    "tile_path",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_ENTRY_SIZE = 0xFFFF
_LEVEL_RE = re.compile(r"(entries|0|[1-9][0-9]?)")
_PART_RE = re.compile(r"x[0-9]{3}")
_LAST_RE = re.compile(r"[0-9]{3}")
_WIDTH_RE = re.compile(r"[1-9][0-9]{0,2}")

TilePath = tuple[int, int, int]
"""(level, index, width); level -1 names an entry bundle; width 256 is full."""


def encode_index(n: int) -> str:
    """Encode a tile index as path elements: ``1234067`` -> ``x001/x234/067``."""
    if n < 0:
        raise MalformedError("tile: negative index")
    groups: list[str] = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """Return ``tile/<L>/<N>[.p/<W>]``; level -1 gives ``tile/entries/...``."""
    if not 1 <= width <= TILE_WIDTH:
        raise MalformedError(f"tile: width {width} outside 1..{TILE_WIDTH}")
    name = "entries" if level < 0 else str(level)
    path = f"tile/{name}/{encode_index(index)}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def parse_tile_path(path: str) -> TilePath:
    """Parse a tile path strictly; raise :class:`MalformedError` otherwise."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile" or not _LEVEL_RE.fullmatch(parts[1]):
        raise MalformedError(f"tile: bad path {path!r}")
    level = -1 if parts[1] == "entries" else int(parts[1])
    rest = parts[2:]
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        if not _WIDTH_RE.fullmatch(rest[-1]) or int(rest[-1]) >= TILE_WIDTH:
            raise MalformedError(f"tile: bad partial width in {path!r}")
        width = int(rest[-1])
        rest = [*rest[:-2], rest[-2][:-2]]
    if not rest or not _LAST_RE.fullmatch(rest[-1]):
        raise MalformedError(f"tile: bad index in {path!r}")
    if not all(_PART_RE.fullmatch(p) for p in rest[:-1]):
        raise MalformedError(f"tile: bad index in {path!r}")
    if len(rest) > 1 and rest[0] == "x000":
        raise MalformedError(f"tile: index with leading zero group in {path!r}")
    index = 0
    for p in rest:
        index = index * 1000 + int(p.lstrip("x"))
    return level, index, width


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    """Concatenate entries, each prefixed with its 16-bit big-endian length."""
    out = bytearray()
    for e in entries:
        if len(e) > MAX_ENTRY_SIZE:
            raise MalformedError(f"bundle: entry of {len(e)} bytes exceeds {MAX_ENTRY_SIZE}")
        out += len(e).to_bytes(2, "big")
        out += e
    return bytes(out)


def decode_bundle(data: bytes, count: int | None = None) -> list[bytes]:
    """Split an entry bundle; require exactly ``count`` entries when given."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise MalformedError("bundle: truncated length prefix")
        n = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if pos + n > len(data):
            raise MalformedError("bundle: truncated entry")
        entries.append(data[pos : pos + n])
        pos += n
    if count is not None and len(entries) != count:
        raise MalformedError(f"bundle: {len(entries)} entries, expected {count}")
    return entries


def split_hashes(data: bytes, what: str = "tile") -> list[bytes]:
    """Split a hash tile into 32-byte hashes."""
    if not data or len(data) % HASH_SIZE or len(data) > TILE_WIDTH * HASH_SIZE:
        raise MalformedError(f"{what}: {len(data)} bytes is not 1..256 hashes")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


class CompactRange:
    """Incremental RFC 9162 tree head over a growing list of leaf hashes.

    Keeps one hash per set bit of the size (the roots of the perfect subtrees
    that make up the tree), so ``append`` is amortised O(1) and ``root`` is
    O(log n). :meth:`append` can report ``(height, index, hash)`` for every
    perfect subtree that the new leaf completes, which is how tiles are filled
    and checked: the level-``L`` tile hashes are the subtrees of height ``8 * L``.
    """

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def append(
        self, leaf_hash: bytes, completed: list[tuple[int, int, bytes]] | None = None
    ) -> None:
        """Add one leaf hash; record completed perfect subtrees in ``completed``."""
        h = leaf_hash
        n = self.size
        level = 0
        while n & 1:
            h = node_hash(self._stack.pop(), h)
            n >>= 1
            level += 1
            if completed is not None:
                completed.append((level, n, h))
        self._stack.append(h)
        self.size += 1

    def root(self) -> bytes:
        """Return the tree head of the leaves appended so far."""
        if not self._stack:
            return EMPTY_ROOT
        r = self._stack[-1]
        for h in reversed(self._stack[:-1]):
            r = node_hash(h, r)
        return r
