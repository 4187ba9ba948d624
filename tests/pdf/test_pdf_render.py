"""The rendering: deterministic PDF/A-3b bytes, safe text, a page that fits, read
by other people's tools (poppler, qpdf, zbar)."""

from __future__ import annotations

import hashlib
import re

import pytest
from pdf_support import BIDI_TITLE, PdfWorld, png_rgb, run

from ledger.pdfcert.fonts import load_face
from ledger.pdfcert.render import render_pdf
from verifier.certificate import Certificate
from verifier.pdflayout import (
    BOLD,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    REGULAR,
    Image,
    PdfView,
    Rect,
    Text,
    display_text,
    layout,
    parse_png,
)

BASE = "https://evidence.example"


class _Metrics:
    def __init__(self) -> None:
        self.faces = {REGULAR: load_face("regular"), BOLD: load_face("bold")}

    def width(self, font: str, ch: str) -> int:
        return self.faces[font].width(ch)

    def covered(self, font: str, ch: str) -> bool:
        return self.faces[font].has(ch)


def test_same_json_gives_the_same_bytes(world: PdfWorld) -> None:
    a = render_pdf(world.file_cert, BASE)
    b = render_pdf(world.file_cert, BASE)
    assert a == b
    assert render_pdf(world.file_cert, BASE + "/console") != a  # the base URL is shown
    # The signed file starts with a rendering (an incremental update follows).
    cid = world.cid(world.file_cert)
    signed = world.file_pdf.read_bytes()
    assert signed.startswith(render_pdf(world.file_cert, world.ledger.config.base_url))
    assert f"/c/{cid}".encode() in signed


