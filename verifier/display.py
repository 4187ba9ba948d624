"""Showing text that someone else wrote: every character that could hide,
reorder or forge what a reader sees becomes a visible escape.

A depositor chooses titles, file names, descriptions and notes. Printed raw,
a newline in a title can start a forged report line ("11. ... PASSED",
"VALID"), a right-to-left override (U+202E) makes ``invoice\\u202efdp.exe``
read as ``invoiceexe.pdf``, and zero-width characters make two different
names look alike. :func:`escape_text` is the one definition used wherever
such text is shown: the verifier's reports, the ledger's command line, the
web pages and the PDF certificate.

Escaped (Unicode general categories): ``Cc`` (C0 and C1 controls, DEL),
``Cf`` (format characters: bidi embeddings, overrides and isolates, zero-width
space/joiners, BOM, soft hyphen...), ``Zl`` and ``Zp`` (line and paragraph
separators), ``Cs``, ``Co`` and ``Cn`` (surrogates, private use, unassigned),
and the backslash itself, so that an escape in the output can only have come
from this function. Letters of every script, CJK punctuation and ordinary
spaces are left as they are.
"""

from __future__ import annotations

import unicodedata

__all__ = ["UNSAFE_CATEGORIES", "escape_json", "escape_text", "is_unsafe"]

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def is_unsafe(ch: str) -> bool:
    """Whether one character must not be shown raw (see the module doc)."""
    return ch in _SHORT or unicodedata.category(ch) in UNSAFE_CATEGORIES


def _escape(ch: str) -> str:
    short = _SHORT.get(ch)
    if short is not None:
        return short
    cp = ord(ch)
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def escape_text(text: str, keep: str = "") -> str:
    """``text`` with every unsafe character as a visible escape (``\\n``,
    ``\\x85``, ``\\u202e``, ``\\\\``...); safe text comes back unchanged.
    Characters in ``keep`` stay raw (a page keeps the newlines of a ``<pre>``)."""
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text  # the common case, without a per-character walk
    return "".join(_escape(c) if is_unsafe(c) and c not in keep else c for c in text)


def escape_json(text: str) -> str:
    """JSON text (from ``json.dumps``) with the unsafe characters that it left
    raw (bidi controls, zero-width, separators) written as ``\\uXXXX``
    escapes: the same JSON value, but safe to print on a terminal."""
    out = []
    for c in text:
        if c not in _SHORT and is_unsafe(c):
            cp = ord(c)
            if cp >= 0x10000:
                cp -= 0x10000
                out.append(f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}")
            else:
                out.append(f"\\u{cp:04x}")
        else:
            out.append(c)
    return "".join(out)
