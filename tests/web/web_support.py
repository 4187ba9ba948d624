"""Helpers for the web console tests: a populated ledger, a real server, a browser.

The browser is Debian's chromium driven by Playwright; the server is a real
``evidence-ledger serve`` process on a free loopback port. Pages that fail a
test leave a screenshot in ``tests/web/artifacts/``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page

from ledger.accounts import create_account
from ledger.certificates import issue_certificate, package_certificate, trust_export
from ledger.config import CaptureConfig, save_config
from ledger.core import Ledger
from ledger.services import OPERATOR, Services

HERE = Path(__file__).parent
ARTIFACTS = HERE / "artifacts"
AXE = HERE / "vendor" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ORIGIN = "web.test/log"


@dataclass
class World:
    """What the test ledger holds, by name."""

    home: Path
    tokens: dict[str, str] = field(default_factory=dict)
    account_ids: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    certificates: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


def build_world(home: Path) -> World:
    """A ledger with an account of every role, file and hash deposits, a sealed
    checkpoint, a certificate and its package, and a revoked certificate."""
    world = World(home=home)
    ledger = Ledger.init(home, origin=ORIGIN)
    # The capture tests capture this server's own pages on loopback.
    save_config(replace(ledger.config, capture=CaptureConfig(allow=("127.0.0.0/8",))))
    try:
        for role, name in [
            ("rights_holder", "alice"),
            ("rights_holder", "bob"),
            ("notary", "notary-1"),
            ("admin", "admin-1"),
            ("auditor", "auditor-1"),
        ]:
            acct = create_account(ledger, role, name)
            world.tokens[name] = acct.token
            world.account_ids[name] = acct.account_id
        deposits = Services(ledger).deposits
        data = home.parent / "files"
        data.mkdir(exist_ok=True)
        for name, content in [
            ("contract", "合同 contract v1\n".encode() * 100),
            ("photo", bytes(range(256)) * 300),
        ]:
            path = data / f"{name}.bin"
            path.write_bytes(content)
            world.files[name] = path
            with path.open("rb") as f:
                receipt = deposits.deposit_file(
                    OPERATOR,
                    f,
                    title=f"{name} 证据",
                    file_name=path.name,
                    owner=world.account_ids["alice"],
                )
            world.evidence[name] = receipt.to_json()
        hashed = hashlib.sha256(b"only the digest").hexdigest()
        world.evidence["hash"] = deposits.deposit_hash(
            OPERATOR, hashed, title="hash only", owner=world.account_ids["alice"]
        ).to_json()
        ledger.seal()
        for name in ("contract", "photo"):
            issued = issue_certificate(ledger, world.evidence[name]["evidence_id"], "notary-1")
            world.certificates[name] = issued.certificate_id
        ledger.seal()
        package_certificate(ledger, world.certificates["contract"], home.parent / "package.zip")
        world.files["package"] = home.parent / "package.zip"
        world.files["tampered"] = tamper_package(world.files["package"], home.parent)
        (home.parent / "trust.json").write_text(__import__("json").dumps(trust_export(ledger)))
    finally:
        ledger.close()
    return world


def tamper_package(package: Path, out_dir: Path) -> Path:
    """A copy of ``package`` with one byte of its evidence file flipped, the zip
    otherwise intact (CRC-32 fixed in both headers): only the digest check fails."""
    data = bytearray(package.read_bytes())
    with zipfile.ZipFile(package) as z:
        member = next(i for i in z.infolist() if i.filename.startswith("evidence/"))
    start = member.header_offset
    name_len, extra_len = struct.unpack_from("<HH", data, start + 26)
    body = start + 30 + name_len + extra_len
    data[body] ^= 1
    crc = zlib.crc32(bytes(data[body : body + member.compress_size]))
    struct.pack_into("<I", data, start + 14, crc)
    eocd = data.rindex(b"PK\x05\x06")
    offset = struct.unpack_from("<I", data, eocd + 16)[0]
    while data[offset : offset + 4] == b"PK\x01\x02":
        n, e, c = struct.unpack_from("<HHH", data, offset + 28)
        if data[offset + 46 : offset + 46 + n].decode() == member.filename:
            struct.pack_into("<I", data, offset + 16, crc)
        offset += 46 + n + e + c
    out = out_dir / "tampered.zip"
    out.write_bytes(bytes(data))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real ``evidence-ledger serve`` process on loopback."""

    def __init__(self, home: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).parent / "evidence-ledger"
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [
                str(exe),
                "--home",
                str(home),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/checkpoint", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"serve did not start; see {log}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


class Pages:
    """Opens browser contexts against the server and screenshots them on failure."""

    def __init__(self, browser: Browser, server: Server) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[BrowserContext] = []
        self.requests: list[str] = []
        self.console_errors: list[str] = []

    def new(self, lang: str = "zh", **options: Any) -> Page:
        """A page in a fresh context whose browser prefers ``lang``."""
        ctx = self.browser.new_context(
            base_url=self.server.url,
            locale="zh-CN" if lang == "zh" else "en-US",
            extra_http_headers={
                "Accept-Language": "zh-CN,zh;q=0.9" if lang == "zh" else "en-US,en;q=0.9"
            },
            accept_downloads=True,
            **options,
        )
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        page.on("request", lambda r: self.requests.append(r.url))
        page.on(
            "console",
            lambda m: self.console_errors.append(m.text) if m.type == "error" else None,
        )
        return page

    def login(self, page: Page, token: str, next_path: str | None = None) -> None:
        """Log in through the form, as a user would."""
        page.goto("/login" + (f"?next={next_path}" if next_path else ""))
        page.fill("input[name=token]", token)
        page.click("[type=submit] >> nth=-1")
        page.wait_for_load_state()

    def screenshot_all(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        for i, ctx in enumerate(self.contexts):
            for j, page in enumerate(ctx.pages):
                safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
                page.screenshot(path=str(ARTIFACTS / f"{safe}-{i}-{j}.png"), full_page=True)

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


def run_axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the current page.

    The script is evaluated through the debugging protocol, which the page's
    Content-Security-Policy does not govern (the pages allow no inline script).
    """
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
