"""The log service: recent publications in one read, newest first."""

from __future__ import annotations

from ledger.core import Ledger
from ledger.events import evidence_deposited
from ledger.services import Services


def test_recent_publications_newest_first(ledger: Ledger) -> None:
    for i in range(4):
        ledger.append([evidence_deposited(kind="hash", sha256=f"{i:064x}")])
        ledger.seal()
    every = ledger.store.publications()
    assert len(every) == 5  # the empty checkpoint and one per seal
    log = Services(ledger).log
    assert [p.size for p in log.recent(3)] == [p.size for p in every[::-1][:3]]
    assert log.recent(3)[0] == every[-1]  # notes and tokens as published
    assert log.recent(100) == every[::-1]
    assert log.recent(0) == []
    assert log.recent(-5) == []
