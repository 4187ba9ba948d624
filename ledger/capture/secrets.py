"""Texts typed as secrets during a process capture, and where they must not appear.

A ``type`` step with ``secret: true`` (a password, a one-time code) must reach
the page, but not the evidence that becomes public: the manifest and its
action log, the public WARC, the screenshots, the PDF and the video. This
module finds a secret in the forms it takes on the wire and in documents
(as typed, percent-encoded as a form or URL sends it, JSON- or HTML-escaped)
and replaces it in text. The browser module masks it in pixels.
"""

from __future__ import annotations

import html
import json
import re
import zlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from ledger.capture.fetch import Exchange

__all__ = ["KEEP", "REDACTED", "Secrets"]

REDACTED = "[secret]"
KEEP = frozenset(
    {"sha256", "sm3", "sha256_fingerprint", "serial_number", "time", "not_before", "not_after"}
)
"""Members whose values are digests or times, never redacted (nor ``*_at``)."""
_HEX = re.compile(r"%[0-9A-F]{2}")


def _forms(secret: str) -> set[str]:
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
    }
    # Browsers and servers may write the hex digits of %XX in either case.
    forms |= {_HEX.sub(lambda m: m.group(0).lower(), f) for f in forms}
    return {f for f in forms if f}


class Secrets:
    """The secrets of one capture (possibly none) and their encoded forms."""

    def __init__(self, secrets: Iterable[str]) -> None:
        texts = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.count = len(texts)
        forms: set[str] = set()
        for s in texts:
            forms |= _forms(s)
        # Longest first, so that a form containing another is replaced whole.
        self._text = sorted(forms, key=len, reverse=True)
        self._bytes = [f.encode("utf-8") for f in self._text]

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, secret: str) -> None:
        """Also treat ``secret`` as one (a text typed as secret during an
        interactive capture); what was recorded before it was typed cannot
        hold it."""
        if not secret or secret in self._text:
            return
        self.count += 1
        forms = set(self._text) | _forms(secret)
        self._text = sorted(forms, key=len, reverse=True)
        self._bytes = [f.encode("utf-8") for f in self._text]

    def redact(self, text: str) -> str:
        """``text`` with every form of every secret replaced by ``[secret]``."""
        for form in self._text:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def redact_json(self, value: Any) -> Any:
        """A JSON value with :meth:`redact` applied to every string in it, except
        the values of members that hold digests or times (:data:`KEEP`): a short
        secret may happen to occur in those, and they must stay exact."""
        if not self:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self.redact_json(v) for v in value]
        if isinstance(value, dict):
            return {
                self.redact(str(k)): v if k in KEEP or k.endswith("_at") else self.redact_json(v)
                for k, v in value.items()
            }
        return value

    def found_in(self, data: bytes) -> bool:
        """Whether any form of any secret occurs in ``data``."""
        return any(form in data for form in self._bytes)

    def carried_by(self, ex: Exchange) -> bool:
        """Whether an exchange carries a secret: in its URL, request headers or
        body, response headers, or response body (content coding undone)."""
        if not self:
            return False
        parts = [ex.url.encode("utf-8"), ex.request_body, ex.body]
        parts += [v.encode("utf-8") for _, v in (*ex.request_headers, *ex.response_headers)]
        coding = (ex.header("content-encoding") or "").strip().lower()
        if coding in ("gzip", "x-gzip", "deflate") and ex.body:
            try:
                wbits = 16 + zlib.MAX_WBITS if "gzip" in coding else zlib.MAX_WBITS
                if coding == "deflate" and ex.body[:1] != b"\x78":
                    wbits = -zlib.MAX_WBITS
                parts.append(zlib.decompressobj(wbits).decompress(ex.body, 64 << 20))
            except zlib.error:
                pass
        return any(self.found_in(p) for p in parts)
