"""Adversarial table: every tampered input fails with its own reason, never
passes and never crashes.

Certificates edited in a way the notary signature would catch are re-signed
with the notary's real key (``resign``), so each row shows that the check it
targets fails on its own. Rows that are malformed input raise
``MalformedError`` (the CLI's exit status 2) with their own message; the
others produce an invalid report in which the named check failed.
"""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cert_helpers import (
    ORIGIN,
    World,
    b64,
    build_world,
    canonical_zip,
    central_entries,
    edit,
    member_data_offset,
    other_key,
    package_bytes,
    package_members,
    resign,
    unb64,
)
from unchecked import unchecked

from ledger.accounts import revoke_account
from ledger.certificates import revoke_certificate
from ledger.core import Ledger
from ledger.events import make_draft
from ledger.export import export
from ledger.services import OPERATOR, Services
from verifier.certificate import Certificate, verify_certificate
from verifier.checkpoint import Checkpoint
from verifier.cli import EXIT_INPUT, EXIT_INVALID, EXIT_VALID, main
from verifier.digest import FileDigest, digest_file
from verifier.errors import Error, MalformedError
from verifier.logaudit import audit_log
from verifier.logview import CERTIFICATE_EVENTS, certificate_status
from verifier.note import Note, NoteSignature, VerifierKey, parse_note
from verifier.package import verify_package
from verifier.report import Report
from verifier.trust import Trust, read_trust


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("adversarial"))


# ------------------------------------------------------------------ helpers


def _verify_cert(
    w: World, data: bytes, files: Sequence[FileDigest] = (), trust: Trust | None = None
) -> Report:
    cert = Certificate.from_json(data)
    checks = verify_certificate(cert, trust or read_trust(w.trust_path), files)
    return Report("certificate", "test", tuple(checks))


def _verify_pkg(w: World, data: bytes, trust: Trust | None = None) -> Report:
    path = w.write("case.zip", data)
    return verify_package(path, trust or read_trust(w.trust_path))


def _sign_note(text: str, name: str, key: Any) -> str:
    vk = VerifierKey.from_public_key(name, key.public_key().public_bytes_raw())
    sig = NoteSignature(name, vk.key_id, key.sign(text.encode()))
    return Note(text, (sig,)).to_text()


def _later_checkpoint(w: World) -> str:
    return (w.export_dir / "checkpoint").read_text("utf-8")


def _resigned(w: World, mutate: Callable[[dict[str, Any]], None]) -> bytes:
    return resign(w.file_cert, mutate, w.signer.sign)


def _file_digest(w: World) -> FileDigest:
    return digest_file(w.root / "contract.txt")


def _with_checkpoint(w: World, text: str) -> bytes:
    def mutate(o: dict[str, Any]) -> None:
        o["checkpoint"] = text

    return _resigned(w, mutate)


def _checkpoint_parts(w: World) -> tuple[Checkpoint, Note]:
    note = parse_note(json.loads(w.file_cert)["checkpoint"])
    return Checkpoint.from_text(note.text), note


# ------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[World], Report]
    check: str | None  # the failing check's key; None: malformed input
    reason: str


def _flip_evidence_in_package(w: World) -> Report:
    data = bytearray(w.file_package.read_bytes())
    name = "evidence/contract.txt"
    start = member_data_offset(bytes(data), name)
    data[start + 5] ^= 0x01
    size = len(dict(package_members(w.file_package.read_bytes()))[name])
    crc = zlib.crc32(bytes(data[start : start + size]))
    # Fix the CRC in both headers, so only the digest can notice.
    for pos, n in central_entries(bytes(data)):
        if n == name:
            struct.pack_into("<I", data, pos + 16, crc)
            (offset,) = struct.unpack_from("<I", data, pos + 42)
            struct.pack_into("<I", data, offset + 14, crc)
    return _verify_pkg(w, bytes(data))


def _flip_evidence_file(w: World) -> Report:
    content = bytearray((w.root / "contract.txt").read_bytes())
    content[0] ^= 0x01
    path = w.write("flipped.txt", bytes(content))
    return _verify_cert(w, w.file_cert, [digest_file(path)])


