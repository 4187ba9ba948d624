"""Verify a PDF certificate (存证证书 PDF) offline: signature, attachments, page text.

A certificate PDF is the rendering of a signed JSON certificate
(:mod:`verifier.pdflayout`), signed by the notary office with PAdES. Nothing
in it is believed because the PDF says so: :func:`verify_pdf` checks, in
report order,

(1) ``pdf_signature``: there is exactly one signature, and its CMS signature
    and the digest of the byte ranges it covers are intact (ETSI EN 319 142-1,
    ISO 32000-1 §12.8);
(2) ``pdf_signer``: the signer's X.509 chain leads to a notary CA root of the
    trust file, every certificate valid at the signing time, with key usage
    digitalSignature or nonRepudiation; the signing time is the signature
    timestamp's genTime when there is one, otherwise the time the signer
    states; it is not before the certificate's issue time;
(3) ``pdf_timestamp``: the RFC 3161 signature timestamp (PAdES B-T) chains to
    a TSA root of the trust file (not applicable to a signature without one);
(4) ``pdf_updates``: nothing was appended after the signature (an
    incremental update, the way shadow attacks change what a signed PDF
    shows); validation data and document timestamps only (pyHanko's
    difference analysis, "LTA updates") are accepted and named;
(5) ``pdf_attachments``: the signed revision carries ``certificate.json``,
    ``proof.txt`` equal to the certificate's proof, and, for a capture, the
    deposited manifest and the screenshot it lists; the final revision carries
    the same files;
(6) ``pdf_page``: the page is exactly the layout of that certificate: the
    content stream equals the one :func:`verifier.pdflayout.layout` gives,
    each glyph code stands for the character the layout puts there
    (``ToUnicode``), the QR code encodes ``{base}/c/{certificate_id}`` and its
    link says the same, and the thumbnail is the attached screenshot;
(7) the checks of :func:`verifier.certificate.verify_certificate` on the
    attached ``certificate.json``, exactly as ``evidence-verify certificate``
    runs them (with the evidence files and log view given; for a web capture
    without files, the attached manifest is the deposited file).

The signature is checked by pyHanko (and its certificate validator); the
page comparison reads the PDF's own widths and ``ToUnicode`` maps, so no font
is needed.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verifier.capture import MANIFEST_FILE_NAME, MAX_MANIFEST_SIZE, CaptureManifest
from verifier.certificate import (
    CLOCK_TOLERANCE,
    MAX_CERTIFICATE_SIZE,
    Certificate,
    LogStatus,
    verify_certificate,
)
from verifier.digest import FileDigest, digest_stream
from verifier.errors import MalformedError
from verifier.pdflayout import (
    BOLD,
    CERTIFICATE_FILE,
    PROOF_FILE,
    REGULAR,
    SCREENSHOT_ARTEFACT,
    SCREENSHOT_FILE,
    THUMBNAIL,
    PdfView,
    certificate_url,
    check_base_url,
    content_stream,
    glyph_order,
    layout,
    parse_png,
)
from verifier.report import FAILED, NOT_APPLICABLE, PASSED, SKIPPED, Check, Report
from verifier.trust import Trust, format_utc, parse_utc

__all__ = [
    "MAX_PDF_SIZE",
    "PdfCertificate",
    "check_rendering",
    "pdf_checks",
    "read_pdf",
    "verify_pdf",
]

MAX_PDF_SIZE = 64 << 20
MAX_ATTACHMENT = 32 << 20
_BFCHAR = re.compile(rb"<([0-9A-Fa-f]{4})>\s*<([0-9A-Fa-f]{4,8})>")
_BFBLOCK = re.compile(rb"beginbfchar(.*?)endbfchar", re.S)


def _fail(key: str, en: str, zh: str) -> Check:
    return Check(key, FAILED, en, zh)


def _ok(key: str, en: str, zh: str) -> Check:
    return Check(key, PASSED, en, zh)


@dataclass(frozen=True, slots=True)
class _Font:
    """What the page needs of a font: code -> character, code -> width."""

    chars: dict[int, str]
    widths: dict[int, int]


class _PdfMetrics:
    """:class:`verifier.pdflayout.Metrics` answered from the PDF's fonts."""

    def __init__(self, fonts: dict[str, _Font]) -> None:
        self._codes = {k: {c: code for code, c in f.chars.items()} for k, f in fonts.items()}
        self._fonts = fonts

    def width(self, font: str, ch: str) -> int:
        code = self._codes.get(font, {}).get(ch)
        return 0 if code is None else self._fonts[font].widths.get(code, 0)

    def covered(self, font: str, ch: str) -> bool:
        return ch in self._codes.get(font, {})


