"""The page of a PDF certificate (存证证书), as a pure function of the certificate.

The signed JSON certificate is the truth; its PDF rendering must say exactly
what the JSON says. This module is the one definition of that rendering: the
producer draws the page it returns, and ``evidence-verify pdf`` lays the page
out again from the JSON embedded in the PDF and compares it with the PDF's
content stream, byte for byte. So any text, number, position or QR module
that differs from what the JSON says is found.

The layout depends on the font only through :class:`Metrics` (advance widths
and which characters the font can show). The producer answers from the font
file; the verifier answers from the PDF itself (the ``/W`` widths and the
characters its ``ToUnicode`` maps name), so no font is needed to verify.

Text a depositor controls (title, file name, depositor, URLs, the notary's
statement) is shown safely: control, format (bidi overrides, zero-width
characters), separator, combining, private-use and unassigned characters,
spaces other than U+0020 and U+3000, and characters the font cannot show are
drawn as a visible ``<U+XXXX>`` escape, never raw (:func:`display_text`).
Long values wrap; a value that exceeds its lines ends with "…" and the page
says that the attached JSON holds the full text.
"""

from __future__ import annotations

import base64
import re
import struct
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from verifier.capture import CaptureManifest
from verifier.certificate import Certificate
from verifier.display import UNSAFE_CATEGORIES
from verifier.errors import MalformedError
from verifier.trust import parse_utc

__all__ = [
    "BOLD",
    "CERTIFICATE_FILE",
    "PAGE_HEIGHT",
    "PAGE_WIDTH",
    "PROOF_FILE",
    "REGULAR",
    "SCREENSHOT_ARTEFACT",
    "SCREENSHOT_FILE",
    "THUMBNAIL",
    "Image",
    "Metrics",
    "Page",
    "PdfView",
    "PngImage",
    "Rect",
    "Rule",
    "Text",
    "certificate_url",
    "check_base_url",
    "content_stream",
    "display_text",
    "glyph_order",
    "layout",
    "parse_png",
    "token_time",
]

PAGE_WIDTH = 595.28
PAGE_HEIGHT = 841.89
REGULAR = "F1"
BOLD = "F2"
THUMBNAIL = "Im1"
"""Resource name of the capture screenshot's thumbnail image."""
CERTIFICATE_FILE = "certificate.json"
PROOF_FILE = "proof.txt"
SCREENSHOT_FILE = "screenshot-viewport.png"
SCREENSHOT_ARTEFACT = "screenshot_viewport"
"""The capture artefact whose thumbnail the page shows."""

_MARGIN = 48.0
_LABEL_W = 112.0
_VALUE_SIZE = 8.5
_LEADING = 11.5
_LABEL_SIZE = 7.5
_QR_SIZE = 86.0
_THUMB_W = 150.0
_THUMB_MAX_H = 110.0
_BOTTOM = 52.0
_ELLIPSIS = "…"
_BLACK = (0.0, 0.0, 0.0)
_GREY = (0.38, 0.38, 0.38)
_BLUE = (0.09, 0.2, 0.45)
_SPACES = (" ", "\u3000")
_BASE_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXPLAIN_ZH = "（全文见所附 certificate.json）"
_EXPLAIN_EN = " (full text in the attached certificate.json)"


class Metrics(Protocol):
    """What the layout needs to know about the fonts."""

    def width(self, font: str, ch: str) -> int:
        """Advance width of ``ch`` in ``font``, in 1/1000 em."""
        ...

    def covered(self, font: str, ch: str) -> bool:
        """True when ``font`` can show ``ch``."""
        ...


@dataclass(frozen=True, slots=True)
class Text:
    """A line of text with its baseline origin."""

    font: str
    size: float
    x: float
    y: float
    text: str
    color: tuple[float, float, float] = _BLACK


@dataclass(frozen=True, slots=True)
class Rule:
    """A horizontal line."""

    x1: float
    x2: float
    y: float
    width: float = 0.6
    color: tuple[float, float, float] = _BLUE