def _wrong_proof_hash(w: World) -> Report:
    def mutate(o: dict[str, Any]) -> None:
        h = bytearray(unb64(o["inclusion_proof"]["hashes"][0]))
        h[0] ^= 0x80
        o["inclusion_proof"]["hashes"][0] = b64(bytes(h))

    return _verify_cert(w, _resigned(w, mutate), [_file_digest(w)])


def _truncated_proof(w: World) -> Report:
    def mutate(o: dict[str, Any]) -> None:
        o["inclusion_proof"]["hashes"].pop()

    return _verify_cert(w, _resigned(w, mutate), [_file_digest(w)])


def _another_checkpoint(w: World) -> Report:
    return _verify_cert(w, _with_checkpoint(w, _later_checkpoint(w)), [_file_digest(w)])


def _another_checkpoint_and_size(w: World) -> Report:
    later = _later_checkpoint(w)

    def mutate(o: dict[str, Any]) -> None:
        o["checkpoint"] = later
        o["inclusion_proof"]["tree_size"] = Checkpoint.from_text(parse_note(later).text).size

    return _verify_cert(w, _resigned(w, mutate), [_file_digest(w)])


def _another_origin(w: World) -> Report:
    cp, _ = _checkpoint_parts(w)
    body = Checkpoint("other.test/log", cp.size, cp.root).to_text()
    return _verify_cert(
        w,
        _with_checkpoint(w, _sign_note(body, "other.test/log", other_key("other log"))),
        [_file_digest(w)],
    )


def _another_size(w: World) -> Report:
    cp, note = _checkpoint_parts(w)
    body = Checkpoint(cp.origin, cp.size + 1, cp.root).to_text()
    forged = Note(body, note.signatures).to_text()  # the log's signature, now over other text
    return _verify_cert(w, _with_checkpoint(w, forged), [_file_digest(w)])


def _forged_log_signature(w: World) -> Report:
    cp, _ = _checkpoint_parts(w)
    forged = _sign_note(cp.to_text(), ORIGIN, other_key("forger"))
    return _verify_cert(w, _with_checkpoint(w, forged), [_file_digest(w)])


def _garbage_log_signature(w: World) -> Report:
    cp, note = _checkpoint_parts(w)
    sig = note.signatures[0]
    bad = NoteSignature(sig.name, sig.key_id, bytes(64))
    return _verify_cert(w, _with_checkpoint(w, Note(cp.to_text(), (bad,)).to_text()), [])


def _missing_log_signature(w: World) -> Report:
    cp, _ = _checkpoint_parts(w)
    only_witness = _sign_note(cp.to_text(), "witness.example", other_key("a witness"))
    return _verify_cert(w, _with_checkpoint(w, only_witness), [_file_digest(w)])


def _index_at_size(w: World) -> Report:
    def mutate(o: dict[str, Any]) -> None:
        o["entry"]["index"] = o["inclusion_proof"]["tree_size"]

    return _verify_cert(w, _resigned(w, mutate), [_file_digest(w)])


def _commitment_does_not_open(w: World) -> Report:
    def mutate(o: dict[str, Any]) -> None:
        salt = bytearray(unb64(o["entry"]["salt"]))
        salt[0] ^= 0x01
        o["entry"]["salt"] = b64(bytes(salt))

    return _verify_cert(w, _resigned(w, mutate), [_file_digest(w)])


def _private_body_swapped(w: World) -> Report:
    # Another private body with a matching commitment cannot be made; so a
    # notary lying about the facts is caught by comparing them with the opening.
    def mutate(o: dict[str, Any]) -> None:
        o["evidence"]["title"] = "a different title"

    return _verify_cert(w, _resigned(w, mutate), [_file_digest(w)])


def _unknown_notary(w: World) -> Report:
    key = other_key("an impostor")
    vk = VerifierKey.from_public_key(
        f"{ORIGIN}/notary/impostor", key.public_key().public_bytes_raw()
    )

    def mutate(o: dict[str, Any]) -> None:
        o["issuer"]["vkey"] = vk.to_text()

    return _verify_cert(w, resign(w.file_cert, mutate, key.sign), [_file_digest(w)])