@dataclass(frozen=True, slots=True)
class _Revision:
    """What one revision of the file says: attachments and the page's parts."""

    attachments: dict[str, bytes]
    content: bytes | None
    fonts: dict[str, _Font]
    link: str | None
    image: tuple[int, int, bytes, dict[str, Any]] | None
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PdfCertificate:
    """A parsed certificate PDF: its bytes, the signed revision's contents, the
    certificate attached to it and pyHanko's view of the signature."""

    data: bytes
    certificate: Certificate
    signed: _Revision
    final: _Revision
    signatures: int
    embedded: Any
    """pyHanko's ``EmbeddedPdfSignature`` (None without a signature)."""


def _get(d: Any, key: str, default: Any = None) -> Any:
    """A PDF dictionary's entry, indirect values resolved."""
    # pyHanko's dict.get() returns indirect references unresolved; [] resolves them.
    return d[key] if key in d else default  # noqa: SIM401


def _items(d: Any) -> list[tuple[str, Any]]:
    """A PDF dictionary's entries with indirect values resolved."""
    return [(str(k), d[k]) for k in list(d.keys())]


def _names_tree(root: Any) -> dict[str, Any]:
    """The embedded files name tree (flat ``/Names`` array, as the producer writes it)."""
    try:
        tree = root["/Names"]["/EmbeddedFiles"]
    except KeyError:
        return {}
    if "/Kids" in tree:
        raise MalformedError("pdf: the embedded files tree has kids; not a certificate PDF")
    arr = _get(tree, "/Names", [])
    names = [arr[i] for i in range(len(arr))]
    if len(names) % 2:
        raise MalformedError("pdf: the embedded files tree is malformed")
    out: dict[str, Any] = {}
    for i in range(0, len(names), 2):
        key = str(names[i])
        if key in out:
            raise MalformedError(f"pdf: {key!r} is attached twice")
        out[key] = names[i + 1]
    return out


def _attachments(root: Any) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, spec in _names_tree(root).items():
        stream = spec["/EF"]["/F"]
        length = int(_get(stream, "/Length", 0))
        if length > MAX_ATTACHMENT:
            raise MalformedError(f"pdf: attachment {name!r} is larger than {MAX_ATTACHMENT}")
        out[name] = bytes(stream.data)
    return out


def _to_unicode(data: bytes) -> dict[int, str]:
    chars: dict[int, str] = {}
    for block in _BFBLOCK.findall(data):
        for code, text in _BFCHAR.findall(block):
            try:
                value = bytes.fromhex(text.decode("ascii")).decode("utf-16-be")
            except UnicodeDecodeError as e:
                raise MalformedError("pdf: a ToUnicode entry is not UTF-16") from e
            if len(value) != 1:
                raise MalformedError("pdf: a ToUnicode entry maps a glyph to several characters")
            chars[int(code, 16)] = value
    return chars


