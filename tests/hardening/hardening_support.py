"""Helpers for attacking a real ``evidence-ledger serve`` over loopback.

There is deliberately no ``conftest.py`` here (see ``tests/api/api_support.py``).
The server is a real process (with its uvicorn workers); requests are raw
bytes on sockets, so nothing between the test and the server tidies them up;
memory is the resident set of the server and all its children, read from
``/proc``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ledger.core import Ledger
from ledger.services import OPERATOR, Services

BIN = Path(sys.executable).parent
ORIGIN = "hardening.test/log"
MiB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_home(home: Path, database_url: str | None = None, **http: Any) -> dict[str, str]:
    """A ledger home with a rights holder and a notary; ``http`` settings merged
    into its config.json. Returns the accounts' tokens by role."""
    with Ledger.init(home, origin=ORIGIN, database_url=database_url) as led:
        services = Services(led)
        tokens = {
            role: services.accounts.create(OPERATOR, role, f"{role} one").token
            for role in ("rights_holder", "notary")
        }
    if http:
        path = home / "config.json"
        cfg = json.loads(path.read_text())
        cfg["http"] = {**cfg.get("http", {}), **http}
        path.write_text(json.dumps(cfg))
    return tokens


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (the uvicorn workers), KiB."""
    total = 0
    for q in [pid, *_children(pid)]:
        try:
            m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{q}/status").read_text())
        except OSError:
            continue
        total += int(m.group(1)) if m else 0
    return total


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    home: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)


@contextmanager
def serving(home: Path, logs: Path, *, workers: int = 1, name: str = "serve") -> Iterator[Server]:
    """``evidence-ledger serve`` on a free loopback port, stopped (with its workers) after."""
    port = free_port()
    log = (logs / f"{name}.log").open("w+")
    proc = subprocess.Popen(
        [
            str(BIN / "evidence-ledger"),
            "--home",
            str(home),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(proc, port, home)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(server.base + "/checkpoint", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise AssertionError(f"server did not start:\n{log.read()}")
            time.sleep(0.1)
        if workers > 1:  # every worker up (each answers /checkpoint once it is)
            while len(_children(proc.pid)) < workers and time.monotonic() < deadline:
                time.sleep(0.1)
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@dataclass
class Exchange:
    """What one raw request got: the response bytes, how much of the body the
    server took before it answered or closed, and how long that took."""

    status: int | None
    response: bytes
    sent: int
    seconds: float
    send_error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.response.split(b"\r\n\r\n", 1)[1])


def _parse(raw: bytes) -> tuple[int | None, dict[str, str]]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0]) if lines else None
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return (int(m.group(1)) if m else None), headers


def exchange(
    port: int,
    head: bytes,
    body: Callable[[], Iterator[bytes]] | None = None,
    *,
    source: str | None = None,
    timeout: float = 60.0,
) -> Exchange:
    """Send ``head`` and then the chunks of ``body`` (on another thread, until
    the server closes), while reading the response; return what came back."""
    sock = socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
    )
    sent = 0
    error: list[str] = []
    started = time.monotonic()

    def pump() -> None:
        nonlocal sent
        try:
            sock.sendall(head)
            if body is not None:
                for chunk in body():
                    sock.sendall(chunk)
                    sent += len(chunk)
        except OSError as e:  # the server closed: what we wanted to see
            error.append(type(e).__name__)

    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    raw = b""
    try:
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            raw += data
            status, headers = _parse(raw)
            if b"\r\n\r\n" in raw and "content-length" in headers:
                length = int(headers["content-length"])
                if len(raw.split(b"\r\n\r\n", 1)[1]) >= length:
                    break
    finally:
        seconds = time.monotonic() - started
        sock.close()  # stops the sender, if the server did not
        sender.join(timeout=timeout)
    status, headers = _parse(raw) if raw else (None, {})
    return Exchange(status, raw, sent, seconds, error[0] if error else None, headers)


def http_head(
    method: str, path: str, headers: dict[str, str], *, length: int | None = None
) -> bytes:
    """A request head; chunked unless ``length`` is given."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(parts: Iterator[bytes]) -> Iterator[bytes]:
    """HTTP/1.1 chunked encoding of ``parts``, with the last chunk."""
    for p in parts:
        yield f"{len(p):x}\r\n".encode() + p + b"\r\n"
    yield b"0\r\n\r\n"


def filler(total: int, block: int = MiB, first: bytes = b"", last: bytes = b"") -> Iterator[bytes]:
    """``first``, then ``total`` bytes of filler in blocks, then ``last``."""
    if first:
        yield first
    chunk = b"A" * block
    left = total
    while left > 0:
        yield chunk[: min(block, left)]
        left -= block
    if last:
        yield last


def multipart_part(boundary: str, name: str, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


class RssSampler:
    """Peak resident memory of a server while something runs (sampled every 20 ms)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss_kib())
            self._stop.wait(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss_kib())
