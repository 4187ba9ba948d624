"""``evidence-ledger capture``: the receipt on stdout, ``--out``, ``--allow``, one-line errors."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from capture_support import free_port, make_pki, serve
from click.testing import CliRunner

from ledger.cli import cli
from ledger.core import Ledger
from ledger.services import OPERATOR, Services
from verifier.capture import MANIFEST_FILE_NAME, CaptureManifest

EL = Path(sys.executable).with_name("evidence-ledger")
if not EL.exists():
    EL = Path(shutil.which("evidence-ledger") or EL)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    Ledger.init(tmp_path / "home", "cli-capture.test/log").close()
    return tmp_path / "home"


def _el(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EL), "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_capture_prints_the_receipt_and_writes_out(home: Path, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    with serve(pki) as site:
        out = tmp_path / "out"
        p = _el(
            home,
            "capture",
            site.base + "/",
            "--allow",
            "127.0.0.0/8",
            "--ca-file",
            str(pki.ca_pem),
            "--out",
            str(out),
            "--viewport",
            "800x600",
            "--wait",
            "delay",
            "--delay-ms",
            "200",
            "--user-agent-note",
            "evidence-ledger test",
            "--title",
            "命令行取证",
        )
    assert p.returncode == 0, p.stderr
    receipt = json.loads(p.stdout)
    assert receipt["kind"] == "capture" and receipt["status"] == "durable"
    assert receipt["final_url"] == site.base + "/page.html"
    raw = (out / MANIFEST_FILE_NAME).read_bytes()
    assert receipt["sha256"] == hashlib.sha256(raw).hexdigest()
    m = CaptureManifest.from_json(raw)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST_FILE_NAME, *(a.path for a in m.artefacts)]
    )
    assert {a["name"] for a in receipt["artefacts"]} == {a.name for a in m.artefacts}
    opts = m.data["settings"]["options"]
    assert (opts["viewport_width"], opts["viewport_height"], opts["wait"]) == (800, 600, "delay")
    assert m.data["browser"]["user_agent"].endswith("(evidence-ledger test)")
    with Ledger.open(home) as led:
        row = Services(led).evidence.get(OPERATOR, receipt["evidence_id"])
        assert (row.kind, row.title) == ("capture", "命令行取证")
    # The configured allow-list was not changed by --allow or --ca-file.
    cfg = json.loads((home / "config.json").read_text())["capture"]
    assert cfg["allow"] == [] and cfg["ca_file"] is None


def test_default_refuses_loopback_with_one_line(home: Path) -> None:
    with serve() as site:
        p = _el(home, "capture", site.base + "/page.html")
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr.startswith("error: capture: refused: 127.0.0.1 is not a public address")
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert site.hits == []


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--allow", "10.0.0.0/33"], 2, "is not a CIDR range"),
        (["--allow", "nonsense"], 2, "is not a CIDR range"),
        (["--viewport", "wide"], 2, "is not WIDTHxHEIGHT"),
        (["--viewport", "100x100"], 2, "viewport must be"),
        (["--wait", "never"], 2, "Invalid value for '--wait'"),
        (["--delay-ms", "5"], 2, "delay_ms needs wait=delay"),
        (["--user-agent-note", "证据"], 2, "printable ASCII"),
        (["--timeout", "0"], 2, "Invalid value for '--timeout'"),
        (["--ca-file", "/nonexistent.pem"], 2, "does not exist"),
    ],
)
def test_bad_arguments(home: Path, args: list[str], code: int, text: str) -> None:
    r = CliRunner().invoke(cli, ["--home", str(home), "capture", "https://example.com/", *args])
    assert r.exit_code == code, r.output
    assert text in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("ftp://example.com/file", "refused"),
        ("file:///etc/passwd", "refused"),
        ("http://169.254.169.254/latest/meta-data/", "refused"),
    ],
)
def test_refused_urls_exit_1(home: Path, url: str, status: str) -> None:
    r = CliRunner().invoke(cli, ["--home", str(home), "capture", url])
    assert r.exit_code == 1
    assert r.output.startswith(f"error: capture: {status}: ")


def test_failures_exit_1_with_their_status(home: Path) -> None:
    runner = CliRunner()
    with serve() as site:
        for url, status in [
            (site.base + "/missing", "http_error"),
            (site.base + "/download", "download"),
            (f"http://127.0.0.1:{free_port()}/", "unreachable"),
        ]:
            r = runner.invoke(cli, ["--home", str(home), "capture", url, "--allow", "127.0.0.1/32"])
            assert r.exit_code == 1, r.output
            assert r.output.startswith(f"error: capture: {status}: "), r.output
    with Ledger.open(home) as led:
        assert led.store.size() == 0  # nothing deposited


def test_no_ledger_is_a_one_line_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        cli, ["--home", str(tmp_path / "none"), "capture", "https://example.com/"]
    )
    assert r.exit_code == 1 and r.output.startswith("error: config: no ledger in ")
