"""Server memory while hostile requests stream in (real server, raw sockets).

    python bench/hostile_bodies.py [--size-mib 192]

Starts ``evidence-ledger serve`` (one worker, SQLite) and sends, four at a
time: bodies the service refuses (no-token JSON to /v1/certificates and
/v1/captures, a chunked JSON deposit, a verification ``certificate`` part),
then bodies it accepts and streams to disk (two verification packages, two
file deposits), then one 64 MiB request header. Prints the server's
resident memory (process and workers, from /proc) before and at its peak,
the bytes the server let in, and the time. Run it against an older checkout
(``PYTHONPATH=/path/to/checkout``) for the baseline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(HERE / "tests" / "hardening"))

from hardening_support import (  # noqa: E402
    MiB,
    RssSampler,
    Server,
    chunked,
    exchange,
    filler,
    http_head,
    make_home,
    multipart_part,
    serving,
)

Body = tuple[bytes, Callable[[], Iterator[bytes]]]
JSON = {"Content-Type": "application/json"}


def json_flood(path: str, headers: dict[str, str], size: int) -> Body:
    return http_head("POST", path, headers), lambda: chunked(
        filler(size, first=b'{"evidence_id": "')
    )


def multipart(path: str, headers: dict[str, str], field: str, size: int) -> Body:
    b = "benchboundary"
    head = http_head(
        "POST", path, {**headers, "Content-Type": f"multipart/form-data; boundary={b}"}
    )
    part = multipart_part(b, field, f"{field}.bin")
    return head, lambda: chunked(filler(size, first=part, last=f"\r\n--{b}--\r\n".encode()))


def run(srv: Server, name: str, batch: list[Body]) -> None:
    before = srv.rss_kib()
    with RssSampler(srv) as rss, ThreadPoolExecutor(len(batch)) as pool:
        t = time.monotonic()
        results = list(pool.map(lambda b: exchange(srv.port, b[0], b[1], timeout=600), batch))
        seconds = time.monotonic() - t
    statuses = sorted(str(r.status) for r in results)
    sent = sum(r.sent for r in results) / MiB
    print(
        f"{name:<44} RSS {before / 1024:6.0f} -> peak {rss.peak / 1024:6.0f} MiB "
        f"(+{(rss.peak - before) / 1024:4.0f}); sent {sent:6.0f} MiB; "
        f"{seconds:5.1f} s; statuses {','.join(statuses)}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=192)
    size = ap.parse_args().size_mib * MiB
    root = Path(tempfile.mkdtemp(prefix="hostile-bench-"))
    tokens = make_home(root / "home")
    auth = {"Authorization": f"Bearer {tokens['rights_holder']}"}
    with serving(root / "home", root) as srv:
        # Warm up every route used (imports, caches) before measuring.
        for body in (
            multipart("/v1/verify", {}, "package", MiB),
            multipart("/v1/evidence", auth, "file", MiB),
        ):
            exchange(srv.port, *body)
        time.sleep(0.5)
        run(
            srv,
            f"refused: 4 x {size // MiB} MiB (no token, JSON, part)",
            [
                json_flood("/v1/certificates", JSON, size),
                json_flood("/v1/captures", JSON, size),
                json_flood("/v1/evidence", {**JSON, **auth}, size),
                multipart("/v1/verify", {}, "certificate", size),
            ],
        )
        run(
            srv,
            f"accepted: 4 x {size // MiB} MiB (2 verify, 2 deposits)",
            [
                multipart("/v1/verify", {}, "package", size),
                multipart("/v1/verify", {}, "package", size),
                multipart("/v1/evidence", auth, "file", size),
                multipart("/v1/evidence", auth, "file", size),
            ],
        )
        header = b"GET /checkpoint HTTP/1.1\r\nHost: x\r\nX-Pad: "
        run(
            srv, "one 64 MiB request header", [(header, lambda: filler(64 * MiB, last=b"\r\n\r\n"))]
        )


if __name__ == "__main__":
    main()
