"""``evidence-verify timestamp``: any RFC 3161 token on its own (0 valid, 1 invalid, 2 input).

Run over the committed vectors of tests/vectors/tsa: a real DigiCert token, the
OpenSSL chain token as a token, a response, BER and base64, and the refusals.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from verifier.cli import EXIT_INPUT, EXIT_INVALID, EXIT_VALID, main

TSA = Path(__file__).resolve().parents[1] / "vectors" / "tsa"
REAL = TSA / "real" / "2288b640a720fde6"
DIGICERT = str(TSA / "roots" / "digicert_g4.pem")
GEN = TSA / "generated"
ROOT = str(GEN / "root.pem")
MESSAGE = str(GEN / "message.txt")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["timestamp", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_real_token_over_its_data(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, f"{REAL}.tst", "--data", f"{REAL}.msg", "--roots", DIGICERT)
    assert status == EXIT_VALID
    assert "gen_time        2025-05-22T13:59:35Z" in out
    assert "CN=DigiCert Timestamp 2024" in out
    assert "normalised      certificates sorted into DER order" in out
    assert out.endswith("VALID: the data existed at 2025-05-22T13:59:35Z (genTime)\n")


@pytest.mark.parametrize(
    "token", ["chain3.tst", "chain3.tsr", "chain3-ber.tst", "chain3-ber.tsr", "chain3-attrcert.tst"]
)
def test_tokens_and_responses_in_every_form(
    capsys: pytest.CaptureFixture[str], token: str, tmp_path: Path
) -> None:
    status, out, _ = run(capsys, str(GEN / token), "--data", MESSAGE, "--roots", ROOT, "--json")
    assert status == EXIT_VALID
    doc = json.loads(out)
    assert doc["valid"] is True and doc["hash_algorithm"] == "sha256"
    assert doc["digest"] == hashlib.sha256(Path(MESSAGE).read_bytes()).hexdigest()
    assert "certificates sorted into DER order" in doc["normalised"]
    # The same as base64, bare and between PEM armour lines.
    b64 = base64.encodebytes((GEN / token).read_bytes()).decode()
    for text in (b64, f"-----BEGIN TIMESTAMP TOKEN-----\n{b64}-----END TIMESTAMP TOKEN-----\n"):
        (tmp_path / "t.pem").write_text(text)
        args = (str(tmp_path / "t.pem"), "--digest", doc["digest"], "--roots", ROOT, "--json")
        status, out, _ = run(capsys, *args)
        assert status == EXIT_VALID and json.loads(out)["gen_time"] == doc["gen_time"]


@pytest.mark.parametrize(
    ("token", "data", "roots", "message"),
    [
        ("chain3.tst", "other-message.txt", ROOT, "over another message"),
        ("chain3.tst", "message.txt", str(GEN / "other-root.pem"), "does not verify at genTime"),
        ("chain3-flipped-signature.tst", "message.txt", ROOT, "timestamp:"),
        ("ess-names-another-certificate.tst", "message.txt", ROOT, "names another certificate"),
        ("forged-self-signed.tst", "message.txt", ROOT, "does not verify at genTime"),
        ("sha1-imprint.tst", "message.txt", ROOT, "SHA-1"),
    ],
)
def test_invalid_tokens_exit_1(
    capsys: pytest.CaptureFixture[str], token: str, data: str, roots: str, message: str
) -> None:
    status, out, err = run(capsys, str(GEN / token), "--data", str(GEN / data), "--roots", roots)
    assert status == EXIT_INVALID, err
    assert out.startswith("INVALID: timestamp: ") and message in out
    assert out.count("\n") == 1
    status, out, _ = run(
        capsys, str(GEN / token), "--data", str(GEN / data), "--roots", roots, "--json"
    )
    doc = json.loads(out)
    assert status == EXIT_INVALID and doc["valid"] is False and message in doc["error"]


def test_a_digest_instead_of_the_data(capsys: pytest.CaptureFixture[str]) -> None:
    good = hashlib.sha256(Path(MESSAGE).read_bytes()).hexdigest()
    token = str(GEN / "chain3.tst")
    assert run(capsys, token, "--digest", good, "--roots", ROOT)[0] == EXIT_VALID
    assert run(capsys, token, "--digest", good.upper(), "--roots", ROOT)[0] == EXIT_VALID
    other = hashlib.sha256(b"other").hexdigest()
    assert run(capsys, token, "--digest", other, "--roots", ROOT)[0] == EXIT_INVALID


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.tst", "--data", MESSAGE, "--roots", ROOT], "cannot read token"),
        ([str(GEN / "chain3.tst"), "--data", "missing.bin", "--roots", ROOT], "cannot read data"),
        ([str(GEN / "chain3.tst"), "--data", MESSAGE, "--roots", "missing.pem"], "cannot read"),
        ([str(GEN / "chain3.tst"), "--data", MESSAGE, "--roots", MESSAGE], "not a PEM"),
        ([str(GEN / "chain3.tst"), "--digest", "zz", "--roots", ROOT], "is not hex"),
        ([str(GEN / "chain3.tst"), "--digest", "00" * 20, "--roots", ROOT], "has 32 bytes"),
        ([MESSAGE, "--digest", "00" * 32, "--roots", ROOT], "neither DER nor base64"),
        ([str(GEN / "ber-signed-attributes.tst"), "--data", MESSAGE, "--roots", ROOT], "DER"),
        ([ROOT, "--data", MESSAGE, "--roots", ROOT], "neither a TimeStampToken nor"),
    ],
)
def test_unreadable_input_exits_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    status, out, err = run(capsys, *args)
    assert status == EXIT_INPUT
    assert err.startswith("evidence-verify: error: ") and message in err and err.count("\n") == 1
    assert out == ""


def test_garbage_and_truncated_tokens_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = (GEN / "chain3.tst").read_bytes()
    for i, bad in enumerate([data[:-1], data + b"\x00", b"\x30\x03\x02\x01\x00", b"\x30" * 9]):
        (tmp_path / f"{i}.tst").write_bytes(bad)
        status, _, err = run(capsys, str(tmp_path / f"{i}.tst"), "--data", MESSAGE, "--roots", ROOT)
        assert status == EXIT_INPUT and err.startswith("evidence-verify: error: timestamp: ")


def test_data_and_digest_are_exclusive_and_one_is_required(
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = str(GEN / "chain3.tst")
    for args in (
        [token, "--roots", ROOT],
        [token, "--data", MESSAGE, "--digest", "00", "--roots", ROOT],
        [token, "--data", MESSAGE],
    ):
        with pytest.raises(SystemExit) as info:
            main(["timestamp", *args])
        assert info.value.code == 2
    capsys.readouterr()


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["timestamp", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and "--digest" in out and "exit status" in out


def test_console_script() -> None:
    exe = str(Path(sys.executable).with_name("evidence-verify"))
    r = subprocess.run(
        [exe, "timestamp", f"{REAL}.tst", "--data", f"{REAL}.msg", "--roots", DIGICERT, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tsa"] == "CN=DigiCert Timestamp 2024,O=DigiCert,C=US"