def _font(font: Any) -> _Font:
    if _get(font, "/Subtype") != "/Type0" or _get(font, "/Encoding") != "/Identity-H":
        raise MalformedError("pdf: a page font is not a Type 0 font with Identity-H codes")
    chars = _to_unicode(bytes(font["/ToUnicode"].data))
    w_array = _get(font["/DescendantFonts"][0], "/W", [])
    w = [w_array[i] for i in range(len(w_array))]
    widths: dict[int, int] = {}
    if len(w) == 2 and isinstance(w[1], list):
        start = int(w[0])
        for i, v in enumerate(w[1]):
            widths[start + i] = int(v)
    elif w:
        raise MalformedError("pdf: a font's /W array is not in the form [first [widths]]")
    return _Font(chars, widths)


def _revision(root: Any) -> _Revision:
    problems: list[str] = []
    attachments = _attachments(root)
    pages = root["/Pages"]
    kid_array = _get(pages, "/Kids", [])
    kids = [kid_array[i] for i in range(len(kid_array))]
    if int(_get(pages, "/Count", 0)) != 1 or len(kids) != 1:
        return _Revision(attachments, None, {}, None, None, ("the PDF does not have one page",))
    page = kids[0]
    contents = _get(page, "/Contents")
    content = bytes(contents.data) if hasattr(contents, "data") else None
    if content is None:
        problems.append("the page's content is not one stream")
    resources = _get(page, "/Resources", {})
    fonts = {}
    for name, font in _items(_get(resources, "/Font", {})):
        key = str(name).lstrip("/")
        if key not in (REGULAR, BOLD):
            problems.append(f"unexpected font resource {key!r}")
            continue
        fonts[key] = _font(font)
    image = None
    for name, xobject in _items(_get(resources, "/XObject", {})):
        if str(name).lstrip("/") != THUMBNAIL:
            problems.append(f"unexpected image resource {name!s}")
            continue
        params = {str(k): v for k, v in _items(_get(xobject, "/DecodeParms", {}))}
        image = (
            int(xobject["/Width"]),
            int(xobject["/Height"]),
            bytes(xobject.encoded_data),
            params,
        )
    link = None
    annots = _get(page, "/Annots", [])
    for i in range(len(annots)):
        annot = annots[i]
        subtype = _get(annot, "/Subtype")
        if subtype == "/Link" and link is None:
            link = str(annot["/A"]["/URI"])
        elif subtype != "/Widget":
            problems.append(f"unexpected annotation {subtype!s}")
    return _Revision(attachments, content, fonts, link, image, tuple(problems))


def read_pdf(data: bytes) -> PdfCertificate:
    """Parse a certificate PDF (strictly, with pyHanko); raise :class:`MalformedError`.

    The contents are read from the revision the signature covers (the last
    revision when there is no signature) and from the final revision.
    """
    if len(data) > MAX_PDF_SIZE:
        raise MalformedError(f"pdf: larger than {MAX_PDF_SIZE} bytes")
    if not data.startswith(b"%PDF-"):
        raise MalformedError("pdf: not a PDF file")
    _pyhanko()
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=True)
        signatures = list(reader.embedded_signatures)
        embedded = signatures[0] if signatures else None
        if embedded is not None:
            signed_root = reader.get_historical_resolver(embedded.signed_revision).root
        else:
            signed_root = reader.root
        signed = _revision(signed_root)
        final = _revision(reader.root)
    except MalformedError:
        raise
    except (PdfError, KeyError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise MalformedError(f"pdf: cannot be read ({type(e).__name__}: {e})") from e
    cert_bytes = signed.attachments.get(CERTIFICATE_FILE)
    if cert_bytes is None:
        raise MalformedError("pdf: no certificate.json is attached: not a certificate PDF")
    if len(cert_bytes) > MAX_CERTIFICATE_SIZE:
        raise MalformedError("pdf: the attached certificate.json is too large")
    cert = Certificate.from_json(cert_bytes)
    return PdfCertificate(data, cert, signed, final, len(signatures), embedded)


# -- (1)-(4) the signature -------------------------------------------------------


def _asn1(certs: Sequence[Any]) -> list[Any]:
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in certs]


