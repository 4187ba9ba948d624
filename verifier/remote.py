"""Fetch a public C2SP tlog-tiles log over HTTP(S) into a local directory.

``evidence-verify log URL`` mirrors exactly the files an audit of the log's
current checkpoint reads (the checkpoint, every hash tile and entry bundle of
that tree) and then audits the copy, so the audit works on one consistent
snapshot. Responses are size-limited; only ``http`` and ``https`` URLs are
accepted and redirects are not followed.
"""

from __future__ import annotations

import http.client
import os
import urllib.parse
from pathlib import Path

from verifier.checkpoint import Checkpoint
from verifier.errors import MalformedError
from verifier.note import parse_note
from verifier.tiles import MAX_ENTRY_SIZE, TILE_HEIGHT, TILE_WIDTH, tile_path

__all__ = ["fetch_log", "is_url"]

_MAX_CHECKPOINT = 1 << 20
_MAX_TILE = TILE_WIDTH * 32
_MAX_BUNDLE = TILE_WIDTH * (2 + MAX_ENTRY_SIZE)


def is_url(source: str) -> bool:
    """True when ``source`` names an http(s) URL rather than a directory."""
    return source.startswith(("http://", "https://"))


class _Client:
    def __init__(self, url: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MalformedError(f"log: {url!r} is not an http(s) URL")
        if parts.query or parts.fragment:
            raise MalformedError(f"log: {url!r} has a query or fragment")
        self.url = url
        self.base = parts.path.rstrip("/")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.conn = cls(parts.hostname, parts.port, timeout=timeout)

    def get(self, rel: str, limit: int) -> bytes | None:
        """GET ``base/rel``: the body, None for 404, MalformedError otherwise."""
        try:
            self.conn.request("GET", f"{self.base}/{rel}", headers={"Accept-Encoding": "identity"})
            resp = self.conn.getresponse()
            body = resp.read(limit + 1)
            if resp.will_close:
                self.conn.close()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            raise MalformedError(f"log: cannot fetch {self.url}/{rel}: {e}") from e
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise MalformedError(f"log: {self.url}/{rel} answered HTTP {resp.status}")
        if len(body) > limit:
            raise MalformedError(f"log: {self.url}/{rel} is larger than {limit} bytes")
        return body

    def close(self) -> None:
        self.conn.close()


def _write(dest: Path, rel: str, data: bytes) -> None:
    path = dest / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def fetch_log(url: str, dest: str | os.PathLike[str], *, timeout: float = 30.0) -> int:
    """Mirror the log at ``url`` into ``dest``; return the number of files fetched.

    Missing tiles are left missing (the audit reports them); a network error
    or an unexpected HTTP status is a :class:`MalformedError`.
    """
    out = Path(dest)
    client = _Client(url.rstrip("/"), timeout)
    try:
        data = client.get("checkpoint", _MAX_CHECKPOINT)
        if data is None:
            raise MalformedError(f"log: {url} has no checkpoint")
        try:
            size = Checkpoint.from_text(parse_note(data).text).size
        except MalformedError as e:
            raise MalformedError(f"log: checkpoint at {url}: {e}") from e
        _write(out, "checkpoint", data)
        files = 1
        level = 0
        while (count := size >> (TILE_HEIGHT * level)) > 0:
            for index in range((count + TILE_WIDTH - 1) // TILE_WIDTH):
                rel = tile_path(level, index, min(TILE_WIDTH, count - index * TILE_WIDTH))
                tile = client.get(rel, _MAX_TILE)
                if tile is not None:
                    _write(out, rel, tile)
                    files += 1
            level += 1
        for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
            rel = tile_path(-1, index, min(TILE_WIDTH, size - index * TILE_WIDTH))
            bundle = client.get(rel, _MAX_BUNDLE)
            if bundle is not None:
                _write(out, rel, bundle)
                files += 1
        return files
    finally:
        client.close()