def _notary_not_yet_valid(w: World) -> Report:
    def change(doc: dict[str, Any]) -> None:
        doc["notaries"][0]["valid_from"] = "2999-01-01T00:00:00Z"

    trust = read_trust(w.trust_file("future.json", change))
    return _verify_cert(w, w.file_cert, [_file_digest(w)], trust)


def _notary_expired(w: World) -> Report:
    def change(doc: dict[str, Any]) -> None:
        doc["notaries"][0]["valid_from"] = "2000-01-01T00:00:00Z"
        doc["notaries"][0]["valid_until"] = "2001-01-01T00:00:00Z"

    trust = read_trust(w.trust_file("expired.json", change))
    return _verify_cert(w, w.file_cert, [_file_digest(w)], trust)


def _notary_renamed_in_certificate(w: World) -> Report:
    def mutate(o: dict[str, Any]) -> None:
        o["issuer"]["name"] = "Another Notary"

    return _verify_cert(w, _resigned(w, mutate), [_file_digest(w)])


def _bad_signature(w: World) -> Report:
    def mutate(o: dict[str, Any]) -> None:
        sig = bytearray(unb64(o["signature"]))
        sig[10] ^= 0x04
        o["signature"] = b64(bytes(sig))

    return _verify_cert(w, edit(w.file_cert, mutate), [_file_digest(w)])


def _edited_after_signing(w: World) -> Report:
    def mutate(o: dict[str, Any]) -> None:
        o["evidence"]["title"] = "合同 v3"

    return _verify_cert(w, edit(w.file_cert, mutate), [_file_digest(w)])


def _backdated_issue(w: World) -> Report:
    def mutate(o: dict[str, Any]) -> None:
        o["issued_at"] = "2001-01-01T00:00:00.000000Z"

    return _verify_cert(w, _resigned(w, mutate), [_file_digest(w)])


def _revoked(w: World) -> Report:
    home = w.root / "revoked-home"
    if not home.exists():
        shutil.copytree(w.home, home)
        with Ledger.open(home) as ledger:
            revoke_certificate(ledger, json.loads(w.file_cert)["certificate_id"], "issued in error")
            ledger.seal()
            export(ledger.store, w.root / "revoked-export", ledger.latest_checkpoint())
    trust = read_trust(w.trust_path)
    cert = Certificate.from_json(w.file_cert)

    def status(c: Certificate) -> Any:
        key = trust.log_keys(ORIGIN)[0]
        audit = audit_log(
            w.root / "revoked-export",
            key,
            collect_types=CERTIFICATE_EVENTS,
            roots_at={c.checkpoint_body.size},
        )
        return certificate_status(audit, c)

    assert status(cert).revoked is not None
    return verify_package(w.file_package, trust, log_status=status)


def _split_view(w: World) -> Report:
    """A log view under the same key whose history differs from the certificate's."""
    fork = w.root / "fork-home"
    if not fork.exists():
        Ledger.init(fork, origin=ORIGIN).close()
        shutil.copy2(w.home / "keys" / "log.key", fork / "keys" / "log.key")  # same log key
        with Ledger.open(fork) as forked:
            for i in range(8):
                Services(forked).deposits.deposit_hash(OPERATOR, f"{i:064x}")
            forked.seal()
            export(forked.store, w.root / "fork-export", forked.latest_checkpoint())
    trust = read_trust(w.trust_path)

    def status(c: Certificate) -> Any:
        audit = audit_log(
            w.root / "fork-export",
            trust.log_keys(ORIGIN)[0],
            collect_types=CERTIFICATE_EVENTS,
            roots_at={c.checkpoint_body.size},
        )
        return certificate_status(audit, c)

    return verify_package(w.file_package, trust, log_status=status)


