"""The Merkle tree over stored tiles: integration, tree heads and proofs.

Tiles follow C2SP tlog-tiles (256 hashes per tile, level ``L`` holding hashes
of subtrees of height ``8 * L``). Each stored tile also keeps the inner nodes
of its complete aligned subtrees (heights 1..7 within the tile), so any perfect
subtree hash is one lookup and a proof costs O(log n) tile reads with no
hashing beyond the right edge of the tree. Proofs follow RFC 9162 §2.1.3.1 and
§2.1.4.1 and are checked by :mod:`verifier.merkle` wherever they are produced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ledger.errors import NotFound
from ledger.storage.base import TileRow
from verifier.merkle import EMPTY_ROOT, HASH_SIZE, node_hash
from verifier.tiles import TILE_HEIGHT, TILE_WIDTH

__all__ = ["NodeCache", "NodeReader", "integrate", "make_tile"]

K = TypeVar("K")
V = TypeVar("V")
TileFetch = Callable[[Sequence[tuple[int, int]]], dict[tuple[int, int], TileRow]]


def _inner_offset(width: int, sublevel: int) -> int:
    """Offset in hashes of ``sublevel`` (1..7) inside a tile's inner-node blob."""
    if width == TILE_WIDTH:
        return _FULL_OFFSETS[sublevel]
    return sum(width >> i for i in range(1, sublevel))


_FULL_OFFSETS = [sum(TILE_WIDTH >> i for i in range(1, s)) for s in range(TILE_HEIGHT + 1)]


class NodeCache:
    """Hashes that can never change, shared by the readers of one process.

    Full tiles are immutable, and so is the hash of any leaf range once the
    tree has grown past it: an append-only tree only adds to its right. The
    right edge of the latest checkpoint, recomputed by every proof against
    it, is then computed once. Bounded: each map is emptied when full.
    """

    def __init__(self, tiles: int = 1024, ranges: int = 65_536) -> None:
        self.max_tiles = tiles
        self.max_ranges = ranges
        self.tiles: dict[tuple[int, int], TileRow] = {}
        self.ranges: dict[tuple[int, int], bytes] = {}

    def put_tile(self, key: tuple[int, int], tile: TileRow) -> None:
        if tile.width == TILE_WIDTH:  # partial tiles grow
            _put(self.tiles, self.max_tiles, key, tile)

    def put_range(self, key: tuple[int, int], value: bytes) -> None:
        _put(self.ranges, self.max_ranges, key, value)


def _put(cache: dict[K, V], limit: int, key: K, value: V) -> None:
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def make_tile(level: int, index: int, hashes: bytes, previous: TileRow | None = None) -> TileRow:
    """Build a tile row with its inner nodes, reusing those of ``previous``."""
    width = len(hashes) // HASH_SIZE
    inner = bytearray()
    below = hashes
    for s in range(1, TILE_HEIGHT):
        count = width >> s
        reuse = 0
        if previous is not None:
            reuse = previous.width >> s
            off = _inner_offset(previous.width, s) * HASH_SIZE
            kept = previous.inner[off : off + reuse * HASH_SIZE]
        else:
            kept = b""
        level_bytes = bytearray(kept)
        for k in range(reuse, count):
            a = 2 * k * HASH_SIZE
            level_bytes += node_hash(
                below[a : a + HASH_SIZE], below[a + HASH_SIZE : a + 2 * HASH_SIZE]
            )
        inner += level_bytes
        below = bytes(level_bytes)
    return TileRow(level=level, index=index, width=width, hashes=bytes(hashes), inner=bytes(inner))


def tile_root(tile: TileRow) -> bytes:
    """Hash of a full tile: the node one level above its 256 hashes."""
    off = _inner_offset(TILE_WIDTH, TILE_HEIGHT - 1) * HASH_SIZE
    return node_hash(
        tile.inner[off : off + HASH_SIZE], tile.inner[off + HASH_SIZE : off + 2 * HASH_SIZE]
    )


