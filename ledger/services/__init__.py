"""Services: every rule of the ledger, once, for every edge.

The JSON API, the web pages and the command line call these services and
nothing below them: who may do and see what (:mod:`ledger.services.policy`),
deposits and their idempotency, evidence listings, certificates, accounts,
captures, the trust file, the audit and the rate limits of public routes.
:class:`Services` builds them all over one open :class:`~ledger.core.Ledger`
(the composition root).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.services.accounts import AccountService
from ledger.services.captures import CaptureService
from ledger.services.certificates import CertificateService, RequestPage, Revocation
from ledger.services.deposits import (
    DepositPlan,
    DepositResult,
    DepositService,
    FileDeposit,
    HashDeposit,
    Receipt,
)
from ledger.services.evidence import Content, EvidencePage, EvidenceService, Inclusion
from ledger.services.interactive import InteractiveService
from ledger.services.limits import RateLimiter, RateLimits
from ledger.services.log import Consistency, LogService
from ledger.services.operations import Figures, OperationsService, Readiness
from ledger.services.passwords import PasswordService
from ledger.services.policy import OPERATOR, READERS, ROLES, SEE_ALL, Actor, authorize
from ledger.services.renewals import RenewalService
from ledger.storage.queries import EvidenceFilter, EvidenceRecord, ReadModel

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = [
    "OPERATOR",
    "READERS",
    "ROLES",
    "SEE_ALL",
    "Actor",
    "Consistency",
    "Content",
    "DepositPlan",
    "DepositResult",
    "EvidenceFilter",
    "EvidencePage",
    "EvidenceRecord",
    "Figures",
    "FileDeposit",
    "HashDeposit",
    "Inclusion",
    "RateLimiter",
    "RateLimits",
    "Readiness",
    "Receipt",
    "RenewalService",
    "RequestPage",
    "Revocation",
    "Services",
    "authorize",
]


class Services:
    """All services over one open ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.reads = ReadModel(ledger.store)
        self.evidence = EvidenceService(ledger, self.reads)
        self.deposits = DepositService(ledger, self.reads, self.evidence)
        self.certificates = CertificateService(ledger, self.reads, self.evidence)
        self.accounts = AccountService(ledger, self.reads)
        self.captures = CaptureService(ledger)
        self.interactive = InteractiveService(ledger)
        self.log = LogService(ledger)
        self.limits = RateLimits.of(ledger)
        self.renewals = RenewalService(ledger)
        self.operations = OperationsService(ledger, self.reads)
        self.passwords = PasswordService(ledger, self.reads)

    def trust(self) -> dict[str, Any]:
        """Public: the ``evidence-trust/v1`` trust file a court can pin."""
        from ledger.certificates import trust_export

        return trust_export(self.ledger)

    def stats(self) -> dict[str, Any]:
        """Operational figures of the ledger (sizes, lag, anchoring, storage)."""
        ledger, store = self.ledger, self.ledger.store
        size = store.size()
        cp = store.latest_checkpoint()
        pub = store.latest_publication()
        storage = store.storage_bytes()
        cfg = ledger.config
        return {
            "origin": cfg.origin,
            "backend": store.kind,
            "size": size,
            "checkpoint_size": cp.size if cp else 0,
            "pending": size - (cp.size if cp else 0),
            "published_size": pub.size if pub else 0,
            "anchoring": {
                "witnesses": [w.name for w in cfg.witnesses],
                "quorum": cfg.quorum,
                "tsa": cfg.tsa.url if cfg.tsa else None,
                "tsas": [t.url for t in cfg.tsas],
                "tsa_quorum": cfg.tsa_quorum,
                "last_error": ledger.last_anchor_error,
            },
            "checkpoints": self.reads.count("checkpoints"),
            "storage_bytes": storage,
            "bytes_per_entry": round(storage / size, 1) if size else None,
            "projections": {t: self.reads.count(t) for t in ("evidence", "accounts", "keys")},
        }

    def close(self) -> None:
        self.interactive.shutdown()
        self.captures.shutdown()
