"""Real ``evidence-ledger serve`` processes for the operations tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent / "evidence-ledger"
VERIFY = Path(sys.executable).parent / "evidence-verify"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fast_seal(home: Path, interval: float = 0.1) -> None:
    """Seal every ``interval`` seconds (the default is one second)."""
    cfg = (home / "config.json").read_text()
    (home / "config.json").write_text(cfg.replace('"interval": 1.0', f'"interval": {interval}'))


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text("utf-8", errors="replace").splitlines()


@contextmanager
def serve(home: Path, *args: str, log: Path | None = None) -> Iterator[Server]:
    """``evidence-ledger serve`` on a free port, its stderr kept in ``log``; stopped after."""
    port = free_port()
    log = log or home.parent / f"serve-{port}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [str(BIN), "--home", str(home), "serve", "--port", str(port), *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                if httpx.get(server.base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start: " + log.read_text()[-3000:])
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the Prometheus text ``text`` (None if absent)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)", line)
        if not m or m[1] != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m[2] or ""))
        if got == labels:
            return float(m[3])
    return None