def _name(subject_of: Any) -> str:
    """The common name of a certificate's (or authority's) subject, else the whole name."""
    name = getattr(subject_of, "subject", None) or subject_of.name
    cn = name.native.get("common_name") if isinstance(name.native, dict) else None
    return str(cn) if cn else str(name.human_friendly)


def _pyhanko() -> None:
    """Import pyHanko once, without the deprecation warnings it triggers in cryptography,
    and keep its log (which reports every failed path, with a traceback) off the
    terminal: the report says what failed."""
    import logging
    import warnings

    for name in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(name).addHandler(logging.NullHandler())
        logging.getLogger(name).propagate = False

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyhanko.sign.signers.pdf_cms
        import pyhanko.sign.validation  # noqa: F401


def _claimed_time(embedded: Any, trust: Trust) -> tuple[datetime | None, bool]:
    """(signing time to validate at, whether it comes from a timestamp token).

    The token's genTime is used when the trust file names TSA roots (check (3)
    then decides whether the token is trusted); otherwise the time the signer
    states, since an unchecked token proves nothing."""
    attrs = embedded.signer_info["unsigned_attrs"]
    if not trust.tsa_roots:
        attrs = None
    if attrs is not None and attrs.native is not None:
        for attr in attrs:
            if attr["type"].native == "signature_time_stamp_token":
                token = attr["values"][0]
                tst = token["content"]["encap_content_info"]["content"].parsed
                gen: datetime = tst["gen_time"].native
                return gen, True
    claimed: datetime | None = embedded.self_reported_timestamp
    return claimed, False


