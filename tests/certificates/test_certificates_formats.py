"""Formats on their own: trust files, tlog-proof, the package zip (zip64 included)
and its interoperability with ordinary unzip tools."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cert_helpers import World, build_world

import verifier.package as package_mod
from verifier.certificate import Certificate, deposit_number
from verifier.errors import MalformedError
from verifier.package import PackageReader, evidence_member_name, verify_package, write_package
from verifier.tlogproof import parse_tlog_proof
from verifier.trust import load_trust, read_trust


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("formats"))


# ------------------------------------------------------------------ trust file


def _doc(world: World) -> dict[str, Any]:
    return json.loads(json.dumps(world.trust))


def test_trust_file_parses(world: World) -> None:
    trust = read_trust(world.trust_path)
    assert [k.name for k in trust.logs] == ["certs.test/log"]
    assert trust.witnesses is None and trust.tsa_roots == ()
    assert trust.notaries[0].name == world.notary.name
    assert trust.notaries[0].valid_until is None


TRUST_DEFECTS = [
    ("not UTF-8", lambda d: b"\xff{}", "not valid UTF-8"),
    ("not JSON", lambda d: b"{", "json:"),
    ("duplicate member", lambda d: b'{"format": 1, "format": 2}', "duplicate member 'format'"),
    (
        "wrong format",
        lambda d: {**d, "format": "evidence-trust/v2"},
        "expected 'evidence-trust/v1'",
    ),
    ("extra member", lambda d: {**d, "comment": "x"}, "unknown ['comment']"),
    ("no log keys", lambda d: {**d, "logs": []}, "no log keys: nothing could be verified"),
    (
        "log key named otherwise",
        lambda d: {**d, "logs": [{**d["logs"][0], "origin": "other.test/log"}]},
        "expected 'other.test/log'",
    ),
    (
        "bad vkey",
        lambda d: {**d, "logs": [{**d["logs"][0], "vkey": d["logs"][0]["vkey"][:-4]}]},
        "verifier key",
    ),
    ("quorum not an int", lambda d: {**d, "witnesses": {"quorum": "1", "keys": []}}, "quorum"),
    ("quorum above keys", lambda d: {**d, "witnesses": {"quorum": 1, "keys": []}}, "from 0 to 0"),
    ("negative quorum", lambda d: {**d, "witnesses": {"quorum": -1, "keys": []}}, "from 0 to 0"),
    (
        "notary period inverted",
        lambda d: {
            **d,
            "notaries": [
                {
                    **d["notaries"][0],
                    "valid_from": "2025-01-02T00:00:00Z",
                    "valid_until": "2025-01-01T00:00:00Z",
                }
            ],
        },
        "valid_until is not after valid_from",
    ),
    (
        "notary time not RFC 3339",
        lambda d: {**d, "notaries": [{**d["notaries"][0], "valid_from": "2025-01-01 00:00"}]},
        "is not an RFC 3339 UTC time",
    ),
    (
        "notary time impossible",
        lambda d: {**d, "notaries": [{**d["notaries"][0], "valid_from": "2025-02-30T00:00:00Z"}]},
        "is not a valid date and time",
    ),
    ("TSA root not PEM", lambda d: {**d, "tsa_roots": ["hello"]}, "is not one PEM certificate"),
    (
        "TSA root garbage PEM",
        lambda d: {
            **d,
            "tsa_roots": ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
        },
        "does not parse",
    ),
    ("logs not a list", lambda d: {**d, "logs": {}}, "must be a list"),
]


@pytest.mark.parametrize(
    ("name", "make", "message"), TRUST_DEFECTS, ids=[t[0] for t in TRUST_DEFECTS]
)
def test_trust_file_defects_are_malformed(world: World, name: str, make: Any, message: str) -> None:
    made = make(_doc(world))
    data = made if isinstance(made, bytes) else json.dumps(made).encode()
    with pytest.raises(MalformedError) as info:
        load_trust(data)
    assert message in str(info.value)


def test_a_trust_file_without_notaries_fails_certificates_closed(world: World) -> None:
    from verifier.certificate import verify_certificate

    trust = load_trust(json.dumps({**_doc(world), "notaries": []}).encode())
    checks = {c.key: c for c in verify_certificate(Certificate.from_json(world.file_cert), trust)}
    assert not checks["notary_signature"].ok
    assert "lists no notaries (fail closed)" in checks["notary_signature"].reason


# ------------------------------------------------------------------ tlog-proof


def test_proof_txt_is_c2sp_tlog_proof(world: World) -> None:
    cert = Certificate.from_json(world.file_cert)
    text = cert.tlog_proof().to_text()
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1].startswith("extra ") and lines[2] == f"index {cert.index}"
    assert text.endswith(cert.checkpoint)
    proof = parse_tlog_proof(text.encode())
    assert proof.extra == cert.leaf and list(proof.hashes) == list(cert.proof)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("c2sp.org/tlog-proof@v2\nindex 1\n\nx\n\n— a AAAAAAAA\n", "first line"),
        ("c2sp.org/tlog-proof@v1\nindex 01\n\nx\n\n— a AAAAAAAA\n", "canonical decimal"),
        ("c2sp.org/tlog-proof@v1\nextra ***\nindex 1\n\nx\n\n— a AAAAAAAA\n", "invalid base64"),
        ("c2sp.org/tlog-proof@v1\nindex 1\nAAAA\n\nx\n\n— a AAAAAAAA\n", "hash has 3 bytes"),
        ("c2sp.org/tlog-proof@v1\n\nx\n\n— a AAAAAAAA\n", "missing 'index N'"),
        ("c2sp.org/tlog-proof@v1\nindex 1\n", "no empty line"),
        ("c2sp.org/tlog-proof@v1\nindex 1\n\nnot a note", "note:"),
    ],
)
def test_tlog_proof_defects(text: str, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        parse_tlog_proof(text.encode())


# ------------------------------------------------------------------ the zip


def test_packages_open_with_ordinary_tools(world: World, tmp_path: Path) -> None:
    with zipfile.ZipFile(world.file_package) as z:
        assert z.testzip() is None
        assert z.read("evidence/contract.txt") == (world.root / "contract.txt").read_bytes()
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
        assert all(i.flag_bits & 0x800 for i in z.infolist())  # UTF-8 names
    if shutil.which("unzip"):
        r = subprocess.run(
            ["unzip", "-o", "-q", str(world.file_package), "-d", str(tmp_path)],
            capture_output=True,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "certificate.json").read_bytes() == world.file_cert
        readme = (tmp_path / "README.txt").read_text("utf-8")
        assert "证据包" in readme and "Evidence package" in readme
        assert "evidence-verify package" in readme


def test_zip64_layout(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the zip64 threshold lowered, sizes and offsets go to zip64 fields and
    records; the package still verifies and opens with zipfile."""
    monkeypatch.setattr(package_mod, "ZIP64_LIMIT", 600)
    cert = Certificate.from_json(world.file_cert)
    buf = io.BytesIO()
    with (world.root / "contract.txt").open("rb") as f:
        write_package(buf, cert, f)
    data = buf.getvalue()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # zip64 end record and locator
    path = tmp_path / "zip64.zip"
    path.write_bytes(data)
    report = verify_package(path, read_trust(world.trust_path))
    assert report.valid, [(c.key, c.reason) for c in report.failed]
    with zipfile.ZipFile(path) as z:
        assert z.read("evidence/contract.txt") == (world.root / "contract.txt").read_bytes()
    # One flipped byte in a zip64 field is caught, like any other.
    pos = data.index(b"PK\x06\x06") + 48
    bad = bytearray(data)
    bad[pos] ^= 1
    path.write_bytes(bytes(bad))
    with pytest.raises(MalformedError):
        verify_package(path, read_trust(world.trust_path))


