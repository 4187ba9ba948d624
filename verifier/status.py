"""The fold from log records to the status of certificates, requests and keys.

One definition, used by ``evidence-verify log`` (over an audited export:
public records only), by the ledger's status route and its ``POST
/v1/verify`` (over the ledger's own records, with their private bodies), so
the three cannot disagree. Records are folded in increasing index order;
each is parsed strictly with the event catalogue (:mod:`verifier.events`).

The rules:

(1) a certificate is issued by its first ``certificate.issued``;
(2) it is revoked by its first ``certificate.revoked``, wherever that lies
    (a revocation counts even if the log names it before the issue: fail
    closed); later revocations change nothing;
(3) a key is registered by its first ``key.registered`` and revoked by its
    first ``key.revoked``;
(4) a request is open from its ``certificate.requested`` until the first of
    ``certificate.request_rejected`` (rejected, with the reason) or a
    ``certificate.issued`` naming it (issued, with the certificate id);
    closings of an unknown or already closed request change nothing;
(5) an event of these types that the catalogue refuses is kept in
    :attr:`StatusFold.malformed` and changes no status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from verifier.certificate import Certificate, LogStatus
from verifier.events import (
    CertificateIssued,
    CertificateRequested,
    CertificateRequestRejected,
    CertificateRevoked,
    EventError,
    KeyRegistered,
    KeyRevoked,
    parse_event,
)
from verifier.record import Record

__all__ = [
    "CERTIFICATE_ISSUED",
    "CERTIFICATE_REVOKED",
    "FOLDED_TYPES",
    "REQUEST_ISSUED",
    "REQUEST_OPEN",
    "REQUEST_REJECTED",
    "CertificateStatus",
    "KeyStatus",
    "Malformed",
    "RequestStatus",
    "Revocation",
    "StatusFold",
]

CERTIFICATE_ISSUED = "issued"
CERTIFICATE_REVOKED = "revoked"
REQUEST_OPEN = "requested"
REQUEST_REJECTED = "rejected"
REQUEST_ISSUED = "issued"

FOLDED_TYPES = frozenset(
    cls.TYPE
    for cls in (
        CertificateIssued,
        CertificateRevoked,
        CertificateRequested,
        CertificateRequestRejected,
        KeyRegistered,
        KeyRevoked,
    )
)
"""The event types the fold reads; other records are skipped."""


@dataclass(frozen=True, slots=True)
class Revocation:
    """A revocation's log index and time; ``reason`` and ``by`` only when the
    private body was given (they are never published)."""

    index: int
    time: str
    reason: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class CertificateStatus:
    """What the log says about one certificate id."""

    certificate_id: str
    issued_index: int | None = None
    issued_time: str | None = None
    evidence_id: str | None = None
    issuer_account_id: str | None = None
    request_id: str | None = None
    revoked: Revocation | None = None

    @property
    def status(self) -> str | None:
        """``revoked``, ``issued``, or None when the log holds no issue nor revocation."""
        if self.revoked is not None:
            return CERTIFICATE_REVOKED
        return CERTIFICATE_ISSUED if self.issued_index is not None else None


@dataclass(frozen=True, slots=True)
class RequestStatus:
    """A certificate request: open (``requested``), ``rejected`` or ``issued``.

    ``requester``, ``note``, ``reason`` and ``by`` are private: None when the
    records were folded without their private bodies.
    """

    request_id: str
    evidence_id: str
    index: int
    time: str
    status: str = REQUEST_OPEN
    requester: str | None = None
    note: str | None = None
    closed_index: int | None = None
    closed_time: str | None = None
    reason: str | None = None
    by: str | None = None
    certificate_id: str | None = None


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """A verifier key's registration and revocation in the log."""

    vkey: str
    account_id: str | None = None
    registered_index: int | None = None
    revoked: Revocation | None = None


@dataclass(frozen=True, slots=True)
class Malformed:
    """A record of a folded type whose body the catalogue refuses."""

    index: int
    type: str
    body: Mapping[str, Any]
    error: str