@dataclass(frozen=True, slots=True)
class Rect:
    """A filled rectangle (QR code modules)."""

    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True, slots=True)
class Image:
    """An image XObject drawn into a box."""

    name: str
    x: float
    y: float
    w: float
    h: float


Page = tuple[Text | Rule | Rect | Image, ...]


@dataclass(frozen=True, slots=True)
class PdfView:
    """Everything the page shows: the certificate and what comes with it.

    ``capture`` is the deposited capture manifest (for a web capture);
    ``thumbnail`` the pixel size of the viewport screenshot shown, if any.
    """

    certificate: Certificate
    base_url: str
    capture: CaptureManifest | None = None
    thumbnail: tuple[int, int] | None = None


def check_base_url(url: str) -> str:
    """The public base URL of the web console: ``http(s)://host[:port][/path]``, ASCII,
    no trailing slash, query or fragment."""
    if not _BASE_URL.fullmatch(url):
        raise MalformedError(
            f"pdf: public base URL {url[:100]!r} must be http(s)://host[:port][/path] "
            "without a trailing slash"
        )
    return url


def certificate_url(base_url: str, certificate_id: str) -> str:
    """The console page a certificate's QR code opens: ``{base}/c/{certificate_id}``."""
    return f"{check_base_url(base_url)}/c/{certificate_id}"


def display_text(text: str, covered: Callable[[str], bool]) -> str:
    """``text`` with every character that must not be drawn raw as ``<U+XXXX>``.

    Escaped: every category :func:`verifier.display.escape_text` escapes
    (controls, C1, format characters such as bidi overrides and zero-width,
    separators, surrogates, private use, unassigned), and beyond them Z*
    other than U+0020 and U+3000, M* (combining marks) and characters the
    font cannot show. The ``<U+XXXX>`` notation is the page format of every
    certificate issued so far, which the verifier lays out again byte for byte.
    """
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in _SPACES or (cat not in UNSAFE_CATEGORIES and cat[0] not in "CZM" and covered(ch)):
            out.append(ch)
        else:
            out.append(f"<U+{ord(ch):04X}>")
    return "".join(out)


def token_time(token: bytes | None) -> str | None:
    """The genTime of a checkpoint's RFC 3161 token as ``YYYY-MM-DDTHH:MM:SSZ``
    (not verified here); for a set of tokens from several TSAs, the latest
    genTime, by which the checkpoint surely existed whatever the quorum.
    Tokens are read as real TSAs send them (BER, unsorted certificate sets)."""
    if token is None:
        return None
    from verifier import cms
    from verifier.timestamp import gen_time

    try:
        times = [gen_time(t) for t in cms.split_token_set(token)]
    except MalformedError as e:
        raise MalformedError(f"pdf: the certificate's timestamp token does not parse ({e})") from e
    return max(times).strftime("%Y-%m-%dT%H:%M:%SZ")


def _beijing(t: str) -> str:
    """A log time (``...Z``) with its China Standard Time (UTC+8) beside it."""
    local = parse_utc(t, "time") + timedelta(hours=8)
    return f"{t}（北京时间 {local:%Y-%m-%d %H:%M:%S}）"