def _context(data: bytes, **kwargs: Any) -> Any:
    """A pyHanko validation context with the document security store's certificates
    and revocation data (when the PDF has a DSS), never fetching anything."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko.sign.validation.errors import NoDSSFoundError
    from pyhanko_certvalidator import ValidationContext

    kwargs.update(allow_fetching=False, revocation_mode="soft-fail")
    try:
        dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(data), strict=True))
    except NoDSSFoundError:
        return ValidationContext(**kwargs)
    return dss.as_validation_context(kwargs)


def _signature_checks(pdf: PdfCertificate, trust: Trust) -> tuple[list[Check], bool]:
    """Checks (1) to (4); the bool says whether the page may be trusted as signed."""
    if pdf.signatures != 1 or pdf.embedded is None:
        why = "no signature" if pdf.signatures == 0 else f"{pdf.signatures} signatures"
        checks = [
            _fail(
                "pdf_signature",
                f"the PDF has {why}; a certificate PDF carries one notary signature",
                f"PDF 中有 {pdf.signatures} 个签名；证书 PDF 应有且仅有一个公证签名",
            )
        ]
        for key in ("pdf_signer", "pdf_timestamp", "pdf_updates"):
            checks.append(Check(key, SKIPPED, "not checked: no signature", "无法检查：没有签名"))
        return checks, False
    from pyhanko.sign.validation import validate_pdf_signature

    sig = pdf.embedded
    moment, from_token = _claimed_time(sig, trust)
    tsa_vc = _context(pdf.data, trust_roots=_asn1(trust.tsa_roots))
    signer_vc = _context(
        pdf.data,
        trust_roots=_asn1(trust.notary_ca_roots),
        moment=moment,
        retroactive_revinfo=True,
    )
    try:
        status = validate_pdf_signature(sig, signer_vc, ts_validation_context=tsa_vc)
    except Exception as e:
        text = f"{type(e).__name__}: {e}"
        failed = [
            _fail(
                "pdf_signature",
                f"the signature cannot be validated ({text})",
                f"签名无法验证（{text}）",
            )
        ]
        for key in ("pdf_signer", "pdf_timestamp", "pdf_updates"):
            failed.append(
                Check(key, SKIPPED, "not checked: the signature failed", "无法检查：签名无效")
            )
        return failed, False
    subject = _name(status.signing_cert)
    checks = []
    intact = bool(status.intact and status.valid)
    if intact:
        checks.append(
            _ok(
                "pdf_signature",
                f"{sig.field_name}: the CMS signature and the digest of the signed bytes are "
                f"intact ({status.md_algorithm}), signed by {subject}",
                f"{sig.field_name}：CMS 签名与所签字节的摘要完好（{status.md_algorithm}），"
                f"签名人 {subject}",
            )
        )
    elif not status.intact:
        checks.append(
            _fail(
                "pdf_signature",
                "the signed bytes were changed: their digest differs from the signed one",
                "所签字节已被修改：摘要与签名时不一致",
            )
        )
    else:
        checks.append(
            _fail(
                "pdf_signature",
                "the CMS signature does not verify with the signer's key",
                "CMS 签名无法用签名人公钥验证",
            )
        )
    checks.append(_signer_check(pdf, trust, status, moment, from_token, subject))
    checks.append(_timestamp_check(trust, status))
    checks.append(_updates_check(pdf, status))
    return checks, intact and checks[-1].ok


def _signer_check(
    pdf: PdfCertificate,
    trust: Trust,
    status: Any,
    moment: datetime | None,
    from_token: bool,
    subject: str,
) -> Check:
    if not trust.notary_ca_roots:
        return _fail(
            "pdf_signer",
            "the trust file lists no notary CA roots (notary_ca_roots): the PDF signer "
            "cannot be trusted (fail closed)",
            "信任文件未列出公证处证书根（notary_ca_roots）：无法信任 PDF 签名人（失败即拒绝）",
        )
    if moment is None:
        return _fail(
            "pdf_signer",
            "the signature states no signing time",
            "签名未载明签名时间",
        )
    when = format_utc(moment)
    source_en = "signature timestamp" if from_token else "time stated by the signer"
    source_zh = "签名时间戳" if from_token else "签名人自述的时间"
    issued = parse_utc(pdf.certificate.issued_at, "issued_at")
    if moment.astimezone(UTC) < issued - CLOCK_TOLERANCE:
        return _fail(
            "pdf_signer",
            f"signed at {when} ({source_en}), before the certificate was issued at "
            f"{pdf.certificate.issued_at}",
            f"签名时间 {when}（{source_zh}）早于证书签发时间 {pdf.certificate.issued_at}",
        )
    if not status.trusted:
        problem = status.trust_problem_indic
        detail = f" ({problem.name})" if problem is not None else ""
        return _fail(
            "pdf_signer",
            f"{subject} does not chain to a notary CA root of the trust file at {when}{detail}",
            f"{subject} 在 {when} 无法链接到信任文件中的公证处证书根{detail}",
        )
    path = status.validation_path
    anchor = getattr(path.trust_anchor, "authority", None) if path is not None else None
    root = _name(anchor) if anchor is not None else "?"
    return _ok(
        "pdf_signer",
        f"{subject}, issued under {root}, valid at {when} ({source_en})",
        f"{subject}，由 {root} 签发，在 {when}（{source_zh}）有效",
    )


def _timestamp_check(trust: Trust, status: Any) -> Check:
    ts = status.timestamp_validity
    if ts is None:
        return Check(
            "pdf_timestamp",
            NOT_APPLICABLE,
            "no signature timestamp (PAdES B-B): the signing time is the signer's statement",
            "无签名时间戳（PAdES B-B）：签名时间为签名人自述",
        )
    when = format_utc(ts.timestamp)
    if not trust.tsa_roots:
        return Check(
            "pdf_timestamp",
            NOT_APPLICABLE,
            f"the trust file lists no TSA roots: the signature timestamp ({when}) is not "
            "checked and the signing time is the signer's statement",
            f"信任文件未列出时间戳机构根证书：签名时间戳（{when}）未检查，签名时间为签名人自述",
        )
    if not (ts.intact and ts.valid):
        return _fail(
            "pdf_timestamp",
            "the signature timestamp token is not valid for this signature",
            "签名时间戳对本签名无效",
        )
    if not ts.trusted:
        return _fail(
            "pdf_timestamp",
            f"the signature timestamp ({when}) does not chain to a TSA root of the trust file",
            f"签名时间戳（{when}）无法链接到信任文件中的时间戳机构根证书",
        )
    tsa = _name(ts.signing_cert)
    return _ok(
        "pdf_timestamp",
        f"signed no later than {when} (RFC 3161, PAdES B-T), by {tsa}",
        f"签名不晚于 {when}（RFC 3161，PAdES B-T），时间戳机构 {tsa}",
    )


def _updates_check(pdf: PdfCertificate, status: Any) -> Check:
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    if status.coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return _ok(
            "pdf_updates",
            "the signature covers the whole file: nothing was appended after it",
            "签名覆盖整个文件：签名后未追加任何内容",
        )
    end = pdf.embedded.signed_revision
    appended = len(pdf.data) - _revision_end(pdf)
    level = status.modification_level
    if (
        status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
        and level == ModificationLevel.LTA_UPDATES
    ):
        return _ok(
            "pdf_updates",
            f"{appended} bytes after the signed revision {end} add validation data or "
            "document timestamps only",
            f"签名版本 {end} 之后的 {appended} 字节仅添加验证数据或文档时间戳",
        )
    name = getattr(level, "name", "unknown")
    return _fail(
        "pdf_updates",
        f"{appended} bytes were appended after the signature (incremental update, "
        f"modification level {name}): what the PDF shows may not be what was signed",
        f"签名后追加了 {appended} 字节（增量更新，修改级别 {name}）：显示内容可能并非所签内容",
    )


def _revision_end(pdf: PdfCertificate) -> int:
    """Where the bytes the signature covers end (its last byte range)."""
    byte_range = list(pdf.embedded.sig_object["/ByteRange"])
    return int(byte_range[2]) + int(byte_range[3])


# -- (5) attachments, (6) the page -------------------------------------------------


def _attachment_check(pdf: PdfCertificate) -> tuple[Check, CaptureManifest | None, bytes | None]:
    cert = pdf.certificate
    got = pdf.signed.attachments
    manifest: CaptureManifest | None = None
    screenshot = got.get(SCREENSHOT_FILE)
    problems: list[str] = []
    expected = {CERTIFICATE_FILE, PROOF_FILE}
    if MANIFEST_FILE_NAME in got:
        expected.add(MANIFEST_FILE_NAME)
        raw = got[MANIFEST_FILE_NAME]
        if (
            cert.evidence.kind != "capture"
            or hashlib.sha256(raw).hexdigest() != cert.evidence.sha256
        ):
            problems.append(f"{MANIFEST_FILE_NAME} is not the deposited capture manifest")
        elif len(raw) <= MAX_MANIFEST_SIZE:
            try:
                manifest = CaptureManifest.from_json(raw)
            except MalformedError as e:
                problems.append(str(e))
    if screenshot is not None:
        expected.add(SCREENSHOT_FILE)
        listed = (
            [a for a in manifest.artefacts if a.name == SCREENSHOT_ARTEFACT] if manifest else []
        )
        if not listed or hashlib.sha256(screenshot).hexdigest() != listed[0].sha256:
            problems.append(f"{SCREENSHOT_FILE} is not the screenshot the manifest lists")
            screenshot = None
    if set(got) != expected:
        extra = sorted(set(got) - expected)
        if extra:
            problems.append("unexpected attachments " + ", ".join(extra))
    if got.get(PROOF_FILE) != cert.tlog_proof().to_text().encode("utf-8"):
        problems.append("proof.txt is not the certificate's proof in tlog-proof form")
    if pdf.final.attachments != got:
        changed = sorted(
            n
            for n in set(got) | set(pdf.final.attachments)
            if got.get(n) != pdf.final.attachments.get(n)
        )
        problems.append("replaced after signing: " + ", ".join(changed))
    if problems:
        text = "; ".join(problems)
        return _fail("pdf_attachments", text, f"附件有误：{text}"), manifest, screenshot
    names = ", ".join(sorted(got))
    return _ok("pdf_attachments", names, "、".join(sorted(got))), manifest, screenshot


def _page_check(
    pdf: PdfCertificate, manifest: CaptureManifest | None, screenshot: bytes | None
) -> Check:
    rev = pdf.signed
    cert = pdf.certificate

    def fail(en: str, zh: str) -> Check:
        return _fail("pdf_page", en, zh)

    if rev.problems:
        text = "; ".join(rev.problems)
        return fail(f"the page is not a certificate page: {text}", f"页面结构不符：{text}")
    if rev.content is None or set(rev.fonts) != {REGULAR, BOLD}:
        return fail("the page lacks its content or fonts", "页面缺少内容或字体")
    suffix = f"/c/{cert.certificate_id}"
    if rev.link is None or not rev.link.endswith(suffix):
        return fail(
            f"the page's link is {rev.link!r}, not the /c/ page of this certificate",
            f"页面链接 {rev.link!r} 不是本证书的 /c/ 页面",
        )
    base = rev.link[: -len(suffix)]
    try:
        check_base_url(base)
    except MalformedError as e:
        return fail(str(e), f"链接格式不符（{e}）")
    png = parse_png(screenshot) if screenshot is not None else None
    view = PdfView(
        certificate=cert,
        base_url=base,
        capture=manifest,
        thumbnail=(png.width, png.height) if png is not None else None,
    )
    page = layout(view, _PdfMetrics(rev.fonts))
    order = glyph_order(page)
    for key in (REGULAR, BOLD):
        want = {i + 1: ch for i, ch in enumerate(order[key])}
        if rev.fonts[key].chars != want:
            return fail(
                "the glyph codes of the page's fonts do not stand for the characters the "
                "certificate's text needs (ToUnicode)",
                "页面字体的字形编码与证书文字不对应（ToUnicode）",
            )
    expected = content_stream(page, order)
    if rev.content != expected:
        difference = _first_difference(rev.content, expected, rev)
        return fail(
            "the page does not say what certificate.json says: " + difference,
            "页面内容与 certificate.json 不一致：" + difference,
        )
    if png is not None:
        if rev.image is None:
            return fail("the thumbnail image is missing", "缺少缩略图")
        w, h, data, params = rev.image
        if (w, h, data) != (png.width, png.height, png.idat) or int(
            _get(params, "/Predictor", 0)
        ) != 15:
            return fail(
                "the thumbnail is not the attached viewport screenshot",
                "缩略图不是所附视口截图",
            )
    elif rev.image is not None:
        return fail(
            "the page shows an image the certificate does not have", "页面含有证书之外的图片"
        )
    url = certificate_url(base, cert.certificate_id)
    return _ok(
        "pdf_page",
        f"the page is the rendering of certificate {cert.certificate_id[:16]}… "
        f"(every line, the QR code to {url}" + (", the thumbnail" if png else "") + ")",
        f"页面为证书 {cert.certificate_id[:16]}… 的呈现（全部文字、指向 {url} 的二维码"
        + ("、缩略图" if png else "")
        + "）",
    )


def _decode_line(line: bytes, rev: _Revision) -> str:
    """A content stream line with its glyph codes shown as text (for messages)."""
    m = re.search(rb"/(F[12]) [0-9.]+ Tf .* <([0-9A-F]*)> Tj", line)
    if m is None:
        return line.decode("ascii", "replace")[:80]
    font = rev.fonts.get(m.group(1).decode())
    hexcodes = m.group(2).decode()
    codes = [int(hexcodes[i : i + 4], 16) for i in range(0, len(hexcodes), 4)]
    text = "".join(font.chars.get(c, "?") for c in codes) if font else "?"
    return repr(text[:60])


def _first_difference(actual: bytes, expected: bytes, rev: _Revision) -> str:
    a, e = actual.split(b"\n"), expected.split(b"\n")
    for i, (x, y) in enumerate(zip(a, e, strict=False)):
        if x != y:
            return f"line {i + 1} shows {_decode_line(x, rev)}, expected {_decode_line(y, rev)}"
    return f"the page has {len(a)} drawing lines, expected {len(e)}"


def pdf_checks(data: bytes, trust: Trust, cert: Certificate) -> list[Check]:
    """Checks (1) to (6) of a certificate PDF that comes with ``cert`` (in an
    evidence package), then ``pdf_certificate``: the PDF renders ``cert`` itself.
    A PDF that cannot be read is one failed check, not an error."""
    try:
        pdf = read_pdf(data)
    except MalformedError as e:
        return [
            _fail("pdf_certificate", f"certificate.pdf: {e}", f"certificate.pdf 无法读取（{e}）")
        ]
    checks, _ = _signature_checks(pdf, trust)
    attached, manifest, screenshot = _attachment_check(pdf)
    checks += [attached, _page_check(pdf, manifest, screenshot)]
    if pdf.certificate.raw != cert.raw:
        checks.append(
            _fail(
                "pdf_certificate",
                f"certificate.pdf renders certificate {pdf.certificate.certificate_id[:16]}…, "
                f"not {cert.certificate_id[:16]}…",
                f"certificate.pdf 呈现的是证书 {pdf.certificate.certificate_id[:16]}…，"
                f"而非 {cert.certificate_id[:16]}…",
            )
        )
    else:
        checks.append(
            _ok(
                "pdf_certificate",
                "certificate.pdf carries this package's certificate.json",
                "certificate.pdf 所附为本证据包的 certificate.json",
            )
        )
    return checks


def check_rendering(data: bytes) -> str | None:
    """Checks (5) and (6) alone (the producer's self-check): None when the
    attachments and the page are right, else what is wrong."""
    pdf = read_pdf(data)
    attached, manifest, screenshot = _attachment_check(pdf)
    page = _page_check(pdf, manifest, screenshot)
    bad = [c.reason for c in (attached, page) if not c.ok]
    return "; ".join(bad) or None


# -- the procedure --------------------------------------------------------------------


def verify_pdf(
    source: str | os.PathLike[str] | bytes,
    trust: Trust,
    files: Sequence[FileDigest] = (),
    *,
    log: LogStatus | None = None,
    log_status: Callable[[Certificate], LogStatus] | None = None,
    name: str | None = None,
) -> Report:
    """Verify a certificate PDF against the trust file (module docstring, (1)-(7))."""
    if isinstance(source, bytes):
        data = source
        label = name or "certificate.pdf"
    else:
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_PDF_SIZE + 1)
        except OSError as e:
            raise MalformedError(f"pdf: cannot read {str(source)!r}: {e.strerror}") from e
        label = name or Path(source).name
    pdf = read_pdf(data)
    checks, _ = _signature_checks(pdf, trust)  # (1)-(4)
    attached, manifest, screenshot = _attachment_check(pdf)  # (5)
    checks.append(attached)
    checks.append(_page_check(pdf, manifest, screenshot))  # (6)
    if log is None and log_status is not None:
        log = log_status(pdf.certificate)
    attached_manifest = pdf.signed.attachments.get(MANIFEST_FILE_NAME)
    if not files and manifest is not None and attached_manifest is not None:
        # A capture's deposited file is its manifest, which the PDF carries.
        files = [digest_stream(io.BytesIO(attached_manifest).read, MANIFEST_FILE_NAME)]
    checks += verify_certificate(pdf.certificate, trust, files, log=log)  # (7)
    return Report("pdf", label, tuple(checks), pdf.certificate.facts())
