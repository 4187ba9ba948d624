"""``evidence-verify``: help text, output, exit status (0 valid, 1 invalid, 2 input)."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from verifier_helpers import ORIGIN, checkpoint_text, make_entries, private_key, verifier_key
from verifier_helpers import write_export as _write_export

from verifier.cli import EXIT_INPUT, EXIT_INVALID, EXIT_VALID, build_parser, main

KEY = private_key("cli test log")
VKEY = verifier_key(ORIGIN, KEY).to_text()
N = 300


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "export"
    _write_export(root, make_entries(N), KEY)
    return root


@pytest.fixture
def export(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "export"))


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- help


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_command_has_help_text_and_an_example() -> None:
    parser = build_parser()
    commands = _subcommands(parser)
    assert "log" in commands
    top = parser.format_help()
    for name, sub in commands.items():
        assert name in top
        text = sub.format_help()
        assert sub.description, name
        assert "example:" in text, name
        assert "exit status" in text, name
        for action in sub._actions:
            assert action.help, f"{name} {action.dest} has no help"


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--help"], ["log", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 0
        assert "usage: evidence-verify" in capsys.readouterr().out


def test_log_help_names_the_layout_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["log", "--help"])
    out = capsys.readouterr().out
    for word in ("DIR/checkpoint", "tile/entries", "--vkey", "--from", "--json", "--workers"):
        assert word in out


@pytest.mark.parametrize(
    "args",
    [[], ["log"], ["log", "dir"], ["nope"], ["log", "dir", "--vkey", VKEY, "--workers", "0"]],
)
def test_bad_arguments_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == EXIT_INPUT
    assert "error:" in capsys.readouterr().err


# ---------------------------------------------------------------- log


def test_valid_export(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["log", str(export), "--vkey", VKEY], capsys)
    assert code == EXIT_VALID, out
    lines = out.splitlines()
    assert lines[0] == f"log audit of {export}"
    assert lines[1] == f"origin {ORIGIN}, size {N}"
    numbered = [line for line in lines if line[:4].strip().rstrip(".").isdigit()]
    assert [line.split()[0] for line in numbered] == [f"{i}." for i in range(1, 8)]
    assert all("PASSED" in line for line in numbered)
    assert lines[-1].startswith(f"VALID: {N} entries read in ")
    assert err == ""


def test_vkey_from_a_file(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "log.vkey"
    key_file.write_text(VKEY + "\n")
    code, _, _ = run(["log", str(export), "--vkey", str(key_file)], capsys)
    assert code == EXIT_VALID


def test_json_output(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["log", str(export), "--vkey", VKEY, "--json"], capsys)
    assert code == EXIT_VALID
    doc = json.loads(out)
    assert doc["valid"] is True
    assert doc["size"] == N
    assert [c["number"] for c in doc["checks"]] == list(range(1, 8))


def test_invalid_export_exits_1(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tile = export / "tile/0/001.p/44"
    tile.write_bytes(b"\x00" * 32 + tile.read_bytes()[32:])
    code, out, _ = run(["log", str(export), "--vkey", VKEY], capsys)
    assert code == EXIT_INVALID
    assert "  6. hash tiles" in out
    assert "FAILED   tile/0/001.p/44: hash 0 differs from the recomputed one" in out
    assert out.splitlines()[-1].startswith("INVALID (1 of 7 checks)")
    code, out, _ = run(["log", str(export), "--vkey", VKEY, "--json"], capsys)
    assert code == EXIT_INVALID
    doc = json.loads(out)
    assert doc["valid"] is False
    assert doc["checks"][5]["status"] == "failed"


def test_wrong_key_exits_1(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = verifier_key(ORIGIN, private_key("someone else")).to_text()
    code, out, _ = run(["log", str(export), "--vkey", other], capsys)
    assert code == EXIT_INVALID
    assert "checkpoint signature  FAILED   note: no signature by a trusted key" in out


def test_from_old_checkpoint(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = make_entries(N + 20)
    old = tmp_path / "old-checkpoint"
    old.write_text(checkpoint_text(entries, KEY, size=100))
    code, out, _ = run(["log", str(export), "--vkey", VKEY, "--from", str(old)], capsys)
    assert code == EXIT_VALID, out
    assert " 10. old tree is a prefix" in out
    # A checkpoint of a larger tree than the export: rollback.
    old.write_text(checkpoint_text(entries, KEY, size=N + 20))
    code, out, _ = run(["log", str(export), "--vkey", VKEY, "--from", str(old)], capsys)
    assert code == EXIT_INVALID
    assert "the log was rolled back" in out


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d, t: ["log", str(t / "missing"), "--vkey", VKEY], "is not a directory"),
        (lambda d, t: ["log", str(d), "--vkey", "not-a-key"], "verifier key: expected"),
        (lambda d, t: ["log", str(d), "--vkey", VKEY[:-2]], "verifier key"),
        (
            lambda d, t: ["log", str(d), "--vkey", VKEY, "--from", str(t / "missing")],
            "cannot read old checkpoint",
        ),
        (
            lambda d, t: ["log", str(d), "--vkey", VKEY, "--from", str(d / "tile/0/000")],
            "old checkpoint: note:",
        ),
    ],
)
def test_unreadable_input_exits_2(
    export: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make_args: object,
    message: str,
) -> None:
    args = make_args(export, tmp_path)  # type: ignore[operator]
    code, out, err = run(args, capsys)
    assert code == EXIT_INPUT
    assert err.startswith("evidence-verify: error: ")
    assert message in err
    assert len(err.splitlines()) == 1  # one line, no traceback
    assert out == ""


def test_malformed_checkpoint_exits_2(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (export / "checkpoint").write_text("garbage\n")
    code, out, err = run(["log", str(export), "--vkey", VKEY, "--json"], capsys)
    assert code == EXIT_INPUT
    assert json.loads(out)["valid"] is False
    assert "checkpoint: note: no blank line" in json.loads(out)["error"]
    assert "checkpoint: note: no blank line" in err


def test_console_script(export: Path) -> None:
    """The installed ``evidence-verify`` entry point, as a shell runs it."""
    script = Path(sys.executable).parent / "evidence-verify"
    if not script.exists():
        pytest.skip("evidence-verify is not installed in this environment")
    ok = subprocess.run(
        [str(script), "log", str(export), "--vkey", VKEY], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VALID" in ok.stdout
    (export / "tile/entries/000").unlink()
    bad = subprocess.run(
        [str(script), "log", str(export), "--vkey", VKEY], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "tile/entries/000: missing" in bad.stdout