class StatusFold:
    """Folds records, in increasing index order, into certificate, request and
    key statuses (see the module's rules)."""

    def __init__(self) -> None:
        self.certificates: dict[str, CertificateStatus] = {}
        self.requests: dict[str, RequestStatus] = {}
        self.keys: dict[str, KeyStatus] = {}
        self.malformed: list[Malformed] = []
        self._last = -1

    def add(self, record: Record, private: Mapping[str, Any] | None = None) -> None:
        """Fold one record, with its private body if known."""
        if record.index <= self._last:
            raise ValueError(
                f"status: record {record.index} folded after record {self._last} (out of order)"
            )
        self._last = record.index
        if record.type not in FOLDED_TYPES:
            return
        try:
            event = parse_event(record.type, record.body, private)
        except EventError as e:  # (5)
            self.malformed.append(Malformed(record.index, record.type, record.body, str(e)))
            return
        i, t = record.index, record.time
        if isinstance(event, CertificateIssued):
            self._issued(event, i, t)
        elif isinstance(event, CertificateRevoked):
            cert = self._certificate(event.certificate_id)
            if cert.revoked is None:  # (2)
                rp = event.private
                revoked = Revocation(i, t, rp.reason if rp else None, rp.by if rp else None)
                self.certificates[cert.certificate_id] = replace(cert, revoked=revoked)
        elif isinstance(event, KeyRegistered):
            key = self.keys.get(event.vkey) or KeyStatus(event.vkey)
            if key.registered_index is None:  # (3)
                self.keys[event.vkey] = replace(
                    key, account_id=event.account_id, registered_index=i
                )
        elif isinstance(event, KeyRevoked):
            key = self.keys.get(event.vkey) or KeyStatus(event.vkey, account_id=event.account_id)
            if key.revoked is None:
                self.keys[event.vkey] = replace(key, revoked=Revocation(i, t))
        elif isinstance(event, CertificateRequested):
            if event.request_id not in self.requests:
                qp = event.private
                self.requests[event.request_id] = RequestStatus(
                    event.request_id,
                    event.evidence_id,
                    i,
                    t,
                    requester=qp.requester if qp else None,
                    note=qp.note if qp else None,
                )
        elif isinstance(event, CertificateRequestRejected):
            jp = event.private
            self._close(
                event.request_id,
                status=REQUEST_REJECTED,
                closed_index=i,
                closed_time=t,
                reason=jp.reason if jp else None,
                by=jp.by if jp else None,
            )

    def extend(self, records: Iterable[tuple[Record, Mapping[str, Any] | None]]) -> StatusFold:
        """Fold ``(record, private body or None)`` pairs; return ``self``."""
        for record, private in records:
            self.add(record, private)
        return self

    def _certificate(self, certificate_id: str) -> CertificateStatus:
        return self.certificates.get(certificate_id) or CertificateStatus(certificate_id)

    def _issued(self, event: CertificateIssued, index: int, time: str) -> None:
        cert = self._certificate(event.certificate_id)
        if cert.issued_index is not None:  # (1)
            return
        self.certificates[cert.certificate_id] = replace(
            cert,
            issued_index=index,
            issued_time=time,
            evidence_id=event.evidence_id,
            issuer_account_id=event.account_id,
            request_id=event.request_id,
        )
        if event.request_id is not None:  # (4)
            self._close(
                event.request_id,
                status=REQUEST_ISSUED,
                closed_index=index,
                closed_time=time,
                by=event.account_id,
                certificate_id=event.certificate_id,
            )

    def _close(self, request_id: str, **changes: Any) -> None:
        request = self.requests.get(request_id)
        if request is not None and request.closed_index is None:  # (4)
            self.requests[request_id] = replace(request, **changes)

    # -- answers -----------------------------------------------------------

    def certificate(self, certificate_id: str) -> CertificateStatus:
        """The status of a certificate id (empty if the log never names it)."""
        return self._certificate(certificate_id)

    def request(self, request_id: str) -> RequestStatus | None:
        """The status of a request, or None if the log holds no such request."""
        return self.requests.get(request_id)

    def key(self, vkey: str) -> KeyStatus:
        """The status of a verifier key (empty if the log never names it)."""
        return self.keys.get(vkey) or KeyStatus(vkey)

    def revocations(self) -> list[tuple[CertificateStatus, Revocation]]:
        """Every revoked certificate with its (first) revocation, by log index."""
        out = [(c, c.revoked) for c in self.certificates.values() if c.revoked is not None]
        return sorted(out, key=lambda cr: cr[1].index)

    def naming(self, certificate_id: str, vkey: str) -> list[Malformed]:
        """Malformed records whose body names this certificate or this key."""
        return [
            m
            for m in self.malformed
            if m.body.get("certificate_id") == certificate_id or m.body.get("vkey") == vkey
        ]

    def log_status(self, cert: Certificate, origin: str, size: int) -> LogStatus:
        """What the folded records say about ``cert`` and its issuer's key, as
        :class:`~verifier.certificate.LogStatus` for checks (13) and (14)."""
        vkey = cert.issuer_vkey.to_text()
        bad = self.naming(cert.certificate_id, vkey)
        if bad:
            m = bad[0]
            return LogStatus(
                origin=origin,
                size=size,
                error=f"the {m.type} event at index {m.index} is malformed ({m.error})",
            )
        c = self.certificate(cert.certificate_id)
        k = self.key(vkey)
        return LogStatus(
            origin=origin,
            size=size,
            issued_index=c.issued_index,
            revoked=None if c.revoked is None else (c.revoked.index, c.revoked.time),
            key_registered=k.registered_index,
            key_revoked=None if k.revoked is None else (k.revoked.index, k.revoked.time),
        )
