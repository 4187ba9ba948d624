"""RFC 3161 vectors of tests/vectors/tsa: real TSAs' tokens and generated ones.

Each record of ``real.json`` and ``generated/manifest.json`` names a token (or a
TimeStampResp), its message, the trusted roots and the verdict: valid (with
what normalisation had to rewrite) or an error class and message. Where the
record says what ``openssl ts -verify`` answers, OpenSSL is asked too (at the
token's genTime, since real TSA certificates have expired since), so our
verdict is checked against an independent implementation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from verifier.cms import normalise_token
from verifier.errors import MalformedError, VerificationError
from verifier.timestamp import load_roots, read_token, verify_token

TSA = Path(__file__).resolve().parents[1] / "vectors" / "tsa"
# The Thawte Timestamping CA (1997) has serial number 0, which cryptography warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")
ERRORS = {"MalformedError": MalformedError, "VerificationError": VerificationError}


def records(name: str) -> list[dict[str, Any]]:
    return list(json.loads((TSA / name).read_text("utf-8"))["vectors"])


REAL = records("real.json")
GENERATED = records("generated/manifest.json")


def run(record: dict[str, Any], base: Path = TSA) -> Any:
    def path(rel: str) -> Path:
        return (base if rel.startswith("generated/") else TSA) / rel

    token = read_token(path(record["token"]).read_bytes())
    roots = load_roots([path(r).read_bytes() for r in record["roots"]])
    return verify_token(token, roots, message=path(record["message"]).read_bytes())


def check(record: dict[str, Any], base: Path = TSA) -> None:
    expect = record["expect"]
    if expect.get("valid"):
        info = run(record, base)
        assert list(info.normalised) == record["normalised"]
        return
    with pytest.raises(ERRORS[expect["error"]]) as caught:
        run(record, base)
    assert type(caught.value) is ERRORS[expect["error"]]
    assert expect["message"] in str(caught.value)
    assert str(caught.value).startswith("timestamp: ") and "\n" not in str(caught.value)


@pytest.mark.parametrize("record", REAL + GENERATED, ids=lambda r: r["name"])
def test_vector(record: dict[str, Any]) -> None:
    check(record)


def _gen_time(token: Path) -> str:
    out = subprocess.run(
        ["openssl", "ts", "-reply", "-token_in", "-in", str(token), "-token_out", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("Time stamp: "))
    when = subprocess.run(
        ["date", "-u", "-d", line.removeprefix("Time stamp: "), "+%s"],
        capture_output=True,
        text=True,
        check=True,
    )
    return when.stdout.strip()


@pytest.mark.parametrize(
    "record", [r for r in REAL + GENERATED if "openssl" in r], ids=lambda r: r["name"]
)
def test_openssl_agrees(record: dict[str, Any], tmp_path: Path) -> None:
    token = TSA / record["token"]
    bundle = tmp_path / "roots.pem"
    bundle.write_text("".join((TSA / r).read_text() for r in record["roots"]))
    attime = []
    if record["token"].startswith("real/"):
        attime = ["-attime", _gen_time(token)]
    r = subprocess.run(
        [
            *("openssl", "ts", "-verify", "-token_in", "-in", str(token)),
            *("-data", str(TSA / record["message"]), "-CAfile", str(bundle), *attime),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert f"Verification: {record['openssl']}" in r.stdout + r.stderr, r.stderr


def test_real_tokens_cover_what_the_issue_reported() -> None:
    """The DigiCert tokens all need their certificate set sorted; all of them verify."""
    digicert = [r for r in REAL if "DigiCert" in r["what"]]
    assert len(digicert) >= 10
    assert all(r["expect"] == {"valid": True} for r in digicert)
    assert all(r["normalised"] == ["certificates sorted into DER order"] for r in digicert)
    assert len([r for r in REAL if r["expect"].get("valid")]) >= 15
    names = {r["name"] for r in GENERATED}
    assert {"openssl-chain3", "openssl-chain3-ber", "ess-names-another-certificate"} <= names


def test_every_file_is_accounted_for() -> None:
    used = {r["token"] for r in REAL + GENERATED} | {r["message"] for r in REAL + GENERATED}
    used |= {root for r in REAL + GENERATED for root in r["roots"]}
    present = {
        str(p.relative_to(TSA))
        for p in TSA.rglob("*")
        if p.is_file() and p.suffix in (".tst", ".tsr", ".msg", ".pem", ".txt")
    }
    assert present == used


def test_the_original_bytes_are_what_is_kept() -> None:
    """Normalising the DER form again changes nothing; the BER form normalises to it."""
    der_form = normalise_token((TSA / "generated/chain3.tst").read_bytes()).der
    assert normalise_token(der_form).der == der_form and normalise_token(der_form).changes == ()
    ber = normalise_token((TSA / "generated/chain3-ber.tst").read_bytes())
    assert ber.der == der_form
    acert = normalise_token((TSA / "generated/chain3-attrcert.tst").read_bytes())
    assert acert.der == der_form


@pytest.mark.slow
def test_the_generator_makes_vectors_with_the_same_verdicts(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    r = subprocess.run(
        [sys.executable, str(TSA / "make_tsa_vectors.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    fresh = json.loads((out / "manifest.json").read_text())["vectors"]
    assert [x["name"] for x in fresh] == [x["name"] for x in GENERATED]
    for record in fresh:
        check(record, tmp_path)