def _issued_after_key_revocation(w: World) -> Report:
    """A stolen notary key used after its revocation: the trust file (pinned
    earlier) still lists it as open, but the log orders the events."""
    home = w.root / "stolen-key-home"
    data = resign(
        w.file_cert, lambda o: o.update(statement="issued with a revoked key"), w.signer.sign
    )
    cert = Certificate.from_json(data)
    if not home.exists():
        shutil.copytree(w.home, home)
        with Ledger.open(home) as ledger:
            revoke_account(ledger, w.notary.account_id)
            body = {
                "certificate_id": cert.certificate_id,
                "evidence_id": w.file_id,
                "account_id": w.notary.account_id,
            }
            draft = make_draft("certificate.issued", body, {"certificate": data.decode()})
            with unchecked("certificate.issued"):  # as a forger with the database would
                ledger.append([draft])
            ledger.seal()
            export(ledger.store, w.root / "stolen-key-export", ledger.latest_checkpoint())
    trust = read_trust(w.trust_path)

    def status(c: Certificate) -> Any:
        audit = audit_log(
            w.root / "stolen-key-export",
            trust.log_keys(ORIGIN)[0],
            collect_types=CERTIFICATE_EVENTS,
            roots_at={c.checkpoint_body.size},
        )
        return certificate_status(audit, c)

    path = w.write("stolen.zip", package_bytes(data, (w.root / "contract.txt").read_bytes()))
    return verify_package(path, trust, log_status=status)


# -- zip attacks ------------------------------------------------------------------


def _zipfile_package(w: World, members: list[tuple[str, bytes]], **kw: Any) -> bytes:
    path = w.root / "pyzip.zip"
    with zipfile.ZipFile(path, "w", **kw) as z:
        for name, data in members:
            z.writestr(name, data)
    return path.read_bytes()


def _pkg_members(w: World) -> list[tuple[str, bytes]]:
    return package_members(w.file_package.read_bytes())


def _evidence_member(members: list[tuple[str, bytes]]) -> int:
    return [n for n, _ in members].index("evidence/contract.txt")


def _issued_at(w: World) -> str:
    return str(json.loads(w.file_cert)["issued_at"])


def _path_traversal(w: World) -> Report:
    members = _pkg_members(w)
    i = _evidence_member(members)
    members[i] = ("../../evidence/contract.txt", members[i][1])
    return _verify_pkg(w, canonical_zip(members, _issued_at(w)))


def _absolute_path(w: World) -> Report:
    members = _pkg_members(w)
    i = _evidence_member(members)
    members[i] = ("/etc/cron.d/evidence", members[i][1])
    return _verify_pkg(w, _zipfile_package(w, members))


def _backslash_path(w: World) -> Report:
    members = _pkg_members(w)
    i = _evidence_member(members)
    members[i] = ("evidence\\..\\..\\x", members[i][1])
    return _verify_pkg(w, canonical_zip(members, _issued_at(w)))


def _duplicate_names(w: World) -> Report:
    members = _pkg_members(w)
    members.append(("certificate.json", members[1][1]))
    return _verify_pkg(w, canonical_zip(members, _issued_at(w)))


def _duplicate_names_ignoring_case(w: World) -> Report:
    members = _pkg_members(w)
    members.append(("Certificate.JSON", members[1][1]))
    return _verify_pkg(w, canonical_zip(members, _issued_at(w)))


def _zip_bomb(w: World) -> Report:
    members = [*_pkg_members(w)[:3], ("evidence/contract.txt", bytes(50 << 20))]
    data = _zipfile_package(w, members, compression=zipfile.ZIP_DEFLATED)
    assert len(data) < 1 << 20  # 50 MiB of zeros in well under 1 MiB
    return _verify_pkg(w, data)


def _overlapping_members(w: World) -> Report:
    data = bytearray(w.file_package.read_bytes())
    (pos, _), (pos2, _) = central_entries(bytes(data))[:2]
    (first,) = struct.unpack_from("<I", data, pos + 42)
    struct.pack_into("<I", data, pos2 + 42, first)  # the 2nd entry reuses the 1st's data
    return _verify_pkg(w, bytes(data))


def _claims_huge_size(w: World) -> Report:
    data = bytearray(w.file_package.read_bytes())
    pos, _ = central_entries(bytes(data))[3]
    struct.pack_into("<II", data, pos + 20, 0xFFFFFFF0, 0xFFFFFFF0)
    return _verify_pkg(w, bytes(data))


def _trailing_data(w: World) -> Report:
    return _verify_pkg(w, w.file_package.read_bytes() + b"appended")