def test_pdfa_parts_are_there(world: PdfWorld) -> None:
    data = render_pdf(world.file_cert, BASE)
    assert b"<pdfaid:part>3</pdfaid:part>" in data and b"<pdfaid:conformance>B" in data
    assert b"/GTS_PDFA1" in data and b"/DestOutputProfile" in data
    assert b"/AFRelationship /Source" in data and b"/AFRelationship /Supplement" in data
    assert b"/Encrypt" not in data and b"/JavaScript" not in data
    assert data.startswith(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    # Signing keeps it a PDF 1.7 file (PDF/A-3): no PDF 2.0 version or extension.
    signed = world.file_pdf.read_bytes()
    assert b"/Version /2.0" not in signed and b"/ISO_" not in signed
    assert b"/ESIC" in signed  # the ETSI PAdES extension
    out = run("qpdf", "--check", world.file_pdf)
    assert out.returncode == 0 and "No syntax or stream encoding errors" in out.stdout
    attached = run("pdfdetach", "-list", world.file_pdf).stdout
    assert "certificate.json" in attached and "proof.txt" in attached
    saved = world.root / "attached.json"
    run("pdfdetach", "-savefile", "certificate.json", "-o", saved, world.file_pdf, check=True)
    assert saved.read_bytes() == world.file_cert


def test_every_font_is_embedded_with_unicode(world: PdfWorld) -> None:
    for pdf in (world.file_pdf, world.long_pdf, world.capture_pdf):
        lines = run("pdffonts", pdf).stdout.splitlines()[2:]
        assert len(lines) == 2
        for line in lines:
            emb, sub, uni = line.split()[-5:-2]
            assert (emb, sub, uni) == ("yes", "yes", "yes"), line


def test_pdftotext_yields_the_facts(world: PdfWorld) -> None:
    cert = Certificate.from_json(world.file_cert)
    text = run("pdftotext", "-layout", world.file_pdf, "-").stdout
    assert "存证证书" in text and "Deposit Certificate" in text
    assert cert.evidence.deposit_no in text
    assert cert.evidence.sha256 in text and cert.evidence.sm3 is not None
    assert cert.evidence.sm3 in text and cert.certificate_id in text
    # The bidi override and the zero-width space are shown, never applied.
    assert BIDI_TITLE.startswith("合同 v3 ") and "<U+202E>gnp.exe<U+200B>" in text
    assert "\u202e" not in text and "\u200b" not in text


def test_qr_code_opens_the_certificate_page(world: PdfWorld) -> None:
    png = world.root / "qr"
    run("pdftoppm", "-png", "-r", "150", world.file_pdf, png, check=True)
    out = run("zbarimg", "-q", "--raw", f"{png}-1.png")
    base = world.ledger.config.base_url
    assert out.stdout.strip() == f"{base}/c/{world.cid(world.file_cert)}"


def test_display_text_escapes_what_must_not_be_drawn() -> None:
    def covered(ch: str) -> bool:
        return ch != "\U0002a700"

    assert display_text("a\u202eb", covered) == "a<U+202E>b"
    assert display_text("x\u0000\ttab\n", covered) == "x<U+0000><U+0009>tab<U+000A>"
    assert display_text("e\u0301", covered) == "e<U+0301>"
    assert display_text("全角\u3000空格 ok", covered) == "全角\u3000空格 ok"
    assert display_text("\u00a0\ue000\U0002a700", covered) == "<U+00A0><U+E000><U+2A700>"


@pytest.mark.parametrize("which", ["file", "long", "capture"])
def test_nothing_overlaps_or_is_cut(world: PdfWorld, which: str) -> None:
    cert_bytes = getattr(world, f"{which}_cert")
    cert = Certificate.from_json(cert_bytes)
    manifest = thumb = None
    if which == "capture":
        from verifier.capture import CaptureManifest

        with world.ledger.blobs.open(cert.evidence.sha256) as f:
            manifest = CaptureManifest.from_json(f.read())
        thumb = (320, 200)
    metrics = _Metrics()
    page = layout(PdfView(cert, BASE, manifest, thumb), metrics)
    boxes = []
    for op in page:
        if isinstance(op, Text):
            w = sum(metrics.width(op.font, c) for c in op.text) * op.size / 1000
            box = (op.x, op.y - 0.25 * op.size, op.x + w, op.y + 0.9 * op.size)
        elif isinstance(op, Image | Rect):
            box = (op.x, op.y, op.x + op.w, op.y + op.h)
        else:
            continue
        assert box[0] >= 30 and box[2] <= PAGE_WIDTH - 30, (op, box)
        assert box[1] >= 25 and box[3] <= PAGE_HEIGHT - 30, (op, box)
        if not isinstance(op, Rect):  # QR modules touch each other by design
            boxes.append((box, op))
    for i, (a, op_a) in enumerate(boxes):
        for b, op_b in boxes[i + 1 :]:
            overlap = a[0] < b[2] - 0.01 and b[0] < a[2] - 0.01 and a[1] < b[3] - 0.01
            assert not (overlap and b[1] < a[3] - 0.01), (op_a, op_b)
    if which == "long":
        shown = "\n".join(op.text for op in page if isinstance(op, Text))
        assert "…" in shown and "full text in the attached certificate.json" in shown


def test_pages_look_right(world: PdfWorld) -> None:
    # Rasterised as a reader sees them; the images are checked for being non-blank.
    for pdf in (world.file_pdf, world.long_pdf, world.capture_pdf):
        out = world.root / pdf.stem
        run("pdftoppm", "-png", "-r", "80", pdf, out, check=True)
        data = (world.root / f"{pdf.stem}-1.png").read_bytes()
        assert len(data) > 20_000
    assert not (world.root / "file-2.png").exists()  # one page


def test_capture_pdf_shows_url_time_and_thumbnail(world: PdfWorld) -> None:
    text = run("pdftotext", "-layout", world.capture_pdf, "-").stdout
    assert "https://example.org/page" in text and "<U+202E>q=1" in text
    assert "视口截图 Viewport screenshot" in text
    assert "网页取证" in text and "北京时间" in text
    images = run("pdfimages", "-list", world.capture_pdf).stdout.splitlines()[2:]
    assert len(images) == 1 and images[0].split()[3:5] == ["320", "200"]
    listed = run("pdfdetach", "-list", world.capture_pdf).stdout
    assert "capture-manifest.json" in listed and "screenshot-viewport.png" in listed


def test_png_thumbnail_reuses_the_compressed_pixels() -> None:
    png = png_rgb(40, 30)
    parsed = parse_png(png)
    assert parsed is not None and (parsed.width, parsed.height) == (40, 30)
    rgba = png.replace(b"\x08\x02\x00\x00\x00", b"\x08\x06\x00\x00\x00", 1)
    assert parse_png(rgba) is None  # RGBA: no thumbnail rather than wrong colours
    assert parse_png(b"GIF89a") is None


def test_size_within_budget(world: PdfWorld) -> None:
    assert world.file_pdf.stat().st_size <= 300 * 1024
    assert world.long_pdf.stat().st_size <= 300 * 1024


def test_a_foreign_manifest_is_refused(world: PdfWorld) -> None:
    from ledger.errors import InvalidInput

    with pytest.raises(InvalidInput, match="not the deposited capture manifest"):
        render_pdf(world.capture_cert, BASE, manifest=b"{}")


def test_font_subset_is_small_and_exact(world: PdfWorld) -> None:
    face = load_face("regular")
    sub = face.subset(list("存证A"), "ABCDEF")
    assert sub.chars == ("存", "证", "A") and len(sub.widths) == 3
    assert sub.cff[:4] == b"\x01\x00\x04\x04" and len(sub.cff) < 4000
    assert re.fullmatch(r"ABCDEF\+\S+", sub.postscript_name)
    assert (
        hashlib.sha256(sub.cff).digest()
        == hashlib.sha256(face.subset(list("存证A"), "ABCDEF").cff).digest()
    )


def test_srgb_profile_is_a_well_formed_icc_v2_profile() -> None:
    import struct

    from ledger.pdfcert.icc import srgb_profile

    icc = srgb_profile()
    assert struct.unpack(">I", icc[:4])[0] == len(icc)
    assert icc[8:10] == b"\x02\x10" and icc[12:24] == b"mntrRGB XYZ " and icc[36:40] == b"acsp"
    (count,) = struct.unpack(">I", icc[128:132])
    tags = {}
    for i in range(count):
        sig, off, size = struct.unpack(">4sII", icc[132 + 12 * i : 144 + 12 * i])
        assert off % 4 == 0 and off + size <= len(icc)
        tags[sig] = icc[off : off + size]
    assert set(tags) == {
        b"desc",
        b"cprt",
        b"wtpt",
        b"rXYZ",
        b"gXYZ",
        b"bXYZ",
        b"rTRC",
        b"gTRC",
        b"bTRC",
    }
    curve = tags[b"rTRC"]
    (n,) = struct.unpack(">I", curve[8:12])
    values = struct.unpack(f">{n}H", curve[12 : 12 + 2 * n])
    assert values[0] == 0 and values[-1] == 65535 and list(values) == sorted(values)
    # The primaries add up to the D50 white point (within rounding).
    xyz = [struct.unpack(">3i", tags[t][8:20]) for t in (b"rXYZ", b"gXYZ", b"bXYZ")]
    white = struct.unpack(">3i", tags[b"wtpt"][8:20])
    assert all(abs(sum(c[i] for c in xyz) - white[i]) < 40 for i in range(3))
