"""Verification reports: numbered checks with specific reasons, in English and Chinese.

A report is a list of :class:`Check` results. Each check has a stable machine
key (``inclusion``, ``notary_signature``...), a status and a reason in both
languages. The statuses say exactly what happened:

``passed``
    the check ran and succeeded;
``failed``
    the check ran and failed (the reason says why);
``skipped``
    the check could not run because something it needs failed earlier;
``not_applicable``
    the trust file or the evidence makes the check meaningless (no witness
    quorum required, no TSA roots trusted, a hash-only deposit with no file);
``not_checked``
    an optional check the caller did not ask for (revocation without a log).

A report is valid only when no check failed or was skipped: an explicit
``not_applicable`` or ``not_checked`` is shown but does not invalidate it.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from verifier.display import escape_json, escape_text

__all__ = [
    "FAILED",
    "LANGS",
    "NOT_APPLICABLE",
    "NOT_CHECKED",
    "PASSED",
    "SKIPPED",
    "Check",
    "Report",
    "dumps",
    "render_json",
    "render_text",
    "title",
]

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"
NOT_APPLICABLE = "not_applicable"
NOT_CHECKED = "not_checked"
LANGS = ("en", "zh")

_STATUS_WORDS = {
    PASSED: ("PASSED", "通过"),
    FAILED: ("FAILED", "未通过"),
    SKIPPED: ("SKIPPED", "未能检查"),
    NOT_APPLICABLE: ("N/A", "不适用"),
    NOT_CHECKED: ("NOT CHECKED", "未检查"),
}

# Check titles by key: (English, Chinese).
_TITLES: dict[str, tuple[str, str]] = {
    # package
    "package_members": ("package members", "证据包成员"),
    "proof_file": ("proof.txt matches the certificate", "proof.txt 与证书一致"),
    "readme": ("README.txt is the standard text", "README.txt 为标准文本"),
    # PDF certificates (verifier.pdf)
    "pdf_signature": ("PDF signature (PAdES) intact", "PDF 签名（PAdES）完好"),
    "pdf_signer": ("PDF signer trusted at signing time", "签名时 PDF 签名人可信"),
    "pdf_timestamp": ("PDF signature timestamp", "PDF 签名时间戳"),
    "pdf_updates": ("nothing appended after the signature", "签名后无追加内容"),
    "pdf_attachments": (
        "attached certificate.json and proof.txt",
        "附件 certificate.json 与 proof.txt",
    ),
    "pdf_certificate": (
        "certificate.pdf renders this certificate",
        "certificate.pdf 呈现本证书",
    ),
    "pdf_page": ("the page says what the certificate says", "页面内容与证书一致"),
    # certificate
    "certificate_id": ("certificate id", "证书编号"),
    "evidence_file": ("evidence file digest", "证据文件哈希值"),
    "leaf": ("log entry (leaf)", "日志条目（叶子）"),
    "commitment": ("commitment opening", "承诺值打开"),
    "evidence_facts": ("evidence facts", "证据信息"),
    "inclusion": ("inclusion proof", "包含证明"),
    "log_signature": ("checkpoint signature by a trusted log key", "检查点日志签名"),
    "witnesses": ("witness cosignatures (quorum)", "见证节点联署（法定数）"),
    "timestamp": ("RFC 3161 timestamp over the checkpoint", "检查点可信时间戳（RFC 3161）"),
    "timestamp_renewal": (
        "timestamp still trustworthy (renewal chain, RFC 4998)",
        "时间戳仍然可信（续期链，RFC 4998）",
    ),
    "notary_signature": ("notary signature", "公证员签名"),
    "notary_key_validity": ("notary key valid at issue time", "签发时公证员密钥有效"),
    "issuance_logged": ("issuance recorded in the log", "出证记录在日志中"),
    "revocation": ("revocation", "撤销状态"),
    # capture packages (verifier.capture)
    "capture_manifest": ("capture manifest", "取证清单"),
    "capture_artefact": ("capture artefact", "取证文件"),
    # log audit (names used by verifier.logaudit)
    "log_view": ("log view", "日志视图"),
    "checkpoint signature": ("checkpoint signature", "检查点签名"),
    "old checkpoint signature": ("old checkpoint signature", "旧检查点签名"),
    "no rollback": ("no rollback", "无回滚"),
    "entry bundles": ("entry bundles", "条目包"),
    "canonical entries": ("canonical entries", "条目为规范 JSON"),
    "entry indexes": ("entry indexes", "条目序号"),
    "hash chain": ("hash chain", "哈希链"),
    "hash tiles": ("hash tiles", "哈希瓦片"),
    "tree root": ("tree root", "树根"),
    "old tree is a prefix": ("old tree is a prefix", "旧树为前缀"),
}


def title(key: str, lang: str = "en") -> str:
    """The human title of a check key in ``lang`` (the key itself if unknown)."""
    en, zh = _TITLES.get(key, (key, key))
    return zh if lang == "zh" else en


@dataclass(frozen=True, slots=True)
class Check:
    """One check's result. ``subject`` names what it was about (a file name)."""

    key: str
    status: str
    reason: str
    reason_zh: str
    subject: str = ""

    @property
    def ok(self) -> bool:
        """True unless the check failed or could not run."""
        return self.status not in (FAILED, SKIPPED)

    def text(self, lang: str) -> str:
        """The reason in ``lang``."""
        return self.reason_zh if lang == "zh" else self.reason


