"""``evidence-ledger account|certificate|trust`` and ``evidence-verify package|certificate|log``
end to end: output, exit status (0/1/2) and one-line errors."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from ledger.cli import cli
from verifier.cli import EXIT_INPUT, EXIT_INVALID, EXIT_VALID, main

ORIGIN = "cli-certs.test/log"
EL = Path(sys.executable).with_name("evidence-ledger")


def el(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home), *args])


def ev(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


class Flow:
    """A ledger home with a notary, a sealed file deposit, a certificate, its
    package, the trust file and a log export."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        assert el(self.home, "init", "--origin", ORIGIN).exit_code == 0
        r = el(self.home, "account", "create", "--role", "notary", "--name", "Notary Zhang")
        assert r.exit_code == 0, r.output
        self.notary_lines = r.stdout.splitlines()
        self.evidence = root / "合同.pdf"
        self.evidence.write_bytes(b"%PDF-1.7 contract " * 500)
        r = el(self.home, "deposit", str(self.evidence), "--title", "合同")
        assert r.exit_code == 0, r.output
        self.evidence_id = json.loads(r.stdout)["evidence_id"]
        assert el(self.home, "seal").exit_code == 0
        r = el(self.home, "certificate", "issue", self.evidence_id, "--notary", "Notary Zhang")
        assert r.exit_code == 0, r.output
        self.cert_stdout = r.stdout_bytes
        self.cert = root / "cert.json"
        self.cert.write_bytes(r.stdout_bytes)
        self.certificate_id = json.loads(r.stdout)["certificate_id"]
        self.package = root / "evidence.zip"
        r = el(self.home, "certificate", "package", self.certificate_id, str(self.package))
        assert r.exit_code == 0, r.output
        self.trust = root / "trust.json"
        r = el(self.home, "trust", "export")
        assert r.exit_code == 0, r.output
        self.trust.write_text(r.stdout, "utf-8")
        assert el(self.home, "seal").exit_code == 0
        self.export = root / "export"
        assert el(self.home, "export", str(self.export)).exit_code == 0


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    return Flow(tmp_path_factory.mktemp("cli-certs"))


# ------------------------------------------------------------------ evidence-ledger


def test_account_create_prints_the_token_alone_on_the_last_line(flow: Flow) -> None:
    facts, token = flow.notary_lines
    doc = json.loads(facts)
    assert doc["role"] == "notary" and doc["name"] == "Notary Zhang"
    assert doc["vkey"].startswith(f"{ORIGIN}/notary/{doc['account_id']}+")
    assert token.startswith("elt_") and " " not in token
    assert token not in facts


def test_account_create_as_a_real_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert el(home, "init", "--origin", ORIGIN).exit_code == 0
    p = subprocess.run(
        [str(EL), "--home", str(home), "account", "create", "--role", "auditor", "--name", "A"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 2 and lines[-1].startswith("elt_")
    assert p.stderr == ""


def test_certificate_issue_prints_the_certificate(flow: Flow) -> None:
    assert flow.cert_stdout.endswith(b"}\n")
    doc = json.loads(flow.cert_stdout)
    assert doc["format"] == "evidence-certificate/v1"
    assert doc["evidence"]["evidence_id"] == flow.evidence_id
    r = el(flow.home, "certificate", "show", flow.certificate_id)
    assert r.exit_code == 0 and r.stdout_bytes == flow.cert_stdout


def test_trust_export(flow: Flow) -> None:
    doc = json.loads(flow.trust.read_text("utf-8"))
    assert doc["format"] == "evidence-trust/v1"
    assert doc["logs"][0]["origin"] == ORIGIN
    assert [n["name"] for n in doc["notaries"]] == ["Notary Zhang"]
    assert doc["witnesses"] == {"keys": [], "quorum": 0}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["certificate", "issue", "0" * 32, "--notary", "Notary Zhang"], 1, "not found"),
        (["certificate", "issue", "EID", "--notary", "Nobody"], 1, "no active notary"),
        (["certificate", "package", "f" * 64, "out.zip"], 1, "not found"),
        (["certificate", "revoke", "f" * 64, "--reason", "x"], 1, "not found"),
        (["certificate", "show", "f" * 64], 1, "not found"),
        (["account", "create", "--role", "judge", "--name", "X"], 2, "Invalid value for '--role'"),
        (["account", "create", "--role", "notary", "--name", "Notary Zhang"], 1, "already exists"),
        (["account", "revoke", "Nobody"], 1, "no active account"),
    ],
)
def test_ledger_errors_are_one_line(flow: Flow, args: list[str], code: int, message: str) -> None:
    args = [a.replace("EID", flow.evidence_id) for a in args]
    r = el(flow.home, *args)
    assert r.exit_code == code, r.output
    assert message in r.stderr
    assert "Traceback" not in r.output
    if code == 1:
        assert len(r.stderr.splitlines()) == 1


