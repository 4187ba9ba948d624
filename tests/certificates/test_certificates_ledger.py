"""Accounts, certificates and the trust file on both backends (SQLite, PostgreSQL)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from pathlib import Path

import pytest

from ledger.accounts import authenticate, create_account, find_account, hash_token, revoke_account
from ledger.certificates import (
    NotSealed,
    certificate_row,
    get_certificate,
    issue_certificate,
    package_certificate,
    revoke_certificate,
    trust_export,
    write_certificate_package,
)
from ledger.core import Ledger
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.services import OPERATOR, Services
from verifier.certificate import Certificate, verify_certificate
from verifier.digest import digest_stream
from verifier.package import PackageReader, verify_package
from verifier.record import decode_record
from verifier.trust import load_trust

CONTENT = b"%PDF-1.7 evidence " * 1000


def _trust(ledger: Ledger) -> bytes:
    return json.dumps(trust_export(ledger)).encode()


def _deposit_file(ledger: Ledger, name: str = "contract.pdf") -> str:
    return (
        Services(ledger)
        .deposits.deposit_file(OPERATOR, io.BytesIO(CONTENT), title="合同", file_name=name)
        .evidence_id
    )


def _record(ledger: Ledger, index: int) -> dict[str, object]:
    leaf = ledger.store.entries(index, index + 1)[0][3]
    r = decode_record(bytes(leaf))
    return {"type": r.type, "body": r.body}


# ------------------------------------------------------------------ accounts


def test_account_token_is_stored_only_as_its_hash(ledger: Ledger) -> None:
    created = create_account(ledger, "rights_holder", "ACME Ltd")
    assert created.token.startswith("elt_") and len(created.token) > 40
    assert created.token not in repr(created)
    row = find_account(ledger, "ACME Ltd")
    assert row.token_sha256 == hash_token(created.token)
    _, _, private = ledger.store.privates(created.index, created.index + 1)[0]
    assert created.token.encode() not in bytes(private)
    assert created.token.encode() not in bytes(ledger.store.entries(0, 1)[0][3])
    assert _record(ledger, created.index) == {
        "type": "account.registered",
        "body": {"account_id": created.account_id, "role": "rights_holder"},
    }


def test_authenticate(ledger: Ledger) -> None:
    a = create_account(ledger, "auditor", "Auditor Li")
    b = create_account(ledger, "admin", "Root")
    row = authenticate(ledger, a.token)
    assert row is not None and row.account_id == a.account_id and row.role == "auditor"
    b_row = authenticate(ledger, b.token)
    assert b_row is not None and b_row.account_id == b.account_id
    for bad in ("", "elt_", a.token + "x", a.token[:-1], "Bearer " + a.token, "elt_" + "a" * 300):
        assert authenticate(ledger, bad) is None
    revoke_account(ledger, a.account_id)
    assert authenticate(ledger, a.token) is None
    assert authenticate(ledger, b.token) is not None


def test_notary_key_file_and_key_registered(ledger: Ledger) -> None:
    n = create_account(ledger, "notary", "Notary Wang")
    assert n.key_file is not None and n.vkey is not None
    assert stat.S_IMODE(os.stat(n.key_file).st_mode) == 0o600
    assert n.key_file.parent == ledger.config.home / "keys"
    assert _record(ledger, n.index + 1)["type"] == "key.registered"
    body = _record(ledger, n.index + 1)["body"]
    assert body["vkey"] == n.vkey and body["account_id"] == n.account_id  # type: ignore[index]
    assert body["purpose"] == "certificate"  # type: ignore[index]
    keys = ledger.store.query("select * from keys where account_id = ?", (n.account_id,))
    assert [k["vkey"] for k in keys] == [n.vkey]


def test_account_input_is_checked(ledger: Ledger) -> None:
    with pytest.raises(InvalidInput, match="role must be one of"):
        create_account(ledger, "judge", "X")
    with pytest.raises(InvalidInput, match="name must be non-empty"):
        create_account(ledger, "notary", " padded ")
    create_account(ledger, "notary", "Twice")
    with pytest.raises(Conflict, match="already exists"):  # as when the append refuses it
        create_account(ledger, "notary", "Twice")
    assert not list((ledger.config.home / "keys").glob("notary-*.key"))[1:]  # only one key file
    with pytest.raises(NotFound):
        revoke_account(ledger, "nobody")


def test_revoking_a_notary_revokes_its_key(ledger: Ledger) -> None:
    n = create_account(ledger, "notary", "Notary Zhao")
    result = revoke_account(ledger, "Notary Zhao", "notary")
    assert result["revoked_keys"] == [n.vkey]
    assert _record(ledger, result["index"])["type"] == "account.revoked"
    assert _record(ledger, result["index"] + 1)["type"] == "key.revoked"
    key = ledger.store.query("select * from keys where vkey = ?", (n.vkey,))[0]
    assert key["revoked_idx"] == result["index"] + 1
    create_account(ledger, "notary", "Notary Zhao")  # the name is free again


# ------------------------------------------------------------------ certificates


def test_issue_verify_and_rebuild(ledger: Ledger) -> None:
    create_account(ledger, "notary", "Notary Zhang")
    eid = _deposit_file(ledger)
    with pytest.raises(NotSealed, match="not yet in a published checkpoint"):
        issue_certificate(ledger, eid, "Notary Zhang")
    ledger.seal()
    issued = issue_certificate(ledger, eid, "Notary Zhang", statement="经审查，特此证明。")
    cert = Certificate.from_json(issued.data)
    assert cert.certificate_id == issued.certificate_id
    assert cert.statement == "经审查，特此证明。"
    assert cert.evidence.file_name == "contract.pdf" and cert.evidence.size == len(CONTENT)
    # The event names the certificate publicly; the certificate itself is private.
    rec = _record(ledger, issued.index)
    assert rec["type"] == "certificate.issued"
    assert rec["body"]["certificate_id"] == issued.certificate_id  # type: ignore[index]
    assert rec["body"]["evidence_id"] == eid  # type: ignore[index]
    assert get_certificate(ledger, issued.certificate_id) == issued.data
    # Valid against the exported trust file, with the file.
    digest = digest_stream(io.BytesIO(CONTENT).read, "contract.pdf")
    checks = verify_certificate(cert, load_trust(_trust(ledger)), [digest])
    assert all(c.ok for c in checks), [(c.key, c.reason) for c in checks]
    # Rebuild replays the certificates projection identically.
    before = ledger.store.dump_projections()
    assert before["certificates"]
    ledger.store.rebuild()
    assert ledger.store.dump_projections() == before
    assert get_certificate(ledger, issued.certificate_id) == issued.data


def test_issue_refuses_unknown_inputs(ledger: Ledger) -> None:
    create_account(ledger, "notary", "Notary Zhang")
    create_account(ledger, "rights_holder", "Holder")
    eid = _deposit_file(ledger)
    ledger.seal()
    with pytest.raises(NotFound, match="evidence"):
        issue_certificate(ledger, "0" * 32, "Notary Zhang")
    with pytest.raises(NotFound, match="no active notary"):
        issue_certificate(ledger, eid, "Holder")
    with pytest.raises(NotFound, match="no active notary"):
        issue_certificate(ledger, eid, "Nobody")
    with pytest.raises(InvalidInput, match="statement"):
        issue_certificate(ledger, eid, "Notary Zhang", statement=" ")
    with pytest.raises(InvalidInput, match="not valid Unicode"):
        issue_certificate(ledger, eid, "Notary Zhang", statement="lone \ud800 surrogate")
    revoke_account(ledger, "Notary Zhang", "notary")
    with pytest.raises(NotFound, match="no active notary"):
        issue_certificate(ledger, eid, "Notary Zhang")


def _members(data: bytes) -> list[tuple[str, bytes]]:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def test_packages_verify(ledger: Ledger, tmp_path: Path) -> None:
    create_account(ledger, "notary", "Notary Zhang")
    file_id = _deposit_file(ledger, "../../etc/合同:v2?.pdf")
    hash_id = (
        Services(ledger).deposits.deposit_hash(OPERATOR, "ab" * 32, title="secret").evidence_id
    )
    ledger.seal()
    trust = load_trust(_trust(ledger))
    for eid, members in (
        (
            file_id,
            [
                "README.txt",
                "certificate.json",
                "proof.txt",
                "certificate.pdf",
                "evidence/合同_v2_.pdf",
            ],
        ),
        (hash_id, ["README.txt", "certificate.json", "proof.txt", "certificate.pdf"]),
    ):
        issued = issue_certificate(ledger, eid, "Notary Zhang")
        out = package_certificate(ledger, issued.certificate_id, tmp_path / f"{eid}.zip")
        assert not (tmp_path / f"{eid}.zip.tmp").exists()
        with PackageReader(out) as pkg:
            assert list(pkg.names()) == members
        report = verify_package(out, trust)
        assert report.valid, [(c.key, c.reason) for c in report.failed]
        buf = io.BytesIO()
        write_certificate_package(ledger, issued.certificate_id, buf)
        # Deterministic, but for the PDF's signature (its time, its timestamp).
        again = dict(_members(buf.getvalue()))
        first = dict(_members(out.read_bytes()))
        assert again.keys() == first.keys()
        assert all(again[n] == first[n] for n in first if n != "certificate.pdf")
        assert again["certificate.pdf"] != first["certificate.pdf"]


def test_revocation_and_trust_export(ledger: Ledger) -> None:
    n = create_account(ledger, "notary", "Notary Zhang")
    eid = _deposit_file(ledger)
    ledger.seal()
    issued = issue_certificate(ledger, eid, "Notary Zhang")
    with pytest.raises(InvalidInput, match="reason"):
        revoke_certificate(ledger, issued.certificate_id, "")
    with pytest.raises(NotFound):
        revoke_certificate(ledger, "f" * 64, "no such certificate")
    r = revoke_certificate(ledger, issued.certificate_id, "issued in error")
    rec = _record(ledger, r["index"])
    assert rec == {"type": "certificate.revoked", "body": {"certificate_id": issued.certificate_id}}
    row = certificate_row(ledger, issued.certificate_id)
    assert (row.revoked_index, row.revoked_reason) == (r["index"], "issued in error")
    with pytest.raises(Conflict, match="already revoked"):
        revoke_certificate(ledger, issued.certificate_id, "again")
    # The notary leaves: its key's validity ends at the key.revoked event.
    revoked = revoke_account(ledger, n.account_id)
    doc = trust_export(ledger)
    assert doc["logs"] == [{"origin": ledger.config.origin, "vkey": ledger.verifier_key.to_text()}]
    (entry,) = doc["notaries"]
    assert entry["name"] == "Notary Zhang" and entry["vkey"] == n.vkey
    key_revoked_time = ledger.store.entries(revoked["index"] + 1, revoked["index"] + 2)[0][2]
    assert entry["valid_until"] == key_revoked_time
    # A certificate issued while the key was valid still verifies its signature and period.
    cert = Certificate.from_json(issued.data)
    checks = {c.key: c for c in verify_certificate(cert, load_trust(json.dumps(doc).encode()))}
    assert checks["notary_signature"].ok and checks["notary_key_validity"].ok
    ledger.store.rebuild()
    assert certificate_row(ledger, issued.certificate_id).revoked_index == r["index"]


# ------------------------------------------------------------------ web captures


def _deposit_capture(ledger: Ledger) -> tuple[str, dict[str, bytes]]:
    """A capture deposit as ledger.capture makes one: artefacts in the blob store,
    the manifest (evidence-capture/v1) deposited as the evidence file."""
    from ledger.events import evidence_deposited
    from verifier.canonical import canonicalize

    files = {"page.wacz": b"PK wacz " * 300, "screenshot.png": b"\x89PNG shot " * 200}
    artefacts = []
    for (path, data), name in zip(files.items(), ("wacz", "screenshot"), strict=True):
        info = ledger.blobs.put_stream([data])
        artefacts.append(
            {
                "media_type": "application/octet-stream",
                "name": name,
                "path": path,
                "sha256": info.sha256,
                "size": info.size,
                "sm3": info.sm3,
            }
        )
    t = "2026-01-01T00:00:00.000000Z"
    manifest = canonicalize(
        {
            "artefacts": artefacts,
            "browser": {"name": "chromium"},
            "capture_id": "c1",
            "ended_at": t,
            "environment": {},
            "final_url": "https://example.com/",
            "format": "evidence-capture/v1",
            "http_status": 200,
            "limit_reached": False,
            "main_document": {},
            "page_title": "Example",
            "platform": {},
            "redirects": [],
            "requested_url": "https://example.com/",
            "requests": [],
            "settings": {},
            "started_at": t,
            "status": "complete",
        }
    )
    info = ledger.blobs.put_stream([manifest])
    draft = evidence_deposited(
        kind="capture",
        sha256=info.sha256,
        sm3=info.sm3,
        size=info.size,
        title="Example",
        file_name="capture-manifest.json",
        media_type="application/json",
    )
    ledger.append([draft])
    return draft.ref, files


def test_capture_package_holds_and_checks_every_artefact(ledger: Ledger, tmp_path: Path) -> None:
    import zipfile

    create_account(ledger, "notary", "Notary Zhang")
    eid, files = _deposit_capture(ledger)
    ledger.seal()
    assert ledger.blobs.exists(hashlib.sha256(files["page.wacz"]).hexdigest())
    issued = issue_certificate(ledger, eid, "Notary Zhang")
    out = package_certificate(ledger, issued.certificate_id, tmp_path / "capture.zip")
    trust = load_trust(_trust(ledger))
    with PackageReader(out) as pkg:
        assert list(pkg.names()) == [
            "README.txt",
            "certificate.json",
            "proof.txt",
            "certificate.pdf",
            "evidence/capture-manifest.json",
            "capture/page.wacz",
            "capture/screenshot.png",
        ]
    report = verify_package(out, trust)
    assert report.valid, [(c.key, c.reason) for c in report.failed]
    keys = [c.key for c in report.checks]
    assert keys.count("capture_artefact") == 2 and "capture_manifest" in keys
    # An artefact replaced by another file (CRC kept right): its own check fails.
    with zipfile.ZipFile(out) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
    from cert_helpers import canonical_zip

    cert = json.loads(members[1][1])
    swapped = [(n, b"tampered" if n == "capture/page.wacz" else d) for n, d in members]
    (tmp_path / "swapped.zip").write_bytes(canonical_zip(swapped, cert["issued_at"]))
    report = verify_package(tmp_path / "swapped.zip", trust)
    (bad,) = report.failed
    assert bad.key == "capture_artefact" and bad.subject == "capture/page.wacz"
    assert "the manifest says" in bad.reason
    # An artefact left out: reported missing, twice over.
    (tmp_path / "short.zip").write_bytes(canonical_zip(members[:-1], cert["issued_at"]))
    report = verify_package(tmp_path / "short.zip", trust)
    assert {c.key for c in report.failed} == {"package_members", "capture_artefact"}
    assert "missing capture/screenshot.png" in report.check("package_members").reason
