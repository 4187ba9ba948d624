"""Title search: the substring index kept beside the evidence projection.

A title search is a case-insensitive substring match (``str.lower`` on both
sides, the same on every database). Scanning every title of a rights holder
with ``LIKE '%...%'`` costs a full pass over their deposits, so each titled
deposit also gets a row in ``evidence_search``: its lowercased title and the
set of its **bigrams** (every two consecutive characters). A query of two
characters or more can only match titles holding all of its bigrams; the
database finds those through an inverted index (SQLite: an FTS5 table;
PostgreSQL: a GIN index over a ``text[]`` column, no extension needed), in
log order, and checks the substring on the lowercased title it stored.

Bigrams rather than trigrams because Chinese words are often two characters
(合同, 发票): a trigram index cannot answer them. A one-character query has
no bigram and falls back to the scan.

Each bigram becomes one ASCII token (the hex code points of its two
characters, ``"63x6f"`` for ``co``), which every tokenizer keeps whole.
Rows are written with the evidence rows, in the same transaction, and
dropped and replayed with the projections (:meth:`SqlStore.rebuild`); a
change of their form raises ``ledger.projections.TITLE_SEARCH_VERSION``, so
that stores replay on open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_QUERY_GRAMS", "SearchSql", "grams", "normalize", "query_grams", "rows"]

MAX_QUERY_GRAMS = 32
"""Bigrams of a query used to find candidates: enough to be selective, and a
bounded query; the substring check on the candidates decides."""


def normalize(title: str) -> str:
    """The form both titles and queries are compared in."""
    return title.lower()


def _token(a: str, b: str) -> str:
    return f"{ord(a):x}x{ord(b):x}"


def grams(norm: str) -> list[str]:
    """The distinct bigram tokens of a normalised title, in first-seen order."""
    seen: dict[str, None] = {}
    for i in range(len(norm) - 1):
        seen.setdefault(_token(norm[i], norm[i + 1]), None)
    return list(seen)


def query_grams(norm: str) -> list[str]:
    """Bigram tokens a title must hold to contain ``norm`` (empty: scan instead).

    Every bigram of a substring is a bigram of the title, so any subset is a
    sound filter; the first :data:`MAX_QUERY_GRAMS` are kept.
    """
    return grams(norm)[:MAX_QUERY_GRAMS]


def rows(evidence: list[tuple[Any, ...]], idx_at: int, title_at: int) -> list[tuple[int, str, str]]:
    """``evidence_search`` rows ``(idx, norm, space-separated grams)`` of
    evidence projection rows (those with a title)."""
    out = []
    for r in evidence:
        title = r[title_at]
        if title:
            norm = normalize(title)
            out.append((int(r[idx_at]), norm, " ".join(grams(norm))))
    return out


@dataclass(frozen=True, slots=True)
class SearchSql:
    """How a dialect joins the evidence (alias ``e``) with its search rows
    (alias ``s``, column ``norm``): ``source`` is the FROM clause, ``where``
    the index condition on ``params`` (``1 = 1`` when there is none),
    ``order`` the column giving log order, and ``key`` the search rows' own
    index column. Index bounds go on both sides of the join: a planner does
    not carry them across it."""

    source: str
    where: str
    params: tuple[Any, ...]
    order: str
    key: str
