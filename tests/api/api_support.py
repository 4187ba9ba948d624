"""Helpers for the HTTP API tests: expected tlog-tiles bytes, computed with ``verifier/`` only.

There is deliberately no ``conftest.py`` here: conftest modules outside a
package all import as ``conftest``, so one here would shadow the root
``tests/conftest.py`` for any test that does ``from conftest import ...``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from fastapi.testclient import TestClient

from ledger.core import Ledger
from ledger.events import evidence_deposited
from ledger.services import Receipt, Services
from verifier.merkle import root_from_leaf_hashes
from verifier.tiles import TILE_WIDTH, encode_bundle, tile_path

ORIGIN = "api.test/log"

ClientFor = Callable[[Ledger], TestClient]
"""Builds a TestClient around a ledger (the ``client_for`` fixture)."""


def sha(i: int | str) -> str:
    """A deterministic, distinct SHA-256 hex digest per ``i``."""
    return hashlib.sha256(f"api evidence {i}".encode()).hexdigest()


def expected_tiles(leaves: list[bytes], leaf_hashes: list[bytes]) -> dict[str, bytes]:
    """Every tile and entry bundle of the tree over ``leaves``, by path."""
    out: dict[str, bytes] = {}
    size = len(leaf_hashes)
    level = 0
    while (count := size >> (8 * level)) > 0:
        span = TILE_WIDTH**level  # leaves under one hash of this level
        hashes = [
            root_from_leaf_hashes(leaf_hashes[i * span : (i + 1) * span]) for i in range(count)
        ]
        for start in range(0, count, TILE_WIDTH):
            chunk = hashes[start : start + TILE_WIDTH]
            out[tile_path(level, start // TILE_WIDTH, len(chunk))] = b"".join(chunk)
        level += 1
    for start in range(0, size, TILE_WIDTH):
        chunk = leaves[start : start + TILE_WIDTH]
        out[tile_path(-1, start // TILE_WIDTH, len(chunk))] = encode_bundle(chunk)
    return out


def fill(led: Ledger, n: int, start: int = 0) -> list[Receipt]:
    """Deposit ``n`` hashes through the library (durable on return)."""
    drafts = (evidence_deposited(kind="hash", sha256=sha(i)) for i in range(start, start + n))
    return list(Services(led).deposits.bulk(drafts))
