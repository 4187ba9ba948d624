"""C2SP tlog-tiles endpoints: ``/checkpoint``, ``/tile/<L>/<N>[.p/<W>]``, ``/tile/entries/...``.

Every served byte is compared with what ``verifier/`` computes from the leaves;
everything a client might send that is not a covered tile is a 404 problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import ORIGIN, ClientFor, expected_tiles, fill
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.core import Ledger
from verifier.checkpoint import open_checkpoint
from verifier.merkle import leaf_hash, root_from_leaf_hashes
from verifier.record import decode_record
from verifier.tiles import TILE_WIDTH, decode_bundle, parse_tile_path, split_hashes


@pytest.fixture
def fresh_ledger(tmp_path: Path) -> Iterator[Ledger]:
    """An initialised ledger with only the empty checkpoint."""
    led = Ledger.init(tmp_path / "home", origin=ORIGIN)
    try:
        yield led
    finally:
        led.close()


@pytest.fixture
def client_for() -> Iterator[ClientFor]:
    """Build TestClients (no background sealer) around ledgers; closed afterwards.

    Server exceptions come back as 500 responses instead of being raised, so a
    test can assert that a request never produces one.
    """
    clients: list[TestClient] = []

    def make(led: Ledger) -> TestClient:
        c = TestClient(create_app(led), raise_server_exceptions=False)
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture(scope="module", params=[1, 256, 300, 600])
def sealed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Ledger, TestClient]]:
    """A sealed ledger of ``param`` entries and a client for it (read-only tests)."""
    led = Ledger.init(tmp_path_factory.mktemp("api") / "home", origin=ORIGIN)
    fill(led, request.param)
    led.seal()
    with TestClient(create_app(led), raise_server_exceptions=False) as client:
        yield led, client
    led.close()


def _leaves(led: Ledger, size: int) -> list[bytes]:
    return [e[3] for e in led.store.entries(0, size)]


def assert_problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert isinstance(body, dict)
    assert body["status"] == status
    assert isinstance(body["type"], str)
    assert body["type"]
    assert isinstance(body["title"], str)
    assert body["title"]
    return body


def _checkpoint(client: TestClient, led: Ledger) -> tuple[int, bytes]:
    r = client.get("/checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "immutable" not in r.headers.get("cache-control", "")
    cp = open_checkpoint(r.content, [led.verifier_key], ORIGIN).checkpoint
    return cp.size, cp.root


# -- what is served ------------------------------------------------------------
def test_checkpoint_is_the_signed_note(sealed: tuple[Ledger, TestClient]) -> None:
    led, client = sealed
    size, root = _checkpoint(client, led)
    assert size == led.store.size()
    assert client.get("/checkpoint").text == led.latest_checkpoint().note
    assert root == root_from_leaf_hashes([leaf_hash(x) for x in _leaves(led, size)])


def test_every_tile_is_served_exactly(sealed: tuple[Ledger, TestClient]) -> None:
    led, client = sealed
    size, _ = _checkpoint(client, led)
    leaves = _leaves(led, size)
    expected = expected_tiles(leaves, [leaf_hash(x) for x in leaves])
    for path, data in expected.items():
        r = client.get("/" + path)
        assert r.status_code == 200, (path, r.text)
        assert r.content == data, path
        assert r.headers["content-type"] == "application/octet-stream"
        cache = r.headers["cache-control"]
        if parse_tile_path(path)[2] == TILE_WIDTH:
            assert "immutable" in cache, path
        else:
            assert "immutable" not in cache, path


def test_the_expected_tile_shapes_are_covered(sealed: tuple[Ledger, TestClient]) -> None:
    """The sizes are chosen so that full, partial and level-1 tiles are all served."""
    led, client = sealed
    size, _ = _checkpoint(client, led)
    leaves = _leaves(led, size)
    paths = set(expected_tiles(leaves, [leaf_hash(x) for x in leaves]))
    shapes = {
        1: {"tile/0/000.p/1", "tile/entries/000.p/1"},
        256: {"tile/0/000", "tile/1/000.p/1", "tile/entries/000"},
        300: {"tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1", "tile/entries/001.p/44"},
        600: {"tile/0/001", "tile/0/002.p/88", "tile/1/000.p/2", "tile/entries/002.p/88"},
    }
    assert shapes[size] <= paths


def test_a_client_audits_the_log_over_http(sealed: tuple[Ledger, TestClient]) -> None:
    """What a tlog-tiles client does: checkpoint, then bundles, then the root."""
    led, client = sealed
    size, root = _checkpoint(client, led)
    hashes: list[bytes] = []
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        suffix = "" if width == TILE_WIDTH else f".p/{width}"
        r = client.get(f"/tile/entries/{n:03d}{suffix}")
        assert r.status_code == 200
        for j, leaf in enumerate(decode_bundle(r.content, width)):
            assert decode_record(leaf).index == n * TILE_WIDTH + j
            hashes.append(leaf_hash(leaf))
    assert root_from_leaf_hashes(hashes) == root
    # The level-0 tiles carry the same leaf hashes.
    served: list[bytes] = []
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        suffix = "" if width == TILE_WIDTH else f".p/{width}"
        served += split_hashes(client.get(f"/tile/0/{n:03d}{suffix}").content)
    assert served == hashes


def test_narrower_partial_of_a_tile_is_a_prefix_or_404(sealed: tuple[Ledger, TestClient]) -> None:
    led, client = sealed
    size, _ = _checkpoint(client, led)
    if size < 2:
        return
    leaves = _leaves(led, size)
    hashes = [leaf_hash(x) for x in leaves]
    for path, expect in (
        ("/tile/0/000.p/1", hashes[0]),
        ("/tile/entries/000.p/1", decode_bundle(client.get("/tile/entries/000.p/1").content)),
    ):
        r = client.get(path)
        if r.status_code == 404:
            assert_problem(r, 404)
            continue
        assert r.status_code == 200
        if path.startswith("/tile/entries"):
            assert decode_bundle(r.content, 1) == [leaves[0]]
        else:
            assert r.content == expect


# -- what is not -----------------------------------------------------------------
MALFORMED = [
    "/tile/0/1",
    "/tile/0/01",
    "/tile/0/0000",
    "/tile/0/x000/001",
    "/tile/0/x1/000",
    "/tile/0/x001/x002",
    "/tile/0/000.p/0",
    "/tile/0/000.p/256",
    "/tile/0/000.p/257",
    "/tile/0/000.p/1000",
    "/tile/0/000.p/01",
    "/tile/0/000.p/-1",
    "/tile/0/000.p/",
    "/tile/0/000.p",
    "/tile/0/000.P/1",
    "/tile/0/000.p/1/2",
    "/tile/0/000.p/1.p/1",
    "/tile/0/000/",
    "/tile/0/-01",
    "/tile/0/abc",
    "/tile/0/%C3%A9%C3%A9%C3%A9",
    "/tile/0",
    "/tile/",
    "/tile",
    "/tile/-1/000",
    "/tile/01/000",
    "/tile/100/000",
    "/tile/abc/000",
    "/tile/entries",
    "/tile/entries/",
    "/tile/entries/1",
    "/tile/entries/000.p/abc",
    "/tile/entries/x000/000",
    "/tile/0/x999999999999999999999999/000",
    "/tile/0/" + "x999/" * 400 + "999",
]


@pytest.mark.parametrize("path", MALFORMED)
def test_malformed_tile_paths_are_404_problems(
    sealed: tuple[Ledger, TestClient], path: str
) -> None:
    _, client = sealed
    assert_problem(client.get(path), 404)


def test_unknown_route_and_method_are_problems(sealed: tuple[Ledger, TestClient]) -> None:
    _, client = sealed
    assert_problem(client.get("/nope"), 404)
    assert_problem(client.post("/checkpoint"), 405)
    assert_problem(client.put("/tile/0/000"), 405)


def test_tiles_beyond_the_latest_checkpoint_are_404(
    fresh_ledger: Ledger, client_for: ClientFor
) -> None:
    led = fresh_ledger
    client = client_for(led)
    # Only the empty checkpoint: no tile exists at all.
    for path in ("/tile/0/000.p/1", "/tile/entries/000.p/1", "/tile/0/000"):
        assert_problem(client.get(path), 404)
    fill(led, 300)
    led.seal()
    fill(led, 100, start=300)  # appended and durable, but not yet in a checkpoint
    size, _ = _checkpoint(client, led)
    assert size == 300
    beyond = [
        "/tile/0/001",
        "/tile/0/001.p/45",
        "/tile/0/001.p/144",
        "/tile/0/002.p/1",
        "/tile/0/003",
        "/tile/1/000",
        "/tile/1/000.p/2",
        "/tile/2/000.p/1",
        "/tile/entries/001",
        "/tile/entries/001.p/45",
        "/tile/entries/001.p/144",
        "/tile/entries/002.p/1",
        "/tile/entries/x001/000",
    ]
    for path in beyond:
        assert_problem(client.get(path), 404)
    assert client.get("/tile/entries/001.p/44").status_code == 200
    # Once sealed, the same paths are served (and the new checkpoint with them).
    led.seal()
    assert _checkpoint(client, led)[0] == 400
    r = client.get("/tile/entries/001.p/144")
    assert r.status_code == 200
    assert len(decode_bundle(r.content, 144)) == 144
    assert client.get("/tile/0/001.p/144").status_code == 200
    assert "immutable" in client.get("/tile/0/000").headers["cache-control"]


def test_full_tiles_never_change_as_the_log_grows(
    fresh_ledger: Ledger, client_for: ClientFor
) -> None:
    led = fresh_ledger
    client = client_for(led)
    fill(led, 256)
    led.seal()
    first = client.get("/tile/0/000").content
    bundle = client.get("/tile/entries/000").content
    fill(led, 300, start=256)
    led.seal()
    assert client.get("/tile/0/000").content == first
    assert client.get("/tile/entries/000").content == bundle
    size, root = _checkpoint(client, led)
    assert size == 556
    leaves = _leaves(led, size)
    assert root == root_from_leaf_hashes([leaf_hash(x) for x in leaves])
    assert client.get("/tile/0/002.p/44").content == b"".join(leaf_hash(x) for x in leaves[512:556])