def test_reader_refuses_non_files(tmp_path: Path) -> None:
    (tmp_path / "tiny.zip").write_bytes(b"PK")
    with pytest.raises(MalformedError, match="too short"):
        PackageReader(tmp_path / "tiny.zip")
    with pytest.raises(MalformedError, match="cannot read"):
        PackageReader(tmp_path)


def test_evidence_member_names(world: World) -> None:
    facts = Certificate.from_json(world.file_cert).evidence
    cases = {
        "contract.txt": "evidence/contract.txt",
        "../../etc/passwd": "evidence/passwd",
        "C:\\Users\\x\\合同.pdf": "evidence/合同.pdf",
        'a<b>c:d"e|f?g*h.txt': "evidence/a_b_c_d_e_f_g_h.txt",
        "..": f"evidence/evidence-{facts.sha256[:16]}",
        "": f"evidence/evidence-{facts.sha256[:16]}",
        "x" * 300: "evidence/" + "x" * 200,
    }
    for name, member in cases.items():
        assert evidence_member_name(_with_name(facts, name)) == member, name


def _with_name(facts: Any, name: str) -> Any:
    from dataclasses import replace

    return replace(facts, file_name=name)


def test_deposit_number_is_the_catalogue_s() -> None:
    """One definition: the ledger and the certificate use the verifier's catalogue."""
    import ledger.core
    import ledger.projections
    import verifier.events

    assert deposit_number is verifier.events.deposit_number
    assert ledger.projections.deposit_number is verifier.events.deposit_number
    assert deposit_number(123456789, "2030-12-31T23:59:59.999999Z") == "EL-20301231-0123456789"