def _prepended_data(w: World) -> Report:
    members = _pkg_members(w)
    data = canonical_zip(members, _issued_at(w))
    # Shift every offset by prepending: the directory no longer matches the layout.
    return _verify_pkg(w, b"MZ" + data)


def _crc_mismatch(w: World) -> Report:
    data = bytearray(w.file_package.read_bytes())
    data[member_data_offset(bytes(data), "certificate.json") + 3] ^= 0x01
    return _verify_pkg(w, bytes(data))


def _without(w: World, name: str) -> Report:
    members = [m for m in _pkg_members(w) if m[0] != name]
    return _verify_pkg(w, canonical_zip(members, _issued_at(w)))


def _extra_member(w: World) -> Report:
    members = [*_pkg_members(w), ("evidence/unrelated.exe", b"MZ...")]
    return _verify_pkg(w, canonical_zip(members, _issued_at(w)))


def _readme_edited(w: World) -> Report:
    members = _pkg_members(w)
    members[0] = ("README.txt", members[0][1].replace(b"offline", b"online!"))
    return _verify_pkg(w, canonical_zip(members, _issued_at(w)))


def _proof_file_edited(w: World) -> Report:
    members = _pkg_members(w)
    lines = members[2][1].split(b"\n")
    lines[2] = b"index 1"
    members[2] = ("proof.txt", b"\n".join(lines))
    return _verify_pkg(w, canonical_zip(members, _issued_at(w)))


def _package_with_tampered_certificate(w: World) -> Report:
    def mutate(o: dict[str, Any]) -> None:
        o["evidence"]["sha256"] = "00" * 32

    cert = edit(w.file_cert, mutate)
    members = _pkg_members(w)
    members[1] = ("certificate.json", cert)
    return _verify_pkg(w, canonical_zip(members, _issued_at(w)))


# -- encodings --------------------------------------------------------------------


def _non_utf8(w: World) -> Report:
    data = w.file_cert.replace("合同".encode(), b"\xff\xfe\xfd\xfc\xfb\xfa", 1)
    return _verify_cert(w, data)


def _pretty_printed(w: World) -> Report:
    return _verify_cert(w, json.dumps(json.loads(w.file_cert), indent=1).encode())


def _members_reordered(w: World) -> Report:
    obj = json.loads(w.file_cert)
    return _verify_cert(w, json.dumps(dict(reversed(obj.items())), separators=(",", ":")).encode())


def _duplicate_member(w: World) -> Report:
    return _verify_cert(w, w.file_cert[:-1] + b',"statement":"x"}')


def _unknown_member(w: World) -> Report:
    return _verify_cert(w, edit(w.file_cert, lambda o: o.update(zz="extra")))


def _noncanonical_base64(w: World) -> Report:
    def mutate(o: dict[str, Any]) -> None:
        # 64 bytes end in one character carrying 2 bits, then "==": set an unused bit.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        sig = o["signature"]
        o["signature"] = sig[:-3] + alphabet[alphabet.index(sig[-3]) | 1] + "=="

    return _verify_cert(w, edit(w.file_cert, mutate))


def _hash_cert_in_file_package(w: World) -> Report:
    members = _pkg_members(w)
    members[1] = ("certificate.json", w.hash_cert)
    return _verify_pkg(w, canonical_zip(members, _issued_at(w)))


