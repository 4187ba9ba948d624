"""``evidence-verify pdf`` and poppler's ``pdfsig`` on real and tampered PDFs.

Each attack is refused with its own reason: one changed byte (the signed
digest), an incremental update appended after the signature (a shadow attack
on what the page shows), a swapped embedded certificate.json (after signing,
and before signing by the notary), a PDF signed by a certificate outside the
trust file, a trust file without notary CA roots; a revoked certificate is
reported as revoked when a log view is given.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from pdf_support import PdfWorld, ev, pdfsig

from ledger.certificates import revoke_certificate
from ledger.export import export
from ledger.pdfcert.render import render_pdf
from ledger.pdfcert.sign import sign_pdf
from ledger.pdfcert.x509 import issue_notary_certificate, load_notary_credential, local_crl
from verifier.cli import EXIT_INPUT, EXIT_INVALID, EXIT_VALID, main
from verifier.errors import MalformedError
from verifier.pdf import verify_pdf
from verifier.report import Report
from verifier.trust import load_trust, read_trust


def _verify(world: PdfWorld, data: bytes, trust: dict[str, Any] | None = None) -> Report:
    t = load_trust(json.dumps(trust or world.trust).encode())
    from verifier.digest import digest_file

    return verify_pdf(data, t, [digest_file(world.evidence)])


def _failed(report: Report) -> dict[str, str]:
    return {c.key: c.reason for c in report.failed}


def _credential(world: PdfWorld) -> Any:
    cred = load_notary_credential(world.home, world.notary.account_id)
    assert cred is not None
    return cred


def _incremental(data: bytes, edit: Any) -> bytes:
    """Apply ``edit(writer)`` as an incremental update with pyHanko (an attacker's tool)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    w = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    edit(w)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def _replace_page_text(w: Any) -> None:
    """Shadow attack: the page's content replaced by a stream that says something else."""
    from pyhanko.pdf_utils import generic

    page = w.root["/Pages"]["/Kids"][0]
    old = page["/Contents"].data
    new = old.replace(b"0 0 0 rg BT /F2 11", b"1 0 0 rg BT /F2 15")
    stream = generic.StreamObject(stream_data=new)
    page["/Contents"] = w.add_object(stream)
    w.update_container(page)


def _swap_attachment(other: bytes) -> Any:
    def edit(w: Any) -> None:
        from pyhanko.pdf_utils import generic

        names = w.root["/Names"]["/EmbeddedFiles"]["/Names"]
        for i in range(0, len(names), 2):
            if str(names[i]) == "certificate.json":
                spec = names[i + 1]
                ef = generic.StreamObject(
                    {generic.NameObject("/Type"): generic.NameObject("/EmbeddedFile")},
                    stream_data=other,
                )
                ref = w.add_object(ef)
                spec["/EF"] = generic.DictionaryObject(
                    {generic.NameObject("/F"): ref, generic.NameObject("/UF"): ref}
                )
                w.update_container(spec)

    return edit


# -- a good PDF --------------------------------------------------------------------


def test_a_good_pdf_passes_everywhere(world: PdfWorld, capsys: pytest.CaptureFixture[str]) -> None:
    report = _verify(world, world.file_pdf.read_bytes())
    assert report.valid, _failed(report)
    statuses = {c.key: c.status for c in report.checks}
    for key in ("pdf_signature", "pdf_signer", "pdf_updates", "pdf_attachments", "pdf_page"):
        assert statuses[key] == "passed", key
    assert statuses["pdf_timestamp"] == "not_applicable"  # no TSA in this ledger
    assert statuses["notary_signature"] == "passed"  # the JSON's own checks ran
    out = pdfsig(world, world.file_pdf)
    assert "Signature is Valid" in out and "Certificate is Trusted" in out
    assert "Total document signed" in out
    # The CLI: exit 0, JSON and Chinese reports.
    args = ["pdf", str(world.file_pdf), "--trust", str(world.trust_path)]
    assert main([*args, "--evidence", str(world.evidence), "--json"]) == EXIT_VALID
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True
    assert main([*args, "--evidence", str(world.evidence), "--lang", "zh"]) == EXIT_VALID
    assert "页面内容与证书一致" in capsys.readouterr().out


def test_capture_and_long_pdfs_pass(world: PdfWorld) -> None:
    for pdf in (world.capture_pdf, world.long_pdf):
        report = verify_pdf(pdf, read_trust(world.trust_path))
        bad = _failed(report)
        # A hash-only deposit has no file; a capture's deposited file, its
        # manifest, is attached to the PDF: nothing fails without --evidence.
        assert not bad, bad
    report = verify_pdf(world.capture_pdf, read_trust(world.trust_path))
    assert "the thumbnail" in report.check("pdf_page").reason


def test_as_a_real_process(world: PdfWorld) -> None:
    p = ev("pdf", world.file_pdf, "--trust", world.trust_path, "--evidence", world.evidence)
    assert p.returncode == EXIT_VALID, p.stdout + p.stderr
    assert p.stderr == ""  # no library warnings or logs on the terminal


# -- attacks ---------------------------------------------------------------------------


def test_one_changed_byte(world: PdfWorld) -> None:
    data = bytearray(world.file_pdf.read_bytes())
    font = data.index(b"/Subtype /CIDFontType0C")
    pos = data.index(b"stream\n", font) + 200
    data[pos] ^= 0x01
    bad = world.write("byte.pdf", bytes(data))
    report = _verify(world, bytes(data))
    assert "the signed bytes were changed" in _failed(report)["pdf_signature"]
    assert "Digest Mismatch" in pdfsig(world, bad)
    assert main(["pdf", str(bad), "--trust", str(world.trust_path)]) == EXIT_INVALID


def test_appended_incremental_update(world: PdfWorld) -> None:
    data = _incremental(world.file_pdf.read_bytes(), _replace_page_text)
    bad = world.write("shadow.pdf", data)
    report = _verify(world, data)
    failed = _failed(report)
    assert set(failed) == {"pdf_updates"}, failed
    assert "appended after the signature" in failed["pdf_updates"]
    out = pdfsig(world, bad)
    assert "Not total document signed" in out


def test_swapped_json_after_signing(world: PdfWorld) -> None:
    data = _incremental(world.file_pdf.read_bytes(), _swap_attachment(world.long_cert))
    report = _verify(world, data)
    failed = _failed(report)
    assert "replaced after signing: certificate.json" in failed["pdf_attachments"]
    assert "pdf_updates" in failed


def test_swapped_json_signed_by_the_notary(world: PdfWorld) -> None:
    # The notary's own key signs a PDF whose page is one certificate and whose
    # attachment is another: the page check and the proof check catch it.
    base = world.ledger.config.base_url
    unsigned = _incremental(render_pdf(world.file_cert, base), _swap_attachment(world.long_cert))
    signed = sign_pdf(unsigned, _credential(world))
    failed = _failed(_verify(world, signed))
    assert "pdf_signature" not in failed and "pdf_signer" not in failed
    assert "not the /c/ page of this certificate" in failed["pdf_page"]
    assert "proof.txt is not the certificate's proof" in failed["pdf_attachments"]


def _swap_deposit_number_glyphs(w: Any) -> None:
    """The deposit number drawn with its first two glyphs swapped ("LE-..." for "EL-...")."""
    import re

    from pyhanko.pdf_utils import generic

    page = w.root["/Pages"]["/Kids"][0]
    old = page["/Contents"].data

    def swap(m: re.Match[bytes]) -> bytes:
        codes = m.group(2)
        return m.group(1) + codes[4:8] + codes[0:4] + codes[8:] + b"> Tj"

    new = re.sub(rb"(/F2 11 Tf [^<]*<)([0-9A-F]+)> Tj", swap, old, count=1)
    assert new != old
    page["/Contents"] = w.add_object(generic.StreamObject(stream_data=new))
    w.update_container(page)


def test_page_that_lies_signed_by_the_notary(world: PdfWorld) -> None:
    # A rendering whose text differs from the JSON, signed with the notary's key.
    unsigned = render_pdf(world.file_cert, world.ledger.config.base_url)
    lying = _incremental(unsigned, _swap_deposit_number_glyphs)
    signed = sign_pdf(lying, _credential(world))
    failed = _failed(_verify(world, signed))
    assert set(failed) == {"pdf_page"}, failed
    assert "shows 'LE-" in failed["pdf_page"] and "expected 'EL-" in failed["pdf_page"]


def test_signed_by_a_certificate_outside_the_trust_file(world: PdfWorld, tmp_path: Path) -> None:
    stranger = issue_notary_certificate(tmp_path / "other", "other.test/log", "x", "Notary Zhang")
    crl = local_crl(tmp_path / "other", "other.test/log", [])
    unsigned = render_pdf(world.file_cert, world.ledger.config.base_url)
    signed = sign_pdf(unsigned, stranger, crls=[crl])
    bad = world.write("stranger.pdf", signed)
    failed = _failed(_verify(world, signed))
    assert set(failed) == {"pdf_signer"}, failed
    assert "does not chain to a notary CA root of the trust file" in failed["pdf_signer"]
    out = pdfsig(world, bad)
    assert "Signature is Valid" in out and "Certificate is Trusted" not in out
    assert "isn't Trusted" in out or "Unknown" in out


def test_trust_file_without_notary_roots_fails_closed(world: PdfWorld) -> None:
    old = {k: v for k, v in world.trust.items() if k != "notary_ca_roots"}
    load_trust(json.dumps(old).encode())  # an older trust file still parses
    failed = _failed(_verify(world, world.file_pdf.read_bytes(), old))
    assert set(failed) == {"pdf_signer"}
    assert "lists no notary CA roots" in failed["pdf_signer"]


def test_unsigned_and_unreadable_pdfs(world: PdfWorld, capsys: pytest.CaptureFixture[str]) -> None:
    unsigned = render_pdf(world.file_cert, world.ledger.config.base_url)
    failed = _failed(_verify(world, unsigned))
    assert "no signature" in failed["pdf_signature"]
    for name, data in (
        ("not.pdf", b"hello"),
        ("truncated.pdf", world.file_pdf.read_bytes()[:5000]),
        ("empty.pdf", b""),
    ):
        path = world.write(name, data)
        assert main(["pdf", str(path), "--trust", str(world.trust_path)]) == EXIT_INPUT
        assert "evidence-verify: error: pdf" in capsys.readouterr().err
        with pytest.raises(MalformedError):
            _verify(world, data)


def test_revoked_certificate_is_reported_with_a_log_view(world: PdfWorld, tmp_path: Path) -> None:
    revoke_certificate(world.ledger, world.cid(world.long_cert), "issued in error")
    world.ledger.seal()
    # The PDF can still be produced for the record.
    from ledger.pdfcert.service import certificate_pdf

    pdf = world.write("revoked.pdf", certificate_pdf(world.ledger, world.cid(world.long_cert)))
    export(world.ledger.store, tmp_path / "export", world.ledger.latest_checkpoint())
    p = ev("pdf", pdf, "--trust", world.trust_path, "--log", tmp_path / "export", "--json")
    assert p.returncode == EXIT_INVALID, p.stderr
    checks = {c["key"]: c for c in json.loads(p.stdout)["checks"]}
    assert checks["revocation"]["status"] == "failed"
    assert "REVOKED" in checks["revocation"]["reason"]
    assert checks["pdf_signature"]["status"] == "passed"