@dataclass(frozen=True, slots=True)
class Report:
    """What was verified, the facts shown to the reader, and every check."""

    kind: str
    subject: str
    checks: tuple[Check, ...]
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """True when every check passed or was explicitly not applicable/not asked."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        """The checks that failed or could not run."""
        return tuple(c for c in self.checks if not c.ok)

    def check(self, key: str) -> Check:
        """The first check with ``key`` (for callers and tests)."""
        for c in self.checks:
            if c.key == key:
                return c
        raise KeyError(key)

    def extended(self, checks: Iterable[Check]) -> Report:
        """A copy with ``checks`` appended."""
        return Report(self.kind, self.subject, (*self.checks, *checks), dict(self.facts))


def render_json(report: Report, lang: str = "en") -> dict[str, Any]:
    """A JSON-ready dictionary; checks numbered from 1, reasons in both languages."""
    return {
        "valid": report.valid,
        "kind": report.kind,
        "subject": report.subject,
        "lang": lang,
        "facts": report.facts,
        "checks": [
            {
                "number": i,
                "key": c.key,
                "title": title(c.key, lang),
                "subject": c.subject,
                "status": c.status,
                "reason": c.text(lang),
                "reason_en": c.reason,
                "reason_zh": c.reason_zh,
            }
            for i, c in enumerate(report.checks, 1)
        ],
    }


_HEADINGS = {
    "certificate": ("certificate verification", "存证证书验证"),
    "package": ("evidence package verification", "证据包验证"),
    "log": ("log audit", "日志审计"),
}
_FACT_LABELS = {
    "certificate_id": ("certificate id", "证书编号"),
    "deposit_no": ("deposit number", "存证编号"),
    "evidence_id": ("evidence id", "证据编号"),
    "title": ("title", "标题"),
    "sha256": ("SHA-256", "SHA-256 哈希值"),
    "issuer": ("issued by", "签发人"),
    "issued_at": ("issued at", "签发时间"),
    "origin": ("log origin", "日志来源"),
    "size": ("log size", "日志大小"),
}


def render_text(report: Report, lang: str = "en") -> str:
    """The report as numbered lines for a person, ending with the verdict.

    Every text that comes from the input (facts such as the title, subjects,
    reasons quoting names) is escaped (:func:`verifier.display.escape_text`):
    one line per check whatever it contains, so no line can be forged and the
    verdict line is always the report's own.
    """
    zh = lang == "zh"
    colon = "：" if zh else ": "
    heading = _HEADINGS.get(report.kind, (report.kind, report.kind))[1 if zh else 0]
    subject = escape_text(report.subject)
    lines = [f"{heading}: {subject}" if not zh else f"{heading}：{subject}"]
    for key, value in report.facts.items():
        if key in _FACT_LABELS and value is not None:
            label = _FACT_LABELS[key][1 if zh else 0]
            lines.append(f"  {label}{colon}{escape_text(str(value))}")
    titles = [
        title(c.key, lang) + (f" [{escape_text(c.subject)}]" if c.subject else "")
        for c in report.checks
    ]
    width = max((_width(t) for t in titles), default=0)
    for i, (c, t) in enumerate(zip(report.checks, titles, strict=True), 1):
        word = _STATUS_WORDS[c.status][1 if zh else 0]
        pad = " " * (width - _width(t))
        lines.append(f"{i:3d}. {t}{pad}  {word}{colon}{escape_text(c.text(lang))}")
    failed = report.failed
    if report.valid:
        verdict = "结论：有效" if zh else "VALID"
    elif zh:
        verdict = f"结论：无效（{len(failed)} 项未通过，共 {len(report.checks)} 项）"
    else:
        verdict = f"INVALID ({len(failed)} of {len(report.checks)} checks failed)"
    lines.append(verdict)
    return "\n".join(lines) + "\n"


def _width(text: str) -> int:
    """Display width: CJK characters take two columns in a terminal."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def dumps(obj: Any) -> str:
    """JSON for the terminal: indented, non-ASCII kept readable, but bidi,
    zero-width and other invisible characters written as ``\\u`` escapes
    (the same JSON values)."""
    return escape_json(json.dumps(obj, indent=2, ensure_ascii=False))
