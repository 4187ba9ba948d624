"""Witness quorum and RFC 3161 checks in certificate verification, following the trust file.

Cosignatures here are made with witness keys directly (C2SP tlog-cosignature/v1,
through :func:`verifier.note.cosigned_message`), so every case of the policy can
be set up exactly; the witness service and the sealer that collect them for
real are tested in ``tests/anchoring``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from cert_helpers import World, b64, build_world, other_key, resign
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verifier.certificate import Certificate, verify_certificate
from verifier.cli import EXIT_INVALID, EXIT_VALID, main
from verifier.cosignature import cosignature_line
from verifier.errors import MalformedError
from verifier.note import ALG_COSIGNATURE_V1, Note, VerifierKey, cosigned_message, parse_note
from verifier.report import FAILED, NOT_APPLICABLE, PASSED, SKIPPED, Check
from verifier.trust import read_trust

WITNESSES = {f"witness{i}.test": other_key(f"witness {i}") for i in range(1, 5)}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("anchors"))


def _vkey(name: str, key: Ed25519PrivateKey) -> VerifierKey:
    return VerifierKey.from_public_key(
        name, key.public_key().public_bytes_raw(), ALG_COSIGNATURE_V1
    )


def _cosign(note: Note, *names: str, body: str | None = None) -> Note:
    ts = int(time.time())
    lines = []
    for name in names:
        key = WITNESSES[name]
        sig = key.sign(cosigned_message(body or note.text, ts))
        lines.append(cosignature_line(_vkey(name, key), ts, sig))
    return note.with_signatures(lines)


def _trust(world: World, quorum: int, names: list[str], name: str) -> Path:
    def change(doc: dict[str, Any]) -> None:
        doc["witnesses"] = {
            "quorum": quorum,
            "keys": [{"name": n, "vkey": _vkey(n, WITNESSES[n]).to_text()} for n in names],
        }

    return world.trust_file(name, change)


def _cert_with(world: World, note: Note) -> Certificate:
    data = resign(world.file_cert, lambda o: o.update(checkpoint=note.to_text()), world.signer.sign)
    return Certificate.from_json(data)


def _witness_check(world: World, note: Note, quorum: int, names: list[str]) -> Check:
    trust = read_trust(_trust(world, quorum, names, f"w{quorum}-{len(names)}.json"))
    checks = verify_certificate(_cert_with(world, note), trust)
    return next(c for c in checks if c.key == "witnesses")


def _note(world: World) -> Note:
    return parse_note(json.loads(world.file_cert)["checkpoint"])


ALL3 = ["witness1.test", "witness2.test", "witness3.test"]


def test_quorum_zero_is_not_applicable(world: World) -> None:
    c = _witness_check(world, _note(world), 0, [])
    assert c.status == NOT_APPLICABLE and "quorum 0" in c.reason


def test_quorum_met(world: World) -> None:
    note = _cosign(_note(world), "witness1.test", "witness3.test")
    c = _witness_check(world, note, 2, ALL3)
    assert c.status == PASSED, c.reason
    assert "2 of 3 trusted witnesses cosigned (witness1.test, witness3.test); quorum 2" in c.reason


def test_quorum_not_met(world: World) -> None:
    note = _cosign(_note(world), "witness1.test", "witness2.test")
    c = _witness_check(world, note, 3, ALL3)
    assert c.status == FAILED and "2 of 3 trusted witnesses cosigned" in c.reason


def test_no_cosignatures_fail_closed(world: World) -> None:
    c = _witness_check(world, _note(world), 1, ALL3)
    assert c.status == FAILED and "0 of 3 trusted witnesses cosigned (none)" in c.reason


def test_unknown_witness_does_not_count(world: World) -> None:
    note = _cosign(_note(world), "witness1.test", "witness4.test")
    c = _witness_check(world, note, 2, ALL3)
    assert c.status == FAILED and "1 of 3 trusted witnesses cosigned (witness1.test)" in c.reason


def test_cosignature_over_another_checkpoint_fails(world: World) -> None:
    note = _note(world)
    other_body = note.text.replace("\n", "\nx", 1)  # another origin line: another checkpoint
    forged = _cosign(note, "witness2.test", body=other_body)
    forged = _cosign(forged, "witness1.test")
    c = _witness_check(world, forged, 1, ALL3)
    assert c.status == FAILED and "invalid cosignature by witness2.test" in c.reason


def test_witnesses_skipped_when_the_log_signature_fails(world: World) -> None:
    note = _cosign(_note(world), *ALL3)
    unsigned_by_log = Note(note.text, note.signatures[1:])
    c = _witness_check(world, unsigned_by_log, 2, ALL3)
    assert c.status == SKIPPED


def test_trust_file_witness_rules(world: World) -> None:
    with pytest.raises(MalformedError, match="quorum 4 must be an integer from 0 to 3"):
        read_trust(_trust(world, 4, ALL3, "bad-quorum.json"))
    log_key = world.trust["logs"][0]["vkey"]

    def plain_key(doc: dict[str, Any]) -> None:
        doc["witnesses"] = {"quorum": 1, "keys": [{"name": "certs.test/log", "vkey": log_key}]}

    with pytest.raises(MalformedError, match="not a cosigner key"):
        read_trust(world.trust_file("plain.json", plain_key))


def test_timestamp_required_but_missing(world: World) -> None:
    roots = [_self_signed_pem()]

    def change(doc: dict[str, Any]) -> None:
        doc["tsa_roots"] = roots

    trust = read_trust(world.trust_file("tsa.json", change))
    checks = verify_certificate(Certificate.from_json(world.file_cert), trust)
    c = next(c for c in checks if c.key == "timestamp")
    assert c.status == FAILED and "requires an RFC 3161 timestamp, there is none" in c.reason
    # A token that is not a token at all.
    data = resign(
        world.file_cert,
        lambda o: o.update(timestamp_token=b64(b"\x30\x03\x02\x01\x00")),
        world.signer.sign,
    )
    checks = verify_certificate(Certificate.from_json(data), trust)
    c = next(c for c in checks if c.key == "timestamp")
    assert c.status == FAILED and "timestamp" in c.reason


def test_token_without_roots_is_not_applicable(world: World) -> None:
    data = resign(
        world.file_cert, lambda o: o.update(timestamp_token=b64(b"\x30\x00")), world.signer.sign
    )
    checks = verify_certificate(Certificate.from_json(data), read_trust(world.trust_path))
    c = next(c for c in checks if c.key == "timestamp")
    assert c.status == NOT_APPLICABLE and "not checked" in c.reason


def test_log_command_checks_the_quorum_of_the_exported_checkpoint(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "export"
    shutil.copytree(world.export_dir, export)
    trust = _trust(world, 2, ALL3, "log-quorum.json")
    assert main(["log", str(export), "--trust", str(trust)]) == EXIT_INVALID
    assert "0 of 3 trusted witnesses cosigned" in capsys.readouterr().out
    note = parse_note((export / "checkpoint").read_text("utf-8"))
    (export / "checkpoint").write_text(_cosign(note, *ALL3[:2]).to_text(), "utf-8")
    assert main(["log", str(export), "--trust", str(trust)]) == EXIT_VALID
    assert "2 of 3 trusted witnesses cosigned" in capsys.readouterr().out


def _self_signed_pem() -> str:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA Root")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
