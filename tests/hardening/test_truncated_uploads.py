"""A multipart deposit cut short is refused whole: 400, nothing stored, nothing left.

The body is complete as HTTP (its Content-Length, or its last chunk,
arrives) but not as multipart: it ends inside the file, inside the closing
delimiter, or between two parts. Each must be a 400 problem, with no log
entry, no blob and no staged file, while the same body with its closing
delimiter is deposited.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hardening_support import Server, chunked, exchange, http_head, make_home, serving

pytestmark = pytest.mark.slow

B = "cutboundary"
CONTENT = bytes(range(256)) * 800  # 200 KiB: past the inline size, so a file in blobs/
HEAD = (
    f'--{B}\r\nContent-Disposition: form-data; name="title"\r\n\r\ncut short\r\n'
    f'--{B}\r\nContent-Disposition: form-data; name="file"; filename="c.bin"\r\n'
    "Content-Type: application/octet-stream\r\n\r\n"
).encode()
WHOLE = HEAD + CONTENT + f"\r\n--{B}--\r\n".encode()

CUT = {
    "inside the file": HEAD + CONTENT[:150_000],
    "after the file, no delimiter": HEAD + CONTENT,
    "inside the closing delimiter": HEAD + CONTENT + f"\r\n--{B[:5]}".encode(),
    "delimiter without its closing dashes": HEAD + CONTENT + f"\r\n--{B}".encode(),
    "between two parts": HEAD + CONTENT + f"\r\n--{B}\r\n".encode(),
    "one closing dash": HEAD + CONTENT + f"\r\n--{B}-".encode(),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    root = tmp_path_factory.mktemp("cut")
    tokens = make_home(root / "home")
    with serving(root / "home", root) as srv:
        yield srv, tokens["rights_holder"]


def _files(home: Path) -> set[Path]:
    return {p for p in (home / "blobs").rglob("*") if p.is_file()}


def _listing(srv: Server, token: str) -> list[dict[str, object]]:
    r = httpx.get(srv.base + "/v1/evidence", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    items: list[dict[str, object]] = r.json()["items"]
    return items


def _headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={B}",
    }


@pytest.mark.parametrize("how", sorted(CUT))
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_truncated_multipart_is_refused_and_leaves_nothing(
    server: tuple[Server, str], how: str, framing: str
) -> None:
    srv, token = server
    before, files = _listing(srv, token), _files(srv.home)
    body = CUT[how]
    if framing == "chunked":
        r = exchange(
            srv.port,
            http_head("POST", "/v1/evidence", _headers(token)),
            lambda: chunked(iter([body[:70_000], body[70_000:]])),
        )
    else:
        r = exchange(
            srv.port, http_head("POST", "/v1/evidence", _headers(token), length=len(body)) + body
        )
    assert r.status == 400, r.response[:400]
    assert r.headers["content-type"] == "application/problem+json"
    assert "closing boundary" in r.json()["detail"]
    assert _listing(srv, token) == before
    assert _files(srv.home) == files  # no blob, no staged file


def test_the_same_body_whole_is_deposited(server: tuple[Server, str]) -> None:
    srv, token = server
    files = _files(srv.home)
    r = exchange(
        srv.port, http_head("POST", "/v1/evidence", _headers(token), length=len(WHOLE)) + WHOLE
    )
    assert r.status == 201, r.response[:400]
    (receipt,) = r.json()["receipts"]
    assert receipt["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert len(_files(srv.home)) == len(files) + 1
    got = httpx.get(
        f"{srv.base}/v1/evidence/{receipt['evidence_id']}/content",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert got.content == CONTENT