def integrate(fetch: TileFetch, old_size: int, new_leaf_hashes: Sequence[bytes]) -> list[TileRow]:
    """Append leaf hashes to the tree of ``old_size`` leaves; return changed tiles.

    Full tiles at one level feed their root to the level above, as in
    tlog-tiles. Tiles already full are never rewritten.
    """
    changed: list[TileRow] = []
    level = 0
    new = list(new_leaf_hashes)
    old_count = old_size
    while new:
        first = old_count // TILE_WIDTH
        prev: TileRow | None = None
        if old_count % TILE_WIDTH:
            prev = fetch([(level, first)]).get((level, first))
            if prev is None or prev.width != old_count % TILE_WIDTH:
                raise NotFound(f"tiles: partial tile {level}/{first} missing or wrong width")
        buf = bytearray(prev.hashes if prev else b"")
        tile_index = first
        upward: list[bytes] = []
        pos = 0
        while pos < len(new):
            room = TILE_WIDTH - len(buf) // HASH_SIZE
            take = new[pos : pos + room]
            pos += len(take)
            buf += b"".join(take)
            row = make_tile(level, tile_index, bytes(buf), prev)
            changed.append(row)
            if row.width == TILE_WIDTH:
                upward.append(tile_root(row))
                tile_index += 1
                buf = bytearray()
            prev = None
        new = upward
        old_count //= TILE_WIDTH
        level += 1
    return changed


class NodeReader:
    """Perfect-subtree hashes from stored tiles, caching tiles for one operation.

    ``overlay`` holds tiles written in the current transaction, which take
    precedence over stored ones.
    """

    def __init__(
        self, fetch: TileFetch, overlay: Sequence[TileRow] = (), shared: NodeCache | None = None
    ) -> None:
        self._fetch = fetch
        self._cache: dict[tuple[int, int], TileRow] = {(t.level, t.index): t for t in overlay}
        # Only for readers of committed state: an overlay is not yet committed.
        self._shared = None if overlay else shared
        self.reads = 0

    def _tile(self, level: int, index: int) -> TileRow:
        key = (level, index)
        tile = self._cache.get(key)
        if tile is None and self._shared is not None:
            tile = self._shared.tiles.get(key)
        if tile is None:
            self.reads += 1
            tile = self._fetch([key]).get(key)
            if tile is None:
                raise NotFound(f"tiles: tile {level}/{index} is not stored")
            if self._shared is not None:
                self._shared.put_tile(key, tile)
        self._cache[key] = tile
        return tile

    def node(self, height: int, index: int) -> bytes:
        """Hash of the perfect subtree of ``2**height`` leaves number ``index``."""
        level, sub = divmod(height, TILE_HEIGHT)
        first = index << sub  # position at the tile level of its leftmost hash
        tile = self._tile(level, first >> TILE_HEIGHT)
        k = (first & (TILE_WIDTH - 1)) >> sub
        if k >= tile.width >> sub:
            raise NotFound(f"tiles: node {height}/{index} not integrated yet")
        if sub == 0:
            return tile.hashes[k * HASH_SIZE : (k + 1) * HASH_SIZE]
        off = (_inner_offset(tile.width, sub) + k) * HASH_SIZE
        return tile.inner[off : off + HASH_SIZE]

    def range_hash(self, lo: int, hi: int) -> bytes:
        """RFC 9162 hash of leaves ``[lo, hi)`` where ``lo`` is a subtree boundary."""
        if hi <= lo:
            return EMPTY_ROOT
        shared = self._shared
        if shared is not None:
            known = shared.ranges.get((lo, hi))
            if known is not None:
                return known
        start = lo
        parts: list[bytes] = []
        while lo < hi:
            h = (lo & -lo).bit_length() - 1 if lo else 62
            while (1 << h) > hi - lo:
                h -= 1
            parts.append(self.node(h, lo >> h))
            lo += 1 << h
        r = parts[-1]
        for p in reversed(parts[:-1]):
            r = node_hash(p, r)
        if shared is not None and len(parts) > 1:
            shared.put_range((start, hi), r)
        return r

    def root(self, size: int) -> bytes:
        """Tree head of the first ``size`` leaves."""
        return self.range_hash(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 ``PATH(index, D[0:size])`` from tiles."""
        if not 0 <= index < size:
            raise NotFound(f"inclusion: index {index} is not below tree size {size}")
        proof: list[bytes] = []
        lo, hi, m = 0, size, index
        while hi - lo > 1:
            k = 1 << ((hi - lo - 1).bit_length() - 1)
            if m < k:
                proof.append(self.range_hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.range_hash(lo, lo + k))
                lo, m = lo + k, m - k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 ``PROOF(old_size, D[0:new_size])`` from tiles."""
        if not 0 <= old_size <= new_size:
            raise NotFound(f"consistency: old size {old_size} is larger than {new_size}")
        if old_size in (0, new_size):
            return []
        proof: list[bytes] = []
        lo, hi, m, complete = 0, new_size, old_size, True
        while m != hi - lo:
            k = 1 << ((hi - lo - 1).bit_length() - 1)
            if m <= k:
                proof.append(self.range_hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.range_hash(lo, lo + k))
                lo, m, complete = lo + k, m - k, False
        if not complete:
            proof.append(self.range_hash(lo, hi))
        proof.reverse()
        return proof
