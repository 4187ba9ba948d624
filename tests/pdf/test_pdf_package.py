"""The evidence package holds certificate.pdf and ``evidence-verify package`` checks it."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

from pdf_support import PdfWorld, ev

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "certificates"))

from cert_helpers import canonical_zip

from ledger.certificates import package_certificate
from verifier.package import verify_package
from verifier.trust import read_trust


def _members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def test_package_holds_a_pdf_that_is_checked(world: PdfWorld, tmp_path: Path) -> None:
    cid = world.cid(world.file_cert)
    pkg = package_certificate(world.ledger, cid, tmp_path / "p.zip")
    members = _members(pkg)
    names = [n for n, _ in members]
    assert names == [
        "README.txt",
        "certificate.json",
        "proof.txt",
        "certificate.pdf",
        "evidence/contract.txt",
    ]
    readme = dict(members)["README.txt"].decode()
    assert "certificate.pdf" in readme
    trust = read_trust(world.trust_path)
    report = verify_package(pkg, trust)
    assert report.valid, [(c.key, c.reason) for c in report.failed]
    keys = [c.key for c in report.checks]
    for key in ("pdf_signature", "pdf_signer", "pdf_page", "pdf_certificate"):
        assert key in keys
    p = ev("package", pkg, "--trust", world.trust_path)
    assert p.returncode == 0, p.stdout + p.stderr
    issued = dict(members)["certificate.json"]
    when = issued.split(b'"issued_at":"')[1].split(b'"')[0].decode()
    # Another certificate's PDF in the package: refused by its own check.
    other = [
        (n, world.capture_pdf.read_bytes() if n == "certificate.pdf" else d) for n, d in members
    ]
    (tmp_path / "other.zip").write_bytes(canonical_zip(other, when))
    failed = {c.key: c.reason for c in verify_package(tmp_path / "other.zip", trust).failed}
    assert set(failed) == {"pdf_certificate"}, failed
    # One byte of the PDF changed (the zip's CRC made right): the signature fails.
    pdf = bytearray(dict(members)["certificate.pdf"])
    pdf[len(pdf) // 3] ^= 1
    changed = [(n, bytes(pdf) if n == "certificate.pdf" else d) for n, d in members]
    (tmp_path / "changed.zip").write_bytes(canonical_zip(changed, when))
    report = verify_package(tmp_path / "changed.zip", trust)
    assert not report.valid
    assert {c.key for c in report.failed} & {"pdf_signature", "pdf_certificate"}


def test_packages_without_a_pdf_still_verify(world: PdfWorld, tmp_path: Path) -> None:
    from verifier.certificate import Certificate
    from verifier.package import write_package

    buf = io.BytesIO()
    write_package(buf, Certificate.from_json(world.file_cert), world.evidence.open("rb"))
    (tmp_path / "old.zip").write_bytes(buf.getvalue())
    report = verify_package(tmp_path / "old.zip", read_trust(world.trust_path))
    assert report.valid and not any(c.key.startswith("pdf_") for c in report.checks)
