"""Render a certificate as a PDF/A-3b file (unsigned): one A4 page, bilingual.

The page is :func:`verifier.pdflayout.layout` drawn with Noto Sans CJK SC
(regular and bold subsets, CID-keyed CFF with ``ToUnicode``). The file is
PDF/A-3b by construction (ISO 19005-3): XMP metadata with the PDF/A
identification, an sRGB output intent, every font embedded, no encryption,
transparency, JavaScript or external content, and the sources as associated
files (``/AF``): ``certificate.json`` (the signed certificate, relationship
``Source``), ``proof.txt`` (its C2SP tlog-proof) and, for a web capture, the
deposited ``capture-manifest.json`` and the viewport screenshot shown.

Deterministic: the same certificate (and capture files and base URL) gives
the same bytes. Nothing depends on the clock; every date is the certificate's
issue time; the file identifier is derived from the certificate id.
"""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape

from ledger.errors import InvalidInput
from ledger.pdfcert.fonts import FontFace, Subset, load_face
from ledger.pdfcert.icc import SRGB_DESCRIPTION, srgb_profile
from ledger.pdfcert.writer import Name, PdfValue, PdfWriter, Raw, Ref, Stream, text_string
from verifier.capture import MANIFEST_FILE_NAME, CaptureManifest
from verifier.certificate import Certificate
from verifier.pdflayout import (
    BOLD,
    CERTIFICATE_FILE,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    PROOF_FILE,
    REGULAR,
    SCREENSHOT_FILE,
    THUMBNAIL,
    PdfView,
    Rect,
    certificate_url,
    content_stream,
    display_text,
    glyph_order,
    layout,
    parse_png,
)

__all__ = ["PRODUCER", "render_pdf"]

PRODUCER = "evidence-ledger"


class _FaceMetrics:
    """:class:`verifier.pdflayout.Metrics` answered from the font files."""

    def __init__(self, faces: dict[str, FontFace]) -> None:
        self.faces = faces

    def width(self, font: str, ch: str) -> int:
        return self.faces[font].width(ch)

    def covered(self, font: str, ch: str) -> bool:
        return self.faces[font].has(ch)


def _tag(chars: list[str], weight: str) -> str:
    """The six-letter subset tag (§9.6.4), derived from the glyphs it holds."""
    digest = hashlib.sha256((weight + "".join(chars)).encode("utf-8")).digest()
    return "".join(chr(ord("A") + b % 26) for b in digest[:6])