def test_every_subcommand_has_help_with_an_example() -> None:
    for group in ("account", "certificate", "trust"):
        g = cli.commands[group]
        assert isinstance(g, click.Group) and g.help and "Example" in g.help
        for name, cmd in g.commands.items():
            assert cmd.help and "Example" in cmd.help, f"{group} {name}"
            for param in cmd.params:
                if isinstance(param, click.Option):
                    assert param.help, f"{group} {name} {param.opts}"
            r = CliRunner().invoke(cli, [group, name, "--help"])
            assert r.exit_code == 0 and "Example" in r.stdout


# ------------------------------------------------------------------ evidence-verify


def test_package_valid(flow: Flow, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = ev(["package", str(flow.package), "--trust", str(flow.trust)], capsys)
    assert code == EXIT_VALID, out
    lines = out.splitlines()
    assert lines[0] == "evidence package verification: evidence.zip"
    assert lines[-1] == "VALID"
    numbered = [line for line in lines if line[:4].strip().rstrip(".").isdigit()]
    assert [int(line.split(".")[0]) for line in numbered] == list(range(1, len(numbered) + 1))
    assert any("N/A" in line and "quorum 0" in line for line in numbered)
    assert any("NOT CHECKED" in line and "revocation" in line for line in numbered)
    assert err == ""


def test_package_json_and_chinese(flow: Flow, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["package", str(flow.package), "--trust", str(flow.trust)]
    code, out, _ = ev([*args, "--json", "--lang", "zh"], capsys)
    assert code == EXIT_VALID
    doc = json.loads(out)
    assert doc["valid"] is True and doc["lang"] == "zh"
    assert doc["facts"]["certificate_id"] == flow.certificate_id
    assert [c["number"] for c in doc["checks"]] == list(range(1, len(doc["checks"]) + 1))
    by_key = {c["key"]: c for c in doc["checks"]}
    assert by_key["witnesses"]["status"] == "not_applicable"
    assert by_key["timestamp"]["status"] == "not_applicable"
    assert by_key["revocation"]["status"] == "not_checked"
    assert by_key["inclusion"]["title"] == "包含证明"
    code, out, _ = ev([*args, "--lang", "zh"], capsys)
    assert out.splitlines()[-1] == "结论：有效"
    assert "包含证明" in out and "通过" in out


def test_certificate_with_and_without_the_file(
    flow: Flow, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["certificate", str(flow.cert), "--trust", str(flow.trust)]
    code, out, _ = ev([*base, "--evidence", str(flow.evidence)], capsys)
    assert code == EXIT_VALID, out  # the terminal's trailing newline is tolerated
    other = tmp_path / "other.pdf"
    other.write_bytes(flow.evidence.read_bytes() + b" ")
    code, out, _ = ev([*base, "--evidence", str(other)], capsys)
    assert code == EXIT_INVALID
    line = next(x for x in out.splitlines() if "[other.pdf]" in x)
    assert "evidence file digest" in line and "FAILED: SHA-256 is" in line
    code, out, _ = ev(base, capsys)
    assert code == EXIT_INVALID
    assert "no evidence file given" in out


def test_log_with_trust_then_revocation(
    flow: Flow, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    shutil.copytree(flow.home, home)
    code, out, _ = ev(
        ["log", str(flow.export), "--trust", str(flow.trust), "--certificate", str(flow.cert)],
        capsys,
    )
    assert code == EXIT_VALID, out
    assert "issuance recorded in the log" in out and "not revoked" in out
    r = el(home, "certificate", "revoke", flow.certificate_id, "--reason", "issued in error")
    assert r.exit_code == 0, r.output
    assert el(home, "seal").exit_code == 0
    assert el(home, "export", str(tmp_path / "export")).exit_code == 0
    for args in (
        ["log", str(tmp_path / "export"), "--certificate", str(flow.package)],
        ["package", str(flow.package), "--log", str(tmp_path / "export")],
        ["certificate", str(flow.cert), "--evidence", str(flow.evidence)],
    ):
        if args[0] == "certificate":
            args += ["--log", str(tmp_path / "export")]
        code, out, _ = ev([*args, "--trust", str(flow.trust)], capsys)
        assert code == EXIT_INVALID, out
        assert "REVOKED: certificate.revoked at log index" in out
    code, out, _ = ev(
        ["log", str(tmp_path / "export"), "--trust", str(flow.trust), "--json"], capsys
    )
    assert code == EXIT_VALID  # the log itself is fine; it records a revocation
    assert [r["certificate_id"] for r in json.loads(out)["revoked"]] == [flow.certificate_id]


def test_log_certificate_needs_trust(flow: Flow, capsys: pytest.CaptureFixture[str]) -> None:
    vkey = json.loads(flow.trust.read_text())["logs"][0]["vkey"]
    code, _, err = ev(["log", str(flow.export), "--vkey", vkey, "--certificate", "x"], capsys)
    assert code == EXIT_INPUT and "--certificate needs --trust" in err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda f, t: ["package", str(t / "missing.zip"), "--trust", str(f.trust)], "cannot read"),
        (lambda f, t: ["package", str(f.cert), "--trust", str(f.trust)], "zip: no end-of-central"),
        (
            lambda f, t: ["package", str(f.package), "--trust", str(f.cert)],
            "trust: members must be",
        ),
        (
            lambda f, t: ["package", str(f.package), "--trust", str(t / "nope")],
            "trust: cannot read",
        ),
        (lambda f, t: ["package", str(f.package), "--trust", str(t / "empty.json")], "fail closed"),
        (
            lambda f, t: ["certificate", str(f.package), "--trust", str(f.trust)],
            "certificate: json",
        ),
        (
            lambda f, t: [
                "certificate",
                str(f.cert),
                "--trust",
                str(f.trust),
                "--evidence",
                "/nope",
            ],
            "evidence: cannot read",
        ),
        (lambda f, t: ["log", str(t / "nope"), "--trust", str(f.trust)], "neither a directory"),
        (
            lambda f, t: ["package", str(f.package), "--trust", str(f.trust), "--log", str(t)],
            "cannot read",
        ),
    ],
)
def test_unreadable_or_malformed_input_exits_2(
    flow: Flow, tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, message: str
) -> None:
    doc = json.loads(flow.trust.read_text())
    doc["logs"] = []
    (tmp_path / "empty.json").write_text(json.dumps(doc))
    code, out, err = ev(make(flow, tmp_path), capsys)  # type: ignore[operator]
    assert code == EXIT_INPUT, out + err
    assert out == ""
    assert err.startswith("evidence-verify: error: ") and message in err, err
    assert len(err.splitlines()) == 1


def test_json_error_output(flow: Flow, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ev(["package", str(flow.cert), "--trust", str(flow.trust), "--json"], capsys)
    assert code == EXIT_INPUT
    assert json.loads(out)["valid"] is False


# ------------------------------------------------------------------ log over HTTP


@pytest.fixture
def served(flow: Flow) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(flow.export))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_log_from_a_url(flow: Flow, served: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = ev(
        ["log", served + "/", "--trust", str(flow.trust), "--certificate", str(flow.cert)], capsys
    )
    assert code == EXIT_VALID, out + err
    assert out.startswith(f"log audit: {served}/")
    code, out, _ = ev(
        ["package", str(flow.package), "--trust", str(flow.trust), "--log", served], capsys
    )
    assert code == EXIT_VALID, out
    code, _, err = ev(["log", served + "/nope", "--trust", str(flow.trust)], capsys)
    assert code == EXIT_INPUT and "has no checkpoint" in err


def test_log_from_an_unreachable_url(flow: Flow, capsys: pytest.CaptureFixture[str]) -> None:
    with socket_free_port() as port:
        code, _, err = ev(["log", f"http://127.0.0.1:{port}", "--trust", str(flow.trust)], capsys)
    assert code == EXIT_INPUT and "cannot fetch" in err
    code, _, err = ev(["log", "ftp://example.com/log", "--trust", str(flow.trust)], capsys)
    assert code == EXIT_INPUT


@contextlib.contextmanager
def socket_free_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, never listening, closed after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_log_with_trust_from_an_older_checkpoint_and_another_origin(
    flow: Flow, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old-checkpoint"
    old.write_text(json.loads(flow.cert_stdout)["checkpoint"], "utf-8")
    args = ["log", str(flow.export), "--trust", str(flow.trust), "--from", str(old)]
    code, out, _ = ev(args, capsys)
    assert code == EXIT_VALID, out
    assert "old tree is a prefix" in out and "no rollback" in out
    doc = json.loads(flow.trust.read_text())
    doc["logs"][0]["origin"] = "elsewhere.test/log"
    doc["logs"][0]["vkey"] = doc["logs"][0]["vkey"].replace(ORIGIN, "elsewhere.test/log")
    other = tmp_path / "other-trust.json"
    other.write_text(json.dumps(doc))
    code, out, err = ev(["log", str(flow.export), "--trust", str(other)], capsys)
    # The key hash no longer matches the renamed key: the trust file itself is malformed.
    assert code == EXIT_INPUT and "key hash does not match" in err


def test_log_of_an_origin_the_trust_file_does_not_list(
    flow: Flow, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from verifier.note import VerifierKey

    pub = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    doc = json.loads(flow.trust.read_text())
    vkey = VerifierKey.from_public_key("elsewhere.test/log", pub).to_text()
    doc["logs"] = [{"origin": "elsewhere.test/log", "vkey": vkey}]
    other = tmp_path / "other-trust.json"
    other.write_text(json.dumps(doc))
    code, out, _ = ev(["log", str(flow.export), "--trust", str(other)], capsys)
    assert code == EXIT_INVALID
    assert f"origin '{ORIGIN}' is not the log key's name 'elsewhere.test/log'" in out
    code, out, _ = ev(["package", str(flow.package), "--trust", str(other)], capsys)
    assert code == EXIT_INVALID
    assert f"no trusted log key for origin '{ORIGIN}'" in out
