"""Helpers for the certificate tests: a small real ledger, tampering, zips.

``build_world`` makes a SQLite ledger with a notary, a file deposit and a
hash-only deposit, seals, issues a certificate for each, writes their
packages, the trust file and a log export that records the issuance. Tests
tamper with copies of these artefacts. ``resign`` re-signs an edited
certificate with the notary's real key, so a test can show that a check
fails on its own, without help from the notary signature.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.accounts import CreatedAccount, create_account, find_account, notary_signer
from ledger.certificates import issue_certificate, package_certificate, trust_export
from ledger.core import Ledger
from ledger.export import export
from ledger.keys import NoteSigner
from ledger.services import OPERATOR, Services
from verifier.canonical import canonicalize, loads_canonical
from verifier.certificate import SIGNING_CONTEXT, Certificate
from verifier.package import _dos_time, _end_records, _Member, write_package

ORIGIN = "certs.test/log"
FILE_CONTENT = "合同 contract v2\n".encode() * 40
NOTARY = "Notary Zhang 张公证员"


@dataclass
class World:
    home: Path
    root: Path
    notary: CreatedAccount
    signer: NoteSigner
    file_id: str
    hash_id: str
    file_cert: bytes
    hash_cert: bytes
    file_package: Path
    hash_package: Path
    trust: dict[str, Any]
    trust_path: Path
    export_dir: Path
    log_vkey: str

    def write(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path

    def trust_file(self, name: str, edit: Callable[[dict[str, Any]], None]) -> Path:
        doc = json.loads(json.dumps(self.trust))
        edit(doc)
        return self.write(name, json.dumps(doc).encode())


def build_world(root: Path) -> World:
    home = root / "home"
    ledger = Ledger.init(home, origin=ORIGIN)
    try:
        notary = create_account(ledger, "notary", NOTARY)
        signer = notary_signer(ledger, find_account(ledger, notary.account_id))
        f = root / "contract.txt"
        f.write_bytes(FILE_CONTENT)
        with f.open("rb") as fh:
            file_receipt = Services(ledger).deposits.deposit_file(
                OPERATOR, fh, title="合同 v2", file_name="contract.txt", media_type="text/plain"
            )
        hash_receipt = Services(ledger).deposits.deposit_hash(
            OPERATOR, hashlib.sha256(b"trade secret").hexdigest(), title="secret"
        )
        ledger.seal()
        file_cert = issue_certificate(ledger, file_receipt.evidence_id, NOTARY).data
        hash_cert = issue_certificate(ledger, hash_receipt.evidence_id, notary.account_id).data
        ledger.seal()
        file_package = package_certificate(
            ledger, Certificate.from_json(file_cert).certificate_id, root / "file.zip"
        )
        hash_package = package_certificate(
            ledger, Certificate.from_json(hash_cert).certificate_id, root / "hash.zip"
        )
        trust = trust_export(ledger)
        trust_path = root / "trust.json"
        trust_path.write_text(json.dumps(trust, ensure_ascii=False), "utf-8")
        export_dir = root / "export"
        export(ledger.store, export_dir, ledger.latest_checkpoint())
        return World(
            home=home,
            root=root,
            notary=notary,
            signer=signer,
            file_id=file_receipt.evidence_id,
            hash_id=hash_receipt.evidence_id,
            file_cert=file_cert,
            hash_cert=hash_cert,
            file_package=file_package,
            hash_package=hash_package,
            trust=trust,
            trust_path=trust_path,
            export_dir=export_dir,
            log_vkey=ledger.verifier_key.to_text(),
        )
    finally:
        ledger.close()


# -- certificate editing -------------------------------------------------------


def edit(data: bytes, mutate: Callable[[dict[str, Any]], None]) -> bytes:
    """Edit a certificate's JSON and re-serialise it canonically, leaving id and
    signature as they were (an edit after signing)."""
    obj = loads_canonical(data)
    mutate(obj)
    return canonicalize(obj)


def resign(
    data: bytes, mutate: Callable[[dict[str, Any]], None], sign: Callable[[bytes], bytes]
) -> bytes:
    """Edit a certificate, then recompute its id and signature with ``sign``."""
    obj = loads_canonical(data)
    mutate(obj)
    obj.pop("signature")
    obj.pop("certificate_id")
    obj["certificate_id"] = hashlib.sha256(canonicalize(obj)).hexdigest()
    obj["signature"] = b64(sign(SIGNING_CONTEXT + canonicalize(obj)))
    return canonicalize(obj)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def package_bytes(cert: bytes, evidence: bytes | None) -> bytes:
    """A package for a (possibly tampered but parseable) certificate."""
    out = io.BytesIO()
    write_package(out, Certificate.from_json(cert), io.BytesIO(evidence) if evidence else None)
    return out.getvalue()


def other_key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


# -- zips ----------------------------------------------------------------------


def canonical_zip(members: list[tuple[str, bytes]], issued_at: str) -> bytes:
    """A zip in the package's canonical layout with arbitrary members (to build
    packages that are well-formed zips but miss or add members)."""
    t, d = _dos_time(issued_at)
    out = bytearray()
    entries = []
    for name, data in members:
        m = _Member(name, len(data), zlib.crc32(data), len(out), t, d)
        out += m.local_header() + data
        entries.append(m)
    central = b"".join(m.central_header() for m in entries)
    cd_offset = len(out)
    out += central + _end_records(len(entries), cd_offset, len(central))
    return bytes(out)


def package_members(data: bytes) -> list[tuple[str, bytes]]:
    """The members of a canonical package, in order (read with zipfile)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def central_entries(data: bytes) -> list[tuple[int, str]]:
    """(position, name) of each central directory entry of a classic zip."""
    cd_size, cd_offset = struct.unpack_from("<II", data, len(data) - 22 + 12)
    out = []
    pos = cd_offset
    while pos < cd_offset + cd_size:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        out.append((pos, data[pos + 46 : pos + 46 + name_len].decode()))
        pos += 46 + name_len + extra_len + comment_len
    return out


def member_data_offset(data: bytes, name: str) -> int:
    """Where a member's data starts (after its local header)."""
    for pos, n in central_entries(data):
        if n == name:
            (offset,) = struct.unpack_from("<I", data, pos + 42)
            name_len, extra_len = struct.unpack_from("<HH", data, offset + 26)
            return offset + 30 + name_len + extra_len
    raise KeyError(name)
