"""Evidence listings: every filter, on both databases, answers what a plain scan would.

The read model answers filters from indexes (deposit number -> index, dates
-> index bounds, title -> the bigram search index); these tests compare it
with a brute-force filter over every row, page by page, before and after a
rebuild of the projections.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.core import Ledger
from ledger.events import evidence_deposited
from ledger.storage.queries import EvidenceFilter, EvidenceRecord, ReadModel
from ledger.storage.search import grams, normalize, query_grams

OWNERS = ("a" * 32, "b" * 32)
TITLES = (
    "Contract 12 合同",
    "contract 120 发票",
    "INVOICE 7 发票",
    "50% off_sale",
    "合同",
    "x",
    None,
    "Ärger über Verträge",
    "a\\b",
)


def _deposits(n: int) -> Iterator[object]:
    for i in range(n):
        yield evidence_deposited(
            kind=("hash", "hash", "file")[i % 3] if i % 7 else "capture",
            sha256=f"{i % 11:064x}",
            title=TITLES[i % len(TITLES)],
            owner=OWNERS[i % 2],
        )


@pytest.fixture
def listed(ledger: Ledger) -> list[EvidenceRecord]:
    ledger.append(list(_deposits(90)))  # type: ignore[arg-type]
    if ledger.store.kind == "postgresql":
        # Planner statistics, which the title search reads to pick its grams.
        ledger.store.execute("analyze evidence_search")
    reads = ReadModel(ledger.store)
    return _all(reads, None, EvidenceFilter())


def _all(
    reads: ReadModel, owner: str | None, f: EvidenceFilter, limit: int = 7
) -> list[EvidenceRecord]:
    """Every matching row, fetched page by page (keyset on the index)."""
    out: list[EvidenceRecord] = []
    after = 0
    while True:
        page = reads.evidence_page(owner, f, after, limit)
        out += page
        if len(page) < limit:
            return out
        after = page[-1].index + 1


def _expected(rows: list[EvidenceRecord], owner: str | None, f: EvidenceFilter) -> list[int]:
    def keep(r: EvidenceRecord) -> bool:
        return (
            (owner is None or r.owner == owner)
            and (f.since is None or r.time >= f.since)
            and (f.until is None or r.time < f.until)
            and (f.sha256 is None or r.sha256 == f.sha256)
            and (f.deposit_no is None or r.deposit_no == f.deposit_no)
            and (f.kind is None or r.kind == f.kind)
            and (f.title is None or normalize(f.title) in normalize(r.title or ""))
        )

    return [r.index for r in rows if keep(r)]


def _filters(rows: list[EvidenceRecord]) -> list[EvidenceFilter]:
    middle = rows[len(rows) // 2]
    day = middle.time[:10]
    return [
        EvidenceFilter(),
        *(EvidenceFilter(title=t) for t in ("contract", "CONTRACT 12", "合同", "发票", "同")),
        *(EvidenceFilter(title=t) for t in ("50%", "off_", "%", "_", "ärger", "a\\b", "zzz")),
        EvidenceFilter(title="x"),
        EvidenceFilter(sha256=middle.sha256),
        EvidenceFilter(sha256=middle.sha256, title="contract"),
        EvidenceFilter(deposit_no=middle.deposit_no),
        EvidenceFilter(deposit_no=middle.deposit_no, title="nothing"),
        EvidenceFilter(deposit_no="EL-20000101-0000000003"),
        EvidenceFilter(kind="capture"),
        EvidenceFilter(kind="file", title="发票"),
        EvidenceFilter(since=f"{day}T00:00:00Z", until=f"{day}T23:59:59.999999Z"),
        EvidenceFilter(since=middle.time),
        EvidenceFilter(until=middle.time),
        EvidenceFilter(since="2001-01-01T00:00:00Z", until="2001-01-02T00:00:00Z"),
        EvidenceFilter(since="2999-01-01T00:00:00Z"),
        EvidenceFilter(since=middle.time, kind="hash", title="contract"),
    ]


def test_every_filter_matches_a_scan(ledger: Ledger, listed: list[EvidenceRecord]) -> None:
    reads = ReadModel(ledger.store)
    assert len(listed) == 90
    checked = 0
    for f in _filters(listed):
        for owner in (None, *OWNERS):
            want = _expected(listed, owner, f)
            assert [r.index for r in _all(reads, owner, f)] == want, (owner, f)
            checked += bool(want)
    assert checked > 30  # most cases match something


def test_rebuild_keeps_the_title_search(ledger: Ledger, listed: list[EvidenceRecord]) -> None:
    reads = ReadModel(ledger.store)
    f = EvidenceFilter(title="发票")
    before = [r.index for r in _all(reads, OWNERS[0], f)]
    assert before
    ledger.store.rebuild()
    assert [r.index for r in _all(reads, OWNERS[0], f)] == before
    # New deposits after the rebuild are searchable at once.
    ledger.append(
        [evidence_deposited(kind="hash", sha256="f" * 64, title="新的发票", owner=OWNERS[0])]
    )
    assert len(_all(reads, OWNERS[0], f)) == len(before) + 1


def test_query_grams() -> None:
    assert grams("abab") == ["61x62", "62x61"]
    assert query_grams(normalize("合同")) == [f"{ord('合'):x}x{ord('同'):x}"]
    assert query_grams("x") == []
    assert len(query_grams("abcdefghijklmnopqrstuvwxyz0123456789")) == 32
