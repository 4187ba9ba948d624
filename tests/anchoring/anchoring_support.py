"""Real parts for the anchoring tests: witness processes, an ``openssl ts`` TSA, ledgers.

Every witness is ``evidence-ledger witness serve`` in its own process on a
free loopback port; the TSA is ``tsa_server.py`` (``openssl ts -reply``
behind a loopback HTTP endpoint) with certificates from :mod:`pki`. Processes
are started and stopped by the objects here and never by name.

No ``conftest.py`` in this directory (see ``tests/api/api_support.py``).
"""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ledger.config import TsaConfig, WitnessEntry, load_config, save_config
from ledger.core import Ledger
from ledger.events import evidence_deposited
from ledger.services import Services
from ledger.witness import Witness

HERE = Path(__file__).resolve().parent
EL = str(Path(sys.executable).with_name("evidence-ledger"))
ORIGIN = "anchoring.test/log"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def el(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``evidence-ledger --home HOME ARGS`` and capture its output."""
    return subprocess.run(
        [EL, "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def sha(i: int | str) -> str:
    return hashlib.sha256(f"anchoring evidence {i}".encode()).hexdigest()


def deposit(led: Ledger, n: int, tag: str = "") -> None:
    """Deposit ``n`` distinct hashes (durable on return)."""
    drafts = (evidence_deposited(kind="hash", sha256=sha(f"{tag}{i}")) for i in range(n))
    for _ in Services(led).deposits.bulk(drafts):
        pass


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s: {log.read_text()[-2000:]}")


class Proc:
    """A server process this test started: start, stop, kill, restart on the same port."""

    def __init__(self, args: list[str], port: int, log: Path) -> None:
        self.args = args
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        assert self.proc is None, "already running"
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        _wait_listening(self.port, self.proc, self.log, timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None


class WitnessProc(Proc):
    """``evidence-ledger witness serve`` over a witness home made by ``witness init``."""

    def __init__(self, root: Path, name: str) -> None:
        self.home = root / name.replace("/", "_")
        r = el(self.home, "witness", "init", "--name", name)
        assert r.returncode == 0, r.stderr
        self.name = name
        self.vkey = r.stdout.strip()
        port = free_port()
        super().__init__(
            [EL, "--home", str(self.home), "witness", "serve", "--port", str(port)],
            port,
            root / f"{self.home.name}.log",
        )

    def follow(self, log_vkey: str) -> None:
        """Follow a log (in this process: the server reads its state per request)."""
        with Witness.open(self.home) as w:
            w.follow(log_vkey)

    def status(self) -> dict[str, Any]:
        """``evidence-ledger witness status`` (a subprocess)."""
        r = el(self.home, "witness", "status")
        assert r.returncode == 0, r.stderr
        return dict(json.loads(r.stdout))

    def state(self, origin: str) -> tuple[int | None, list[int]]:
        """The size last cosigned for ``origin`` and the statuses of refused requests."""
        with Witness.open(self.home) as w:
            latest = w.store.latest(origin)
            return (latest.size if latest else None), [s for _, _, s, _ in w.store.refusals(origin)]


class TsaProc(Proc):
    """``tsa_server.py``: ``openssl ts -reply`` with the given configuration (in BER
    with ``ber=True``)."""

    def __init__(self, config: Path, log: Path, *, replay: bool = False, ber: bool = False) -> None:
        port = free_port()
        args = [sys.executable, str(HERE / "tsa_server.py"), "--config", str(config)]
        args += ["--port", str(port)] + (["--replay"] if replay else [])
        args += ["--ber"] if ber else []
        super().__init__(args, port, log)


def start_all(procs: list[Proc]) -> None:
    """Start processes concurrently (each takes about a second to import)."""
    started: list[tuple[Proc, subprocess.Popen[bytes]]] = []
    for p in procs:
        out = p.log.open("ab")
        p.proc = subprocess.Popen(p.args, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        started.append((p, p.proc))
    for p, proc in started:
        _wait_listening(p.port, proc, p.log, 30)


def configure(
    led: Ledger,
    witnesses: list[WitnessProc],
    quorum: int,
    tsa: tuple[str, Path] | None = None,
    *,
    tsas: list[tuple[str, Path]] | None = None,
    tsa_quorum: int | None = None,
) -> Ledger:
    """Write the anchoring configuration into ``led``'s home and reopen it.

    ``tsa``: one TSA (URL, roots PEM); ``tsas``: several, ``tsa_quorum`` of
    them required (default: all).
    """
    home = led.config.home
    led.close()
    cfg = load_config(home)
    entries = tuple(WitnessEntry(w.name, w.url, w.vkey) for w in witnesses)
    pairs = tsas if tsas is not None else ([tsa] if tsa is not None else [])
    tsa_cfgs = tuple(TsaConfig(url=url, roots=str(roots)) for url, roots in pairs)
    k = len(tsa_cfgs) if tsa_quorum is None else tsa_quorum
    save_config(replace(cfg, witnesses=entries, quorum=quorum, tsas=tsa_cfgs, tsa_quorum=k))
    return Ledger.open(home)
