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


def test_recorded_capture_from_the_command_line(home: Path, tmp_path: Path) -> None:
    steps = tmp_path / "steps.json"
    steps.write_text(
        json.dumps(
            [
                {"action": "click", "selector": "#buy"},
                {"action": "type", "selector": "#code", "text": "cli-secret-42", "secret": True},
                {"action": "screenshot", "name": "done"},
            ]
        )
    )
    with serve() as site:
        out = tmp_path / "out"
        p = _el(
            home,
            "capture",
            site.base + "/clock.html",
            "--allow",
            "127.0.0.0/8",
            "--video",
            "--steps",
            str(steps),
            "--duration",
            "1",
            "--out",
            str(out),
        )
    assert p.returncode == 0, p.stderr
    receipt = json.loads(p.stdout)
    names = {a["name"] for a in receipt["artefacts"]}
    assert {"video", "step_1", "step_3", "step_3_dom"} <= names
    assert "warc_secret" not in names  # the secret was typed but never sent
    m = CaptureManifest.from_json((out / MANIFEST_FILE_NAME).read_bytes())
    assert m.recording is not None and m.recording.duration_ms >= 1000 and m.actions == 3
    assert (out / "recording.mp4").stat().st_size == m.recording.artefact.size
    assert m.data["secrets"]["withheld_records_total"] == 0
    assert b"cli-secret-42" not in (out / MANIFEST_FILE_NAME).read_bytes() + p.stdout.encode()


@pytest.mark.parametrize(
    ("steps", "args", "text"),
    [
        ('[{"action": "click"}]', [], "error: steps[0] (click): missing selector"),
        ("[{", [], "is not UTF-8 JSON"),
        ("[]", [], "error: steps: give 1 to 200 steps (got 0)"),
        (None, ["--duration", "5"], "error: capture: duration needs video"),
        (None, ["--video", "--duration", "99999"], "duration must be 0 to 3600"),
        (None, ["--step-timeout", "0"], "Invalid value for '--step-timeout'"),
    ],
)
def test_bad_recording_arguments(
    home: Path, tmp_path: Path, steps: str | None, args: list[str], text: str
) -> None:
    extra = list(args)
    if steps is not None:
        f = tmp_path / "steps.json"
        f.write_text(steps)
        extra += ["--steps", str(f)]
    r = CliRunner().invoke(cli, ["--home", str(home), "capture", "https://example.com/", *extra])
    assert r.exit_code == 2, r.output
    assert text in r.output and "Traceback" not in r.output
    assert r.output.count("\n") <= 4  # one line, or click's usage and its error


def test_the_operators_recording_limits_are_one_line_errors(home: Path) -> None:
    cfg = json.loads((home / "config.json").read_text())
    cfg["capture"]["max_duration"] = 10
    (home / "config.json").write_text(json.dumps(cfg))
    r = CliRunner().invoke(
        cli, ["--home", str(home), "capture", "https://example.com/", "--video", "--duration", "11"]
    )
    assert r.exit_code == 2, r.output
    assert r.output == ("error: capture: duration 11 s, the limit is 10 s (capture.max_duration)\n")