class _Flow:
    """Places lines from the top of the page downwards."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics
        self.ops: list[Text | Rule | Rect | Image] = []
        self.y = PAGE_HEIGHT - 60.0

    def width(self, font: str, size: float, text: str) -> float:
        return sum(self.m.width(font, ch) for ch in text) * size / 1000.0

    def safe(self, font: str, text: str) -> str:
        return display_text(text, lambda ch: self.m.covered(font, ch))

    def wrap(self, font: str, size: float, text: str, width: float) -> list[str]:
        """Greedy wrapping: at spaces between words, anywhere between wide (CJK)
        characters, inside a word only when the word alone is too wide."""
        tokens: list[str] = []
        word = ""
        for ch in text:
            if ch == " " or unicodedata.east_asian_width(ch) in "WF":
                if word:
                    tokens.append(word)
                    word = ""
                tokens.append(ch)
            else:
                word += ch
        if word:
            tokens.append(word)
        lines: list[str] = []
        line = ""
        used = 0.0  # the width of ``line``
        for tok in tokens:
            if not line and tok == " ":
                continue
            w = self.width(font, size, tok)
            if used + w <= width:
                line += tok
                used += w
                continue
            if tok == " ":
                lines.append(line.rstrip(" "))
                line, used = "", 0.0
                continue
            if line:
                lines.append(line.rstrip(" "))
                line, used = "", 0.0
            if w <= width:
                line, used = tok, w
                continue
            for ch in tok:
                cw = self.width(font, size, ch)
                if line and used + cw > width:
                    lines.append(line)
                    line, used = "", 0.0
                line += ch
                used += cw
        if line.rstrip(" ") or not lines:
            lines.append(line.rstrip(" "))
        return lines

    def clip(self, font: str, size: float, lines: list[str], width: float, n: int) -> list[str]:
        """At most ``n`` lines; a cut ends with an ellipsis."""
        if len(lines) <= n:
            return lines
        kept = lines[:n]
        last = kept[-1]
        while last and self.width(font, size, last + _ELLIPSIS) > width:
            last = last[:-1]
        kept[-1] = last + _ELLIPSIS
        return kept

    def text(self, font: str, size: float, x: float, text: str, color: tuple[float, ...]) -> None:
        r, g, b = color
        self.ops.append(Text(font, size, x, self.y, text, (r, g, b)))

    def heading(self, zh: str, en: str) -> None:
        self.y -= 17.0
        self.text(BOLD, 10.0, _MARGIN, f"{zh}  {en}", _BLUE)
        self.ops.append(Rule(_MARGIN, PAGE_WIDTH - _MARGIN, self.y - 4.0))
        self.y -= 6.0

    def row(
        self,
        label: str,
        value: str | None,
        *,
        max_lines: int = 1,
        right: float = PAGE_WIDTH - _MARGIN,
        font: str = REGULAR,
        size: float = _VALUE_SIZE,
    ) -> bool:
        """A label and its value (safe, wrapped, clipped); True when the value was cut."""
        x = _MARGIN + _LABEL_W
        width = right - x
        shown = "—" if value is None else self.safe(font, value)
        lines = self.wrap(font, size, shown, width)
        cut = len(lines) > max_lines
        lines = self.clip(font, size, lines, width, max_lines)
        labels = self.wrap(REGULAR, _LABEL_SIZE, label, _LABEL_W - 6.0)
        leading = max(_LEADING, size + 3.0)
        self.y -= leading
        top = self.y
        for i, line in enumerate(labels):
            self.y = top - i * _LEADING
            self.text(REGULAR, _LABEL_SIZE, _MARGIN, line, _GREY)
        for i, line in enumerate(lines):
            self.y = top - i * leading
            self.text(font, size, x, line, _BLACK)
        self.y = top - (max(len(labels), len(lines)) - 1) * leading
        return cut


def layout(view: PdfView, metrics: Metrics) -> Page:
    """The page for ``view``: every text line, rule, QR module and image, in order."""
    cert = view.certificate
    ev = cert.evidence
    cp = cert.checkpoint_body
    f = _Flow(metrics)
    cut = False

    # Title block.
    for font, size, line, color in (
        (BOLD, 22.0, "存证证书", _BLACK),
        (BOLD, 12.0, "Deposit Certificate", _BLACK),
    ):
        x = (PAGE_WIDTH - f.width(font, size, line)) / 2
        f.text(font, size, x, line, color)
        f.y -= 19.0
    note = (
        "本页为所附已签名 certificate.json 的可读呈现，以 JSON 为准。"
        " This page renders the signed certificate.json attached to this PDF; the JSON prevails."
    )
    for line in f.wrap(REGULAR, 7.0, note, PAGE_WIDTH - 2 * _MARGIN):
        f.text(REGULAR, 7.0, (PAGE_WIDTH - f.width(REGULAR, 7.0, line)) / 2, line, _GREY)
        f.y -= 9.5
    f.ops.append(Rule(_MARGIN, PAGE_WIDTH - _MARGIN, f.y + 2.0, 1.2))
    f.y -= 2.0
    f.row("存证编号 Deposit number", ev.deposit_no, font=BOLD, size=11.0)
    f.row("证书编号 Certificate ID", cert.certificate_id, max_lines=2)

    f.heading("证据信息", "Evidence")
    cut |= f.row("标题 Title", ev.title, max_lines=3)
    cut |= f.row("文件名 File name", ev.file_name, max_lines=2)
    kind = {"file": "文件 file", "hash": "仅哈希 hash only", "capture": "网页取证 web capture"}
    kind_text = kind.get(ev.kind, ev.kind)
    if ev.media_type is not None:
        kind_text += f" · {ev.media_type}"
    cut |= f.row("类型 Kind", kind_text, max_lines=2)
    f.row("大小 Size", None if ev.size is None else f"{ev.size:,} 字节 bytes")
    f.row("SHA-256", ev.sha256, max_lines=2)
    f.row("SM3", ev.sm3, max_lines=2)
    cut |= f.row("存证人 Depositor", ev.depositor, max_lines=2)
    f.row("存证时间 Deposited at", _beijing(ev.deposited_at), max_lines=2)

    if view.capture is not None:
        cut |= _capture_section(f, view)

    f.heading("日志与锚定", "Log and anchoring")
    cut |= f.row("日志 Log", cp.origin, max_lines=2)
    f.row("条目序号 Entry index", str(cert.index))
    f.row("检查点 Checkpoint", f"大小 size {cp.size:,}")
    f.row("检查点根 Root", base64.b64encode(cp.root).decode("ascii"), max_lines=2)
    cosigners = [s.name for s in cert.checkpoint_note.signatures if s.name != cp.origin]
    witnesses = "、".join(cosigners) if cosigners else "无 none"
    cut |= f.row("见证节点 Witnesses", witnesses, max_lines=2)
    tsa = token_time(cert.timestamp_token)
    f.row("可信时间戳 TSA time", "无 none" if tsa is None else tsa)

    f.heading("出证", "Issuance")
    cut |= f.row("公证员 Notary", cert.issuer_name, max_lines=2)
    f.row("签发时间 Issued at", _beijing(cert.issued_at), max_lines=2)
    verify_h = 17.0 + 6.0 + _QR_SIZE + 14.0
    room = int((f.y - _BOTTOM - verify_h - 14.0) // _LEADING)
    cut |= _statement(f, cert.statement, max(room, 2), cut)

    _verify_section(f, certificate_url(view.base_url, cert.certificate_id))
    footer = (
        f"证书编号 Certificate ID {cert.certificate_id[:16]}…  ·  第 1 页，共 1 页  Page 1 of 1"
    )
    f.y = 34.0
    f.text(REGULAR, 6.5, (PAGE_WIDTH - f.width(REGULAR, 6.5, footer)) / 2, footer, _GREY)
    return tuple(f.ops)


def _statement(f: _Flow, statement: str, max_lines: int, cut_before: bool) -> bool:
    """The notary's statement, paragraph by paragraph, within ``max_lines``; when
    anything on the page was cut, the last lines say where the full text is."""
    x = _MARGIN + _LABEL_W
    width = PAGE_WIDTH - _MARGIN - x
    lines: list[str] = []
    for para in statement.split("\n"):
        lines += f.wrap(REGULAR, _VALUE_SIZE, f.safe(REGULAR, para), width)
    explain = f.wrap(REGULAR, _VALUE_SIZE, _EXPLAIN_ZH + _EXPLAIN_EN, width)
    cut = len(lines) > max_lines
    if cut or cut_before:
        keep = max(max_lines - len(explain), 1)
        lines = f.clip(REGULAR, _VALUE_SIZE, lines, width, keep) + explain
    f.y -= _LEADING
    f.text(REGULAR, _LABEL_SIZE, _MARGIN, "声明 Statement", _GREY)
    f.y += _LEADING
    for line in lines:
        f.y -= _LEADING
        f.text(REGULAR, _VALUE_SIZE, x, line, _BLACK)
    return cut


def _capture_section(f: _Flow, view: PdfView) -> bool:
    m = view.capture
    assert m is not None
    f.heading("网页取证", "Web capture")
    top = f.y
    right = PAGE_WIDTH - _MARGIN
    if view.thumbnail is not None:
        right -= _THUMB_W + 12.0
    cut = f.row("网址 URL", m.requested_url, max_lines=3, right=right)
    if m.final_url != m.requested_url:
        cut |= f.row("最终网址 Final URL", m.final_url, max_lines=3, right=right)
    f.row("取证开始 Started", _beijing(m.started_at), max_lines=2, right=right)
    f.row("取证结束 Ended", _beijing(m.ended_at), max_lines=2, right=right)
    status = {"complete": "完整 complete", "partial": "部分 partial"}.get(m.status, m.status)
    f.row("状态 Status", status, right=right)
    if view.thumbnail is not None:
        pw, ph = view.thumbnail
        scale = min(_THUMB_W / max(pw, 1), _THUMB_MAX_H / max(ph, 1))
        w, h = pw * scale, ph * scale
        x = PAGE_WIDTH - _MARGIN - _THUMB_W + (_THUMB_W - w) / 2
        y = top - 4.0 - h
        f.ops.append(Image(THUMBNAIL, x, y, w, h))
        caption = "视口截图 Viewport screenshot"
        cy = f.y
        f.y = y - 9.0
        f.text(REGULAR, 6.5, x, caption, _GREY)
        f.y = min(cy, f.y)
    return cut


def _verify_section(f: _Flow, url: str) -> None:
    f.heading("验证", "How to verify")
    top = f.y
    qr_x = PAGE_WIDTH - _MARGIN - _QR_SIZE
    width = qr_x - 12.0 - _MARGIN
    paragraphs = [
        "离线验证 Offline: evidence-verify pdf 本文件.pdf --trust 信任文件.json",
        "验证程序检查 PDF 签名及其证书链、所附 certificate.json（公证员签名、日志条目与包含证明、"
        "检查点签名、见证节点联署、可信时间戳）以及本页文字与 JSON 是否一致；"
        "给出日志（--log）时还检查撤销状态。",
        "It checks the PDF signature and its chain, the attached certificate.json (notary "
        "signature, log entry and inclusion proof, checkpoint signature, witness cosignatures, "
        "timestamp) and that this page says what the JSON says; with --log, revocation too.",
        "信任文件须从法院、公证处或知识产权机构获取。"
        "Obtain the trust file from the court, the notary office or the IP office.",
        f"在线查验 Online: {url}",
    ]
    for para in paragraphs:
        for line in f.wrap(REGULAR, 7.5, para, width):
            f.y -= 10.0
            f.text(REGULAR, 7.5, _MARGIN, line, _BLACK)
    qr_top = top - 4.0
    for r in _qr_rects(url, qr_x, qr_top - _QR_SIZE, _QR_SIZE):
        f.ops.append(r)
    f.y = qr_top - _QR_SIZE - 9.0
    caption = "扫码查验 Scan to check"
    f.text(REGULAR, 6.5, qr_x + (_QR_SIZE - f.width(REGULAR, 6.5, caption)) / 2, caption, _GREY)


def _qr_rects(url: str, x: float, y: float, size: float) -> list[Rect]:
    """The dark modules of the QR code (ISO/IEC 18004, level M) as row runs."""
    import segno

    # A fixed mask: any mask is valid (ISO/IEC 18004 §7.8), and choosing the
    # best of eight costs more time than the rest of the page.
    qr = segno.make_qr(url, error="m", boost_error=False, mask=2)
    rows = [list(r) for r in qr.matrix]
    n = len(rows)
    module = size / n
    out = []
    for i, row in enumerate(rows):
        j = 0
        while j < n:
            if row[j]:
                k = j
                while k < n and row[k]:
                    k += 1
                out.append(Rect(x + j * module, y + (n - 1 - i) * module, (k - j) * module, module))
                j = k
            else:
                j += 1
    return out


@dataclass(frozen=True, slots=True)
class PngImage:
    """A PNG whose compressed pixels a PDF image can use as they are."""

    width: int
    height: int
    idat: bytes


def parse_png(data: bytes) -> PngImage | None:
    """The size and IDAT data of an 8-bit RGB, non-interlaced PNG; None for any other PNG.

    Such pixels are a zlib stream with PNG row filters, which PDF reads with
    ``/Predictor 15`` (§7.4.4.4): no decoding, no re-encoding, exact pixels.
    """
    if not data.startswith(_PNG_SIGNATURE):
        return None
    pos = len(_PNG_SIGNATURE)
    header: tuple[int, ...] | None = None
    idat = bytearray()
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            return None
        if kind == b"IHDR" and length == 13:
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        return None
    width, height, depth, color, compression, filtering, interlace = header
    if (depth, color, compression, filtering, interlace) != (8, 2, 0, 0, 0):
        return None
    if not 0 < width <= 20000 or not 0 < height <= 20000:
        return None
    return PngImage(width, height, bytes(idat))


# -- the content stream ---------------------------------------------------------


def glyph_order(page: Page) -> dict[str, list[str]]:
    """Per font, the distinct characters of the page in order of first use.

    Character i (from 0) of a font is drawn with code i + 1: the producer
    embeds the glyphs in this order and the verifier expects this order.
    """
    order: dict[str, dict[str, None]] = {REGULAR: {}, BOLD: {}}
    for op in page:
        if isinstance(op, Text):
            for ch in op.text:
                order[op.font].setdefault(ch, None)
    return {font: list(chars) for font, chars in order.items()}


def _num(v: float) -> str:
    s = f"{v:.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def content_stream(page: Page, order: Mapping[str, Sequence[str]] | None = None) -> bytes:
    """The page's content stream (uncompressed), codes as in :func:`glyph_order`."""
    chosen = glyph_order(page) if order is None else order
    codes = {font: {ch: i + 1 for i, ch in enumerate(chars)} for font, chars in chosen.items()}
    out: list[str] = []
    rect_open = False
    for op in page:
        if isinstance(op, Rect):
            if not rect_open:
                out.append("0 0 0 rg")
                rect_open = True
            out.append(f"{_num(op.x)} {_num(op.y)} {_num(op.w)} {_num(op.h)} re")
            continue
        if rect_open:
            out.append("f")
            rect_open = False
        if isinstance(op, Text):
            hexcodes = "".join(f"{codes[op.font][ch]:04X}" for ch in op.text)
            r, g, b = op.color
            out.append(
                f"{_num(r)} {_num(g)} {_num(b)} rg BT /{op.font} {_num(op.size)} Tf "
                f"1 0 0 1 {_num(op.x)} {_num(op.y)} Tm <{hexcodes}> Tj ET"
            )
        elif isinstance(op, Rule):
            r, g, b = op.color
            out.append(
                f"{_num(r)} {_num(g)} {_num(b)} RG {_num(op.width)} w "
                f"{_num(op.x1)} {_num(op.y)} m {_num(op.x2)} {_num(op.y)} l S"
            )
        else:
            out.append(
                f"q {_num(op.w)} 0 0 {_num(op.h)} {_num(op.x)} {_num(op.y)} cm /{op.name} Do Q"
            )
    if rect_open:
        out.append("f")
    return ("\n".join(out) + "\n").encode("ascii")
