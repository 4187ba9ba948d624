"""C2SP tlog-tiles: paths, entry bundles, hash tiles and CompactRange."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.errors import MalformedError
from verifier.merkle import EMPTY_ROOT, leaf_hash, root_from_leaf_hashes
from verifier.tiles import (
    TILE_WIDTH,
    CompactRange,
    decode_bundle,
    encode_bundle,
    encode_index,
    parse_tile_path,
    split_hashes,
    tile_path,
)


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "000"),
        (5, "005"),
        (999, "999"),
        (1000, "x001/000"),
        (1234067, "x001/x234/067"),
        (10**9, "x001/x000/x000/000"),
    ],
)
def test_encode_index(n: int, encoded: str) -> None:
    assert encode_index(n) == encoded


def test_encode_negative_index() -> None:
    with pytest.raises(MalformedError):
        encode_index(-1)


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ((0, 1234067), "tile/0/x001/x234/067"),
        ((1, 0, 5), "tile/1/000.p/5"),
        ((-1, 7), "tile/entries/007"),
        ((-1, 1234067, 255), "tile/entries/x001/x234/067.p/255"),
        ((2, 1000, 256), "tile/2/x001/000"),
    ],
)
def test_tile_path(args: tuple[int, ...], path: str) -> None:
    assert tile_path(*args) == path
    level, index, *width = args
    assert parse_tile_path(path) == (level, index, width[0] if width else TILE_WIDTH)


@pytest.mark.parametrize("width", [0, 257, -1])
def test_tile_path_width_bounds(width: int) -> None:
    with pytest.raises(MalformedError, match="width"):
        tile_path(0, 0, width)


@settings(max_examples=300, deadline=None)
@given(st.integers(-1, 63), st.integers(0, 2**63), st.integers(1, 256))
def test_tile_path_round_trip(level: int, index: int, width: int) -> None:
    assert parse_tile_path(tile_path(level, index, width)) == (level, index, width)


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1",  # index groups have three digits
        "tile/0/0001",
        "tile/0/x000/001",  # leading zero group
        "tile/0/x1/001",
        "tile/0/001/x001",  # x-groups come first
        "tile/0/X001/001",
        "tile/0/001/",
        "tile/0//001",
        "tile/0/001.p",
        "tile/0/001.p/0",
        "tile/0/001.p/256",
        "tile/0/001.p/05",
        "tile/0/001.p/+5",
        "tile/0/x001.p/5",
        "tile/0/.p/5",
        "tile/00/001",  # level without leading zeros
        "tile/100/001",
        "tile/-1/001",
        "tile/data/001",
        "tiles/0/001",
        "/tile/0/001",
        "tile/0",
        "tile",
        "",
        "tile/0/١٢٣",  # non-ASCII digits
    ],
)
def test_parse_tile_path_refuses(path: str) -> None:
    with pytest.raises(MalformedError):
        parse_tile_path(path)


# ---------------------------------------------------------------- bundles


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=256))
def test_bundle_round_trip(entries: list[bytes]) -> None:
    data = encode_bundle(entries)
    assert decode_bundle(data) == entries
    assert decode_bundle(data, len(entries)) == entries


def test_bundle_layout() -> None:
    assert encode_bundle([b"ab", b"", b"c"]) == b"\x00\x02ab\x00\x00\x00\x01c"


def test_bundle_entry_size_limit() -> None:
    assert decode_bundle(encode_bundle([b"x" * 0xFFFF])) == [b"x" * 0xFFFF]
    with pytest.raises(MalformedError, match="exceeds"):
        encode_bundle([b"x" * 0x10000])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=20), st.data())
def test_truncated_bundles_are_refused(entries: list[bytes], data: st.DataObject) -> None:
    encoded = encode_bundle(entries)
    cut = data.draw(st.integers(1, len(encoded) - 1))
    truncated = encoded[:cut]
    # A cut that falls between entries leaves a shorter but well-formed bundle;
    # the expected count catches it.
    with pytest.raises(MalformedError, match=r"truncated|entries, expected"):
        decode_bundle(truncated, len(entries))


def test_bundle_errors() -> None:
    with pytest.raises(MalformedError, match="truncated length prefix"):
        decode_bundle(b"\x00\x01a\x00")
    with pytest.raises(MalformedError, match="truncated entry"):
        decode_bundle(b"\x00\x05abc")
    with pytest.raises(MalformedError, match="2 entries, expected 3"):
        decode_bundle(encode_bundle([b"a", b"b"]), 3)
    with pytest.raises(MalformedError, match="3 entries, expected 2"):
        decode_bundle(encode_bundle([b"a", b"b", b""]), 2)


def test_split_hashes() -> None:
    hashes = [leaf_hash(bytes([i])) for i in range(256)]
    assert split_hashes(b"".join(hashes)) == hashes
    for bad in (b"", b"\x00" * 31, b"\x00" * 33, b"\x00" * 32 * 257):
        with pytest.raises(MalformedError, match=r"is not 1\.\.256 hashes"):
            split_hashes(bad)


# ---------------------------------------------------------------- CompactRange


HASHES = [leaf_hash(b"%d" % i) for i in range(1100)]


def test_compact_range_equals_root_from_leaf_hashes_for_every_size() -> None:
    cr = CompactRange()
    assert cr.root() == EMPTY_ROOT
    for n in range(1, len(HASHES) + 1):
        cr.append(HASHES[n - 1])
        assert cr.size == n
        assert cr.root() == root_from_leaf_hashes(HASHES[:n]), n


def test_compact_range_reports_completed_subtrees() -> None:
    cr = CompactRange()
    completed: list[tuple[int, int, bytes]] = []
    for h in HASHES[:1024]:
        cr.append(h, completed)
    # Every perfect subtree of 2..1024 leaves, each once, with its correct hash.
    assert len(completed) == 1023
    for height, index, node in completed:
        width = 1 << height
        assert node == root_from_leaf_hashes(HASHES[index * width : (index + 1) * width])
    # Height 8: the level-1 tile hashes of C2SP tlog-tiles, in order.
    assert [(i, n) for h, i, n in completed if h == 8] == [
        (i, root_from_leaf_hashes(HASHES[i * 256 : (i + 1) * 256])) for i in range(4)
    ]
