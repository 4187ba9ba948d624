"""Every ``evidence-ledger`` command, on a real ledger home, checked with ``verifier/``."""

from __future__ import annotations

import hashlib
import json
import re
import stat
from pathlib import Path

import click
import pytest
from cli_support import (
    ORIGIN,
    Home,
    assert_one_line_error,
    filled_home_at,
    init_home,
    receipts,
    sha,
)
from click.testing import CliRunner

from ledger.cli import cli
from ledger.core import Ledger
from ledger.services import OPERATOR, Services
from verifier.checkpoint import open_checkpoint
from verifier.merkle import leaf_hash, root_from_leaf_hashes
from verifier.note import VerifierKey
from verifier.record import decode_record

HEX64 = re.compile(r"[0-9a-f]{64}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


@pytest.fixture
def ledger_home(tmp_path: Path) -> Home:
    """A freshly initialised, empty ledger home."""
    return init_home(tmp_path / "home")


@pytest.fixture
def filled_home(tmp_path: Path) -> Home:
    """A ledger with 20 hash deposits, sealed."""
    return filled_home_at(tmp_path / "home")


# -- help ------------------------------------------------------------------
def test_group_has_help_with_example() -> None:
    assert cli.help
    assert "Example" in cli.help
    r = CliRunner().invoke(cli, ["--help"])
    assert r.exit_code == 0
    for name in cli.commands:
        assert name in r.stdout


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_example(name: str) -> None:
    cmd = cli.commands[name]
    assert isinstance(cmd, click.Command)
    assert cmd.help, f"{name} has no docstring"
    assert cmd.help.strip(), f"{name} has an empty docstring"
    assert "Example" in cmd.help, f"{name} help has no example"
    r = CliRunner().invoke(cli, [name, "--help"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"Usage: cli {name}") or f" {name}" in r.stdout.splitlines()[0]
    assert "Example" in r.stdout
    for param in cmd.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{name} {param.opts} has no help text"


def test_expected_commands_exist() -> None:
    expected = {"init", "vkey", "deposit", "seal", "export", "audit", "rebuild", "stats", "serve"}
    assert expected <= set(cli.commands)


# -- init / vkey -------------------------------------------------------------
def test_init_prints_parseable_verifier_key_and_key_file_is_0600(tmp_path: Path) -> None:
    h = init_home(tmp_path / "home")
    vk = VerifierKey.from_text(h.vkey)
    assert vk.name == ORIGIN
    key = h.path / "keys" / "log.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert h.run("vkey").stdout.strip() == h.vkey
    # init publishes the empty checkpoint, signed by that key.
    assert h.size() == 0
    h.assert_audits_clean()


def test_init_default_origin_is_a_valid_key_name(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["--home", str(tmp_path / "h"), "init"])
    assert r.exit_code == 0, r.stderr
    VerifierKey.from_text(r.stdout.strip())


def test_home_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = init_home(tmp_path / "home")
    monkeypatch.setenv("EVIDENCE_LEDGER_HOME", str(h.path))
    r = CliRunner().invoke(cli, ["vkey"])
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == h.vkey


def test_second_init_fails_cleanly(ledger_home: Home) -> None:
    key = ledger_home.path / "keys" / "log.key"
    before = (key.read_bytes(), (ledger_home.path / "config.json").read_bytes())
    r = ledger_home.proc("init", "--origin", "other.test/log")
    assert r.returncode != 0
    assert_one_line_error(r.stderr, "already")
    assert r.stdout == ""
    after = (key.read_bytes(), (ledger_home.path / "config.json").read_bytes())
    assert after == before
    assert ledger_home.run("vkey").stdout.strip() == ledger_home.vkey
    ledger_home.assert_audits_clean()


# -- deposit -----------------------------------------------------------------
def _check_receipts_against_store(home: Home, rs: list[dict[str, object]]) -> None:
    """Each receipt names a stored entry whose leaf hashes to the receipt's leaf_hash."""
    with Ledger.open(home.path) as led:
        for r in rs:
            assert {"index", "evidence_id", "leaf_hash", "time"} <= r.keys()
            assert isinstance(r["leaf_hash"], str)
            assert HEX64.fullmatch(r["leaf_hash"])
            assert isinstance(r["time"], str)
            assert TIME.fullmatch(r["time"])
            idx = r["index"]
            assert isinstance(idx, int)
            [(i, _type, t, leaf, stored)] = led.store.entries(idx, idx + 1)
            assert i == idx
            assert leaf_hash(leaf).hex() == r["leaf_hash"] == stored.hex()
            rec = decode_record(leaf)
            assert rec.index == idx
            assert rec.time == r["time"] == t
            assert rec.body["evidence_id"] == r["evidence_id"]


def test_deposit_sha256_prints_one_receipt(ledger_home: Home) -> None:
    r = ledger_home.run("deposit", "--sha256", sha(1).upper(), "--title", "contract v2")
    assert r.exit_code == 0, r.stderr
    [rec] = receipts(r.stdout)
    assert rec["index"] == 0
    assert rec["sha256"] == sha(1)
    assert rec["status"] == "durable"
    assert HEX64.fullmatch(rec["evidence_id"].rjust(64, "0"))
    _check_receipts_against_store(ledger_home, [rec])


def test_deposit_sha256_with_sm3(ledger_home: Home) -> None:
    r = ledger_home.run("deposit", "--sha256", sha(2), "--sm3", SM3_ABC)
    assert r.exit_code == 0, r.stderr
    [rec] = receipts(r.stdout)
    assert rec["sm3"] == SM3_ABC
    _check_receipts_against_store(ledger_home, [rec])
    with Ledger.open(ledger_home.path) as led:
        row = Services(led).evidence.get(OPERATOR, rec["evidence_id"])
    assert (row.sha256, row.sm3, row.kind) == (sha(2), SM3_ABC, "hash")


def test_deposit_files_hashes_content(ledger_home: Home, tmp_path: Path) -> None:
    a = tmp_path / "abc.txt"
    a.write_bytes(b"abc")
    b = tmp_path / "big.bin"
    b.write_bytes(bytes(range(256)) * 5000)
    r = ledger_home.run("deposit", str(a), str(b), "--title", "two files")
    assert r.exit_code == 0, r.stderr
    ra, rb = receipts(r.stdout)
    assert (ra["index"], rb["index"]) == (0, 1)
    assert ra["sha256"] == hashlib.sha256(b"abc").hexdigest()
    assert ra["sm3"] == SM3_ABC
    assert ra["size"] == 3
    assert rb["sha256"] == hashlib.sha256(b.read_bytes()).hexdigest()
    assert rb["size"] == b.stat().st_size
    _check_receipts_against_store(ledger_home, [ra, rb])
    blob = ledger_home.path / "blobs" / ra["sha256"][:2] / ra["sha256"]
    assert blob.read_bytes() == b"abc"
    with Ledger.open(ledger_home.path) as led:
        row = Services(led).evidence.get(OPERATOR, ra["evidence_id"])
    assert (row.file_name, row.title, row.kind) == ("abc.txt", "two files", "file")


def test_deposit_hashes_from_prints_receipts_in_order(ledger_home: Home, tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text("".join(f"{sha(i)}\n" for i in range(300)) + "\n\n")  # blank lines ignored
    r = ledger_home.run("deposit", "--hashes-from", str(f))
    assert r.exit_code == 0, r.stderr
    rs = receipts(r.stdout)
    assert [x["index"] for x in rs] == list(range(300))
    assert [x["sha256"] for x in rs] == [sha(i) for i in range(300)]
    assert len({x["evidence_id"] for x in rs}) == 300
    _check_receipts_against_store(ledger_home, rs)
    # the hash chain links consecutive receipts
    with Ledger.open(ledger_home.path) as led:
        leaves = [e[3] for e in led.store.entries(0, 300)]
    for prev, leaf in zip(rs, leaves[1:], strict=False):
        assert decode_record(leaf).prev == prev["leaf_hash"]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--sha256", "00" * 32, "--hashes-from", "x"],
        ["--sm3", SM3_ABC],
    ],
    ids=["nothing", "two-modes", "sm3-alone"],
)
def test_deposit_usage_errors(ledger_home: Home, tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "x").write_text(sha(0) + "\n")
    args = [str(tmp_path / "x") if a == "x" else a for a in args]
    r = ledger_home.proc("deposit", *args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert ledger_home.size() == 0


# -- seal --------------------------------------------------------------------
def test_seal_prints_checkpoint_that_verifies(ledger_home: Home, tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text("".join(f"{sha(i)}\n" for i in range(10)))
    rs = receipts(ledger_home.run("deposit", "--hashes-from", str(f)).stdout)
    r = ledger_home.run("seal")
    assert r.exit_code == 0, r.stderr
    vk = VerifierKey.from_text(ledger_home.vkey)
    cp = open_checkpoint(r.stdout, [vk], ORIGIN).checkpoint
    assert cp.size == 10
    assert cp.root == root_from_leaf_hashes([bytes.fromhex(x["leaf_hash"]) for x in rs])
    # Sealing again with nothing pending republishes the same checkpoint.
    again = ledger_home.run("seal")
    assert again.exit_code == 0
    assert open_checkpoint(again.stdout, [vk], ORIGIN).checkpoint == cp


def test_seal_in_batches_links_checkpoints(ledger_home: Home, tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text("".join(f"{sha(i)}\n" for i in range(700)))
    assert ledger_home.run("deposit", "--hashes-from", str(f)).exit_code == 0
    r = ledger_home.run("seal", "--batch-max", "300")
    assert r.exit_code == 0, r.stderr
    vk = VerifierKey.from_text(ledger_home.vkey)
    assert open_checkpoint(r.stdout, [vk], ORIGIN).checkpoint.size == 700
    stats = json.loads(ledger_home.run("stats").stdout)
    assert stats["checkpoints"] == 4  # 0 (from init), 300, 600, 700
    assert stats["pending"] == 0
    ledger_home.assert_audits_clean()


# -- rebuild / stats ---------------------------------------------------------
def test_stats_and_rebuild_print_json(filled_home: Home) -> None:
    assert filled_home.run("deposit", "--sha256", sha("pending")).exit_code == 0
    r = filled_home.run("stats")
    assert r.exit_code == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["origin"] == ORIGIN
    assert stats["backend"] == "sqlite"
    assert (stats["size"], stats["checkpoint_size"], stats["pending"]) == (21, 20, 1)
    assert stats["projections"]["evidence"] == 21
    with Ledger.open(filled_home.path) as led:
        before = led.store.dump_projections()
    r = filled_home.run("rebuild")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == {"replayed": 21}
    with Ledger.open(filled_home.path) as led:
        assert led.store.dump_projections() == before
    assert json.loads(filled_home.run("stats").stdout)["projections"] == stats["projections"]


def test_audit_prints_report(filled_home: Home) -> None:
    report = filled_home.assert_audits_clean()
    assert report["entries"] == 20
    assert report["checkpoints"] >= 2