CASES = [
    Case(
        "flipped byte in the evidence (package)",
        _flip_evidence_in_package,
        "evidence_file",
        "SHA-256 is",
    ),
    Case(
        "flipped byte in the evidence (file)",
        _flip_evidence_file,
        "evidence_file",
        "the certificate says",
    ),
    Case("wrong proof hash", _wrong_proof_hash, "inclusion", "computed root does not match"),
    Case("truncated proof", _truncated_proof, "inclusion", "proof has 1 hashes, expected 2"),
    Case(
        "proof against another checkpoint",
        _another_checkpoint,
        "inclusion",
        "the proof is for a tree of size",
    ),
    Case(
        "proof against another checkpoint and size",
        _another_checkpoint_and_size,
        "inclusion",
        "expected 3",
    ),
    Case(
        "checkpoint of another origin",
        _another_origin,
        "log_signature",
        "no trusted log key for origin 'other.test/log'",
    ),
    Case("checkpoint with another size", _another_size, "log_signature", "invalid signature"),
    Case(
        "forged log signature (other key)",
        _forged_log_signature,
        "log_signature",
        "no signature by a trusted key",
    ),
    Case(
        "forged log signature (garbage)",
        _garbage_log_signature,
        "log_signature",
        "invalid signature",
    ),
    Case(
        "missing log signature",
        _missing_log_signature,
        "log_signature",
        "signature lines: witness.example+",
    ),
    Case("index >= size", _index_at_size, "inclusion", "is not below tree size"),
    Case(
        "commitment that does not open",
        _commitment_does_not_open,
        "commitment",
        "is not the entry's commitment",
    ),
    Case(
        "facts that differ from the opening",
        _private_body_swapped,
        "evidence_facts",
        "title differ",
    ),
    Case("unknown notary", _unknown_notary, "notary_signature", "is not a trusted notary key"),
    Case(
        "notary before its validity",
        _notary_not_yet_valid,
        "notary_key_validity",
        "outside the key's validity [2999-01-01",
    ),
    Case(
        "notary after its validity",
        _notary_expired,
        "notary_key_validity",
        "2001-01-01T00:00:00.000000Z)",
    ),
    Case(
        "issuer renamed",
        _notary_renamed_in_certificate,
        "notary_signature",
        "the trust file lists this key for",
    ),
    Case("bad notary signature", _bad_signature, "notary_signature", "does not verify"),
    Case(
        "fields edited after signing (id)",
        _edited_after_signing,
        "certificate_id",
        "the certificate was edited",
    ),
    Case(
        "fields edited after signing (signature)",
        _edited_after_signing,
        "notary_signature",
        "does not verify",
    ),
    Case("backdated issue time", _backdated_issue, "notary_key_validity", "before the deposit"),
    Case(
        "revoked certificate", _revoked, "revocation", "REVOKED: certificate.revoked at log index"
    ),
    Case("log view with another history", _split_view, "revocation", "split view"),
    Case(
        "certificate recorded after its notary key was revoked",
        _issued_after_key_revocation,
        "issuance_logged",
        "after the issuer's key was revoked at index",
    ),
    Case("zip: path traversal", _path_traversal, None, "unsafe member name '../../evidence"),
    Case("zip: absolute path", _absolute_path, None, "absolute path"),
    Case("zip: backslash path", _backslash_path, None, "backslash"),
    Case(
        "zip: duplicate names", _duplicate_names, None, "duplicate member name 'certificate.json'"
    ),
    Case(
        "zip: duplicate names ignoring case",
        _duplicate_names_ignoring_case,
        None,
        "duplicate member name",
    ),
    Case("zip: bomb (deflate)", _zip_bomb, None, "is compressed (method 8)"),
    Case("zip: overlapping members", _overlapping_members, None, "overlaps the one before it"),
    Case("zip: member larger than the file", _claims_huge_size, None, "more than the file holds"),
    Case(
        "zip: trailing data", _trailing_data, None, "no end-of-central-directory record at the end"
    ),
    Case("zip: prepended data", _prepended_data, None, "central directory does not end where"),
    Case("zip: CRC mismatch", _crc_mismatch, None, "fails its CRC-32 check"),
    Case(
        "missing certificate.json",
        lambda w: _without(w, "certificate.json"),
        None,
        "no certificate.json",
    ),
    Case(
        "missing proof.txt",
        lambda w: _without(w, "proof.txt"),
        "proof_file",
        "proof.txt is missing",
    ),
    Case(
        "missing README.txt",
        lambda w: _without(w, "README.txt"),
        "package_members",
        "missing README.txt",
    ),
    Case(
        "missing evidence file",
        lambda w: _without(w, "evidence/contract.txt"),
        "evidence_file",
        "no evidence file given",
    ),
    Case(
        "unexpected member", _extra_member, "package_members", "unexpected evidence/unrelated.exe"
    ),
    Case("README edited", _readme_edited, "readme", "differs from the standard text"),
    Case("proof.txt edited", _proof_file_edited, "proof_file", "index differs"),
    Case(
        "certificate in the package edited",
        _package_with_tampered_certificate,
        "evidence_file",
        "the certificate says 0000",
    ),
    Case(
        "another certificate in the package",
        _hash_cert_in_file_package,
        "package_members",
        "unexpected evidence/contract.txt",
    ),
    Case("non-UTF-8 certificate", _non_utf8, None, "not valid UTF-8"),
    Case(
        "non-canonical JSON (whitespace)", _pretty_printed, None, "not in RFC 8785 canonical form"
    ),
    Case(
        "non-canonical JSON (member order)",
        _members_reordered,
        None,
        "not in RFC 8785 canonical form",
    ),
    Case("duplicate JSON member", _duplicate_member, None, "duplicate member 'statement'"),
    Case("unknown certificate member", _unknown_member, None, "unknown members ['zz']"),
    Case("non-canonical base64", _noncanonical_base64, None, "signature: non-canonical base64"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_tampered_input_fails_with_its_own_reason(world: World, case: Case) -> None:
    if case.check is None:
        with pytest.raises(MalformedError) as info:
            case.run(world)
        assert case.reason in str(info.value)
        return
    report = case.run(world)
    assert not report.valid
    failed = {c.key: c for c in report.failed}
    assert case.check in failed, [f"{c.key}: {c.reason}" for c in report.checks]
    assert case.reason in failed[case.check].reason, failed[case.check].reason
    assert failed[case.check].reason_zh  # a Chinese reason too


def test_the_untampered_inputs_are_valid(world: World) -> None:
    assert _verify_pkg(world, world.file_package.read_bytes()).valid
    assert _verify_pkg(world, world.hash_package.read_bytes()).valid
    assert _verify_cert(world, world.file_cert, [_file_digest(world)]).valid
    assert _verify_cert(world, world.hash_cert).valid


def test_a_package_built_with_tampered_inputs_is_refused_by_the_writer(world: World) -> None:
    with pytest.raises(MalformedError, match="is not the file its digest names"):
        package_bytes(world.file_cert, b"another file entirely")


# ------------------------------------------------------------------ through the CLI

CLI_CASES = [
    ("revoked certificate", EXIT_INVALID),
    ("zip: path traversal", EXIT_INPUT),
    ("zip: bomb (deflate)", EXIT_INPUT),
    ("bad notary signature", EXIT_INVALID),
    ("non-canonical JSON (whitespace)", EXIT_INPUT),
]


def _case_file(world: World, name: str) -> tuple[str, Path]:
    """The tampered input of a row as a file, and the command that checks it."""
    if name == "revoked certificate":
        _revoked(world)
        return "package", world.file_package
    if name.startswith("zip"):
        case = next(c for c in CASES if c.name == name)
        with pytest.raises(Error):
            case.run(world)
        return "package", world.root / "case.zip"
    if name == "bad notary signature":
        sig = bytearray(unb64(json.loads(world.file_cert)["signature"]))
        sig[10] ^= 0x04
        data = edit(world.file_cert, lambda o: o.update(signature=b64(bytes(sig))))
        return "certificate", world.write("badsig.json", data)
    data = json.dumps(json.loads(world.file_cert), indent=1).encode()
    return "certificate", world.write("pretty.json", data)


@pytest.mark.parametrize(("name", "status"), CLI_CASES)
def test_cli_exit_status_and_one_line_errors(
    world: World, name: str, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    command, path = _case_file(world, name)
    args = [command, str(path), "--trust", str(world.trust_path)]
    if command == "certificate":
        args += ["--evidence", str(world.root / "contract.txt")]
    if name == "revoked certificate":
        args += ["--log", str(world.root / "revoked-export")]
    code = main(args)
    out, err = capsys.readouterr()
    assert code == status, out + err
    if status == EXIT_INPUT:
        assert out == ""
        assert err.startswith("evidence-verify: error: ")
        assert len(err.splitlines()) == 1
    else:
        assert out.splitlines()[-1].startswith("INVALID")
        assert err == ""
    assert (
        main(["package", str(world.file_package), "--trust", str(world.trust_path)]) == EXIT_VALID
    )
    capsys.readouterr()
