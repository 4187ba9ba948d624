"""C2SP tlog-proof (``c2sp.org/tlog-proof@v1``): an offline proof of inclusion.

Layout, one item per line (newline U+000A)::

    c2sp.org/tlog-proof@v1
    extra <base64>              (optional, opaque, unauthenticated)
    index <decimal>
    <base64 hash>               (zero or more: the RFC 9162 inclusion proof,
    ...                          from the leaf's sibling up to the root's child)
                                (empty line)
    <checkpoint>                (a C2SP signed note, verbatim, with cosignatures)

The evidence ledger puts the entry's leaf bytes in ``extra``, so the proof
alone lets a reader recompute the leaf hash; the extra data is still untrusted
and is bound to the certificate by the verifier, never believed on its own.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from verifier.errors import MalformedError
from verifier.merkle import HASH_SIZE
from verifier.note import b64decode_strict, parse_note

__all__ = ["HEADER", "TlogProof", "parse_tlog_proof"]

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 64
MAX_PROOF_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class TlogProof:
    """A parsed tlog-proof: index, inclusion hashes, checkpoint note text, extra."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def to_text(self) -> str:
        """Serialise in the exact C2SP layout."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode("ascii"))
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode("ascii") for h in self.hashes]
        return "\n".join(lines) + "\n\n" + self.checkpoint


def _decimal(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or (text != "0" and text[0] == "0"):
        raise MalformedError(f"tlog-proof: {what} {text[:40]!r} is not a canonical decimal")
    if len(text) > 19 or int(text) >= 2**63:
        raise MalformedError(f"tlog-proof: {what} does not fit in 63 bits")
    return int(text)


def parse_tlog_proof(data: bytes | str) -> TlogProof:
    """Parse a tlog-proof strictly (canonical base64 and decimals, 32-byte hashes,
    a checkpoint that parses as a signed note); raise :class:`MalformedError`."""
    if isinstance(data, bytes):
        if len(data) > MAX_PROOF_SIZE:
            raise MalformedError(f"tlog-proof: larger than {MAX_PROOF_SIZE} bytes")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedError("tlog-proof: not valid UTF-8") from e
    head, sep, checkpoint = data.partition("\n\n")
    if not sep:
        raise MalformedError("tlog-proof: no empty line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise MalformedError(f"tlog-proof: first line is not {HEADER!r}")
    pos = 1
    extra: bytes | None = None
    if pos < len(lines) and lines[pos].startswith("extra "):
        extra = b64decode_strict(lines[pos][len("extra ") :], "tlog-proof: extra")
        pos += 1
    if pos >= len(lines) or not lines[pos].startswith("index "):
        raise MalformedError("tlog-proof: missing 'index N' line")
    index = _decimal(lines[pos][len("index ") :], "index")
    hashes: list[bytes] = []
    for line in lines[pos + 1 :]:
        h = b64decode_strict(line, "tlog-proof: hash")
        if len(h) != HASH_SIZE:
            raise MalformedError(f"tlog-proof: hash has {len(h)} bytes, expected {HASH_SIZE}")
        hashes.append(h)
    if len(hashes) > MAX_PROOF_HASHES:
        raise MalformedError(f"tlog-proof: more than {MAX_PROOF_HASHES} hashes")
    parse_note(checkpoint)  # the checkpoint must at least be a well-formed note
    return TlogProof(index=index, hashes=tuple(hashes), checkpoint=checkpoint, extra=extra)