def _to_unicode(chars: tuple[str, ...]) -> bytes:
    """A ToUnicode CMap: code i + 1 is ``chars[i]`` (UTF-16BE)."""
    lines = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def",
        "/CMapType 2 def",
        "1 begincodespacerange",
        "<0000> <FFFF>",
        "endcodespacerange",
    ]
    for start in range(0, len(chars), 100):
        block = chars[start : start + 100]
        lines.append(f"{len(block)} beginbfchar")
        for i, ch in enumerate(block, start + 1):
            lines.append(f"<{i:04X}> <{ch.encode('utf-16-be').hex().upper()}>")
        lines.append("endbfchar")
    lines += [
        "endcmap",
        "CMapName currentdict /CMap defineresource pop",
        "end",
        "end",
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def _font(w: PdfWriter, sub: Subset) -> Ref:
    """A Type 0 font over a CIDFontType0 (CFF) descendant, Identity-H codes."""
    descriptor = w.add(
        {
            "Type": Name("FontDescriptor"),
            "FontName": Name(sub.postscript_name),
            "Flags": 4,
            "FontBBox": list(sub.bbox),
            "ItalicAngle": 0,
            "Ascent": sub.ascent,
            "Descent": sub.descent,
            "CapHeight": sub.cap_height,
            "StemV": 80,
            "FontFile3": w.add(Stream({"Subtype": Name("CIDFontType0C")}, sub.cff)),
        }
    )
    cid_font = w.add(
        {
            "Type": Name("Font"),
            "Subtype": Name("CIDFontType0"),
            "BaseFont": Name(sub.postscript_name),
            "CIDSystemInfo": {"Registry": "Adobe", "Ordering": "Identity", "Supplement": 0},
            "FontDescriptor": descriptor,
            "DW": 1000,
            "W": [1, list(sub.widths)],
        }
    )
    return w.add(
        {
            "Type": Name("Font"),
            "Subtype": Name("Type0"),
            "BaseFont": Name(sub.postscript_name),
            "Encoding": Name("Identity-H"),
            "DescendantFonts": [cid_font],
            "ToUnicode": w.add(Stream({}, _to_unicode(sub.chars))),
        }
    )


def _pdf_date(t: str) -> str:
    """``D:YYYYMMDDHHmmSSZ`` from a log time."""
    return f"D:{t[0:4]}{t[5:7]}{t[8:10]}{t[11:13]}{t[14:16]}{t[17:19]}Z"


def _attachment(
    w: PdfWriter, name: str, data: bytes, mime: str, relationship: str, desc: str, date: str
) -> Ref:
    """An embedded file and its file specification, as an associated file (PDF/A-3 §6.8)."""
    ef = w.add(
        Stream(
            {
                "Type": Name("EmbeddedFile"),
                "Subtype": Name(mime),
                "Params": {
                    "Size": len(data),
                    "ModDate": _pdf_date(date),
                    "CheckSum": Raw(b"<" + hashlib.md5(data).hexdigest().upper().encode() + b">"),  # noqa: S324 - the checksum PDF defines
                },
            },
            data,
        )
    )
    return w.add(
        {
            "Type": Name("Filespec"),
            "F": name,
            "UF": name,
            "Desc": desc,
            "AFRelationship": Name(relationship),
            "EF": {"F": ef, "UF": ef},
        }
    )


def _xmp(cert: Certificate) -> bytes:
    """XMP metadata (ISO 16684-1) with the PDF/A-3B identification (ISO 19005-3 §6.6)."""
    title = f"存证证书 Deposit Certificate {cert.evidence.deposit_no}"
    creator = display_text(cert.issuer_name, lambda ch: True)
    when = cert.issued_at
    doc_id = hashlib.sha256(b"pdf-document-id\n" + cert.certificate_id.encode()).hexdigest()
    uuid = f"{doc_id[0:8]}-{doc_id[8:12]}-{doc_id[12:16]}-{doc_id[16:20]}-{doc_id[20:32]}"
    xml = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about=""
 xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"
 xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:xmp="http://ns.adobe.com/xap/1.0/"
 xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
 xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
<pdfaid:part>3</pdfaid:part>
<pdfaid:conformance>B</pdfaid:conformance>
<dc:format>application/pdf</dc:format>
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li></rdf:Alt></dc:title>
<dc:creator><rdf:Seq><rdf:li>{escape(creator)}</rdf:li></rdf:Seq></dc:creator>
<dc:identifier>{cert.certificate_id}</dc:identifier>
<xmp:CreateDate>{when}</xmp:CreateDate>
<xmp:ModifyDate>{when}</xmp:ModifyDate>
<xmp:MetadataDate>{when}</xmp:MetadataDate>
<xmp:CreatorTool>{PRODUCER}</xmp:CreatorTool>
<xmpMM:DocumentID>uuid:{uuid}</xmpMM:DocumentID>
<pdf:Producer>{PRODUCER}</pdf:Producer>
</rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
    return xml.encode("utf-8")


def render_pdf(
    certificate: bytes,
    base_url: str,
    *,
    manifest: bytes | None = None,
    screenshot: bytes | None = None,
) -> bytes:
    """The unsigned PDF/A-3b rendering of a certificate (its exact JSON bytes).

    ``manifest`` is the deposited capture manifest of a web capture (its
    SHA-256 must be the certificate's), ``screenshot`` the viewport
    screenshot it lists (shown as a thumbnail when it is an 8-bit RGB PNG).
    """
    cert = Certificate.from_json(certificate)
    capture = None
    if manifest is not None:
        if cert.evidence.kind != "capture" or (
            hashlib.sha256(manifest).hexdigest() != cert.evidence.sha256
        ):
            raise InvalidInput("pdf: the manifest is not the deposited capture manifest")
        capture = CaptureManifest.from_json(manifest)
    png = parse_png(screenshot) if screenshot is not None and capture is not None else None
    if png is None:
        screenshot = None
    view = PdfView(
        certificate=cert,
        base_url=base_url,
        capture=capture,
        thumbnail=(png.width, png.height) if png is not None else None,
    )
    faces = {REGULAR: load_face("regular"), BOLD: load_face("bold")}
    page = layout(view, _FaceMetrics(faces))
    order = glyph_order(page)
    w = PdfWriter()
    catalog = w.reserve()
    pages = w.reserve()
    fonts = {
        key: _font(w, faces[key].subset(order[key], _tag(order[key], key)))
        for key in (REGULAR, BOLD)
    }
    resources: dict[str, PdfValue] = {"Font": dict(fonts)}
    if png is not None:
        image = w.add(
            Stream(
                {
                    "Type": Name("XObject"),
                    "Subtype": Name("Image"),
                    "Width": png.width,
                    "Height": png.height,
                    "ColorSpace": Name("DeviceRGB"),
                    "BitsPerComponent": 8,
                    "Filter": Name("FlateDecode"),
                    "DecodeParms": {
                        "Predictor": 15,
                        "Colors": 3,
                        "BitsPerComponent": 8,
                        "Columns": png.width,
                    },
                },
                png.idat,
                compress=False,
            )
        )
        resources["XObject"] = {THUMBNAIL: image}
    contents = w.add(Stream({}, content_stream(page, order)))
    url = certificate_url(base_url, cert.certificate_id)
    qr = [op for op in page if isinstance(op, Rect)]
    x0, y0 = min(r.x for r in qr), min(r.y for r in qr)
    x1, y1 = max(r.x + r.w for r in qr), max(r.y + r.h for r in qr)
    link = w.add(
        {
            "Type": Name("Annot"),
            "Subtype": Name("Link"),
            "Rect": [round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2)],
            "F": 4,
            "Border": [0, 0, 0],
            "A": {"Type": Name("Action"), "S": Name("URI"), "URI": Raw(b"(" + url.encode() + b")")},
        }
    )
    page_ref = w.add(
        {
            "Type": Name("Page"),
            "Parent": pages,
            "MediaBox": [0, 0, PAGE_WIDTH, PAGE_HEIGHT],
            "Resources": resources,
            "Contents": contents,
            "Annots": [link],
        }
    )
    w.set(pages, {"Type": Name("Pages"), "Kids": [page_ref], "Count": 1})
    when = cert.issued_at
    files = [
        (
            CERTIFICATE_FILE,
            _attachment(
                w,
                CERTIFICATE_FILE,
                cert.raw,
                "application/json",
                "Source",
                "The signed deposit certificate this page renders (evidence-certificate/v1)",
                when,
            ),
        ),
        (
            PROOF_FILE,
            _attachment(
                w,
                PROOF_FILE,
                cert.tlog_proof().to_text().encode("utf-8"),
                "text/plain",
                "Supplement",
                "The inclusion proof (c2sp.org/tlog-proof@v1)",
                when,
            ),
        ),
    ]
    if manifest is not None:
        files.append(
            (
                MANIFEST_FILE_NAME,
                _attachment(
                    w,
                    MANIFEST_FILE_NAME,
                    manifest,
                    "application/json",
                    "Supplement",
                    "The deposited capture manifest (evidence-capture/v1)",
                    when,
                ),
            )
        )
    if screenshot is not None:
        files.append(
            (
                SCREENSHOT_FILE,
                _attachment(
                    w,
                    SCREENSHOT_FILE,
                    screenshot,
                    "image/png",
                    "Supplement",
                    "The viewport screenshot of the capture, shown on the page",
                    when,
                ),
            )
        )
    files.sort(key=lambda f: f[0])
    icc = w.add(Stream({"N": 3}, srgb_profile()))
    metadata = w.add(
        Stream({"Type": Name("Metadata"), "Subtype": Name("XML")}, _xmp(cert), compress=False)
    )
    names: list[PdfValue] = []
    for name, ref in files:
        names += [text_string(name), ref]
    w.set(
        catalog,
        {
            "Type": Name("Catalog"),
            "Pages": pages,
            "Metadata": metadata,
            "Lang": "zh-CN",
            "PageMode": Name("UseAttachments"),
            "ViewerPreferences": {"DisplayDocTitle": True},
            "OutputIntents": [
                {
                    "Type": Name("OutputIntent"),
                    "S": Name("GTS_PDFA1"),
                    "OutputConditionIdentifier": SRGB_DESCRIPTION,
                    "Info": SRGB_DESCRIPTION,
                    "DestOutputProfile": icc,
                }
            ],
            "Names": {"EmbeddedFiles": {"Names": names}},
            "AF": [ref for _, ref in files],
        },
    )
    file_id = hashlib.sha256(b"pdf-file-id\n" + cert.raw).digest()[:16]
    return w.write(catalog, file_id)
