"""``evidence-ledger witnesses|tsa|witness``: configuration commands and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from anchoring_support import ORIGIN
from click.testing import CliRunner, Result
from tlog_fixtures import MemLog

from ledger.cli import cli
from ledger.config import load_config
from ledger.core import Ledger
from ledger.keys import NoteSigner
from ledger.witness import Cosigner

GROUPS = ["witness", "witnesses", "tsa"]


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home), *args])


def wkey(name: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Cosigner(NoteSigner(name, Ed25519PrivateKey.generate())).verifier_key.to_text()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    Ledger.init(h, origin=ORIGIN).close()
    return h


def fails(r: Result, code: int, message: str) -> None:
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "path",
    [(g, c) for g in GROUPS for c in sorted(cli.commands[g].commands)],  # type: ignore[attr-defined]
)
def test_every_anchoring_command_has_help_with_an_example(path: tuple[str, str]) -> None:
    group = cli.commands[path[0]]
    assert isinstance(group, click.Group)
    cmd = group.commands[path[1]]
    assert cmd.help and "Example" in cmd.help, path
    r = CliRunner().invoke(cli, [*path, "--help"])
    assert r.exit_code == 0 and "Example" in r.stdout


def test_witnesses_add_quorum_remove(home: Path) -> None:
    a, b, c = (wkey(f"w{i}.test/witness") for i in range(3))
    r = run(home, "witnesses", "add", "--url", "http://127.0.0.1:8101", "--vkey", a)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["quorum"] == 1  # the first witness sets it to 1
    for url, key in (("http://127.0.0.1:8102/", b), ("https://w2.example/", c)):
        assert run(home, "witnesses", "add", "--url", url, "--vkey", key).exit_code == 0
    r = run(home, "witnesses", "quorum", "2")
    assert r.exit_code == 0
    policy = json.loads(run(home, "witnesses", "list").stdout)
    assert policy["quorum"] == 2
    assert [w["name"] for w in policy["witnesses"]] == [f"w{i}.test/witness" for i in range(3)]
    cfg = load_config(home)
    assert (cfg.quorum, len(cfg.witnesses)) == (2, 3)
    assert run(home, "witnesses", "remove", "w1.test/witness").exit_code == 0
    fails(run(home, "witnesses", "remove", "w0.test/witness"), 2, "lower it first")
    assert run(home, "witnesses", "quorum", "1").exit_code == 0
    assert run(home, "witnesses", "remove", "w0.test/witness").exit_code == 0
    r = run(home, "witnesses", "remove", "w2.test/witness")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"quorum": 0, "witnesses": []}
    Ledger.open(home).close()  # still a valid home


def test_witnesses_refuse_bad_input(home: Path) -> None:
    a = wkey("w0.test/witness")
    add = ("witnesses", "add", "--url", "http://127.0.0.1:8101", "--vkey")
    log_key = MemLog("x.test/log").vkey
    fails(run(home, *add, "garbage"), 2, "verifier key")
    fails(run(home, *add, log_key), 2, "not a witness key")
    fails(run(home, "witnesses", "add", "--url", "ftp://x", "--vkey", a), 2, "http://")
    assert run(home, *add, a).exit_code == 0
    fails(run(home, *add, a), 2, "already configured")
    fails(run(home, "witnesses", "quorum", "2"), 2, "between 1 and 1")
    fails(run(home, "witnesses", "quorum", "0"), 2, "between 1 and 1")
    fails(run(home, "witnesses", "remove", "nobody"), 2, "not configured")
    fails(run(home.parent / "none", "witnesses", "list"), 1, "no ledger in")


def test_tsa_set_and_clear(home: Path, tmp_path: Path) -> None:
    from pki import make_ca

    ca = make_ca(tmp_path / "ca")
    r = run(home, "tsa", "set", "http://127.0.0.1:8200/", "--roots", str(ca.cert))
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["roots"] == ["CN=Evidence Test Root CA"]
    assert (home / "tsa-roots.pem").read_bytes() == ca.cert.read_bytes()
    cfg = load_config(home)
    assert cfg.tsa is not None and cfg.tsa.url == "http://127.0.0.1:8200/"
    not_pem = tmp_path / "roots.txt"
    not_pem.write_text("hello\n")
    fails(run(home, "tsa", "set", "http://x/", "--roots", str(not_pem)), 2, "PEM")
    fails(run(home, "tsa", "set", "x", "--roots", str(ca.cert)), 2, "http://")
    assert run(home, "tsa", "clear").exit_code == 0
    assert load_config(home).tsa is None


def test_configs_without_anchoring_load_and_bad_ones_are_refused(home: Path) -> None:
    path = home / "config.json"
    raw = json.loads(path.read_text())
    for key in ("witnesses", "quorum", "tsa"):
        raw.pop(key)
    path.write_text(json.dumps(raw))
    cfg = load_config(home)  # written before anchoring existed
    assert (cfg.witnesses, cfg.quorum, cfg.tsa) == ((), 0, None)
    raw["witnesses"] = [{"name": "w0.test/witness", "url": "http://x", "vkey": wkey("w0.test/w")}]
    raw["quorum"] = 1
    path.write_text(json.dumps(raw))
    fails(run(home, "stats"), 1, "needs a cosignature key")
    raw["witnesses"] = [{"name": "w0.test/w", "url": "http://x", "vkey": wkey("w0.test/w")}]
    raw["quorum"] = 5
    path.write_text(json.dumps(raw))
    fails(run(home, "stats"), 1, "quorum 5 is not between 1 and 1")
    raw["quorum"] = 0
    path.write_text(json.dumps(raw))
    fails(run(home, "stats"), 1, "quorum 0")
    raw["quorum"] = 1
    raw["tsa"] = {"url": "http://x"}
    path.write_text(json.dumps(raw))
    fails(run(home, "stats"), 1, "is invalid")
