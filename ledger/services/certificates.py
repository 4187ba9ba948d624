"""Certificates (在线出证, 在线验真): issue, read, package, revoke, status, verify.

Who may do what: notaries issue (signed with their own key); the issuing
notary or an admin revokes; whoever may see a certificate's evidence may read
the certificate and its package; the status of a certificate and
verification are public. The formats and checks are the verifier's
(:mod:`verifier.certificate`, :mod:`verifier.package`); the producer
functions that build and record certificates are in :mod:`ledger.certificates`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ledger.certificates import (
    IssuedCertificate,
    RequestedCertificate,
    certificate_status,
    get_certificate,
    issue_certificate,
    log_status,
    package_certificate,
    reject_request,
    request_certificate,
    revoke_certificate,
    trust_export,
    write_certificate_package,
)
from ledger.errors import Forbidden, InvalidInput, NotFound
from ledger.renewal import evidence_records
from ledger.services.evidence import EvidenceService
from ledger.services.policy import Actor, authorize, sees_all
from ledger.storage.queries import CertificateRecord, ReadModel, RequestRecord
from verifier.certificate import (
    MAX_CERTIFICATE_SIZE,
    Certificate,
    LogStatus,
    verify_certificate,
)
from verifier.digest import digest_file
from verifier.package import verify_package
from verifier.report import Report
from verifier.status import CertificateStatus
from verifier.trust import Trust, load_trust

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = ["CertificateService", "RequestPage", "Revocation"]


@dataclass(frozen=True, slots=True)
class RequestPage:
    """One page of certificate requests; ``next_cursor`` None on the last."""

    items: tuple[RequestRecord, ...]
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class Revocation:
    certificate_id: str
    index: int
    time: str

    def to_json(self) -> dict[str, Any]:
        return {"certificate_id": self.certificate_id, "index": self.index, "time": self.time}


class CertificateService:
    """Certificates for one caller at a time."""

    def __init__(self, ledger: Ledger, reads: ReadModel, evidence: EvidenceService) -> None:
        self._ledger = ledger
        self._reads = reads
        self._evidence = evidence

    def _record(self, certificate_id: str) -> CertificateRecord:
        record = self._reads.certificate(certificate_id)
        if record is None:
            raise NotFound(f"certificate: {certificate_id} not found")
        return record

    def visible(self, actor: Actor, certificate_id: str) -> CertificateRecord:
        """The certificate if ``actor`` may see its evidence; NotFound otherwise."""
        authorize(actor, "certificate.read")
        record = self._record(certificate_id)
        try:
            self._evidence.get(actor, record.evidence_id)
        except NotFound:
            raise NotFound(f"certificate: {certificate_id} not found") from None
        return record

    def issue(
        self,
        actor: Actor,
        evidence_id: str,
        statement: str | None = None,
        *,
        notary: str | None = None,
        request_id: str | None = None,
    ) -> IssuedCertificate:
        """Issue a certificate for sealed evidence (closing ``request_id`` if
        given). A notary signs with their own key; the operator names the
        notary (``notary``)."""
        authorize(actor, "certificate.issue")
        if not actor.is_operator:
            notary = actor.account_id
        elif notary is None:
            raise InvalidInput("certificate: name the issuing notary")
        if self._reads.evidence(evidence_id) is None:
            raise NotFound(f"evidence: {evidence_id} not found")
        return issue_certificate(self._ledger, evidence_id, notary, statement, request_id)

    # -- requests (the notary's queue) ---------------------------------------------
    def request(
        self, actor: Actor, evidence_id: str, note: str | None = None
    ) -> RequestedCertificate:
        """A rights holder asks for a certificate of their own sealed evidence."""
        authorize(actor, "certificate.request")
        self._evidence.get(actor, evidence_id)  # their own (NotFound otherwise)
        requester = actor.account_id or "operator"
        return request_certificate(self._ledger, evidence_id, requester, note)

    def get_request(self, actor: Actor, request_id: str) -> RequestRecord:
        """A request its requester, or a role that sees everything, may read."""
        authorize(actor, "certificate.read")
        record = self._reads.request(request_id)
        if record is None or not (sees_all(actor) or record.requester == actor.account_id):
            raise NotFound(f"certificate request: {request_id} not found")
        return record

    def requests(
        self, actor: Actor, status: str | None = None, cursor: int = 0, limit: int = 100
    ) -> RequestPage:
        """Requests in log order: all of them for notaries (the queue, with
        ``status="requested"``), auditors and admins; one's own for rights holders."""
        authorize(actor, "certificate.read")
        limit = max(1, min(limit, 1000))
        requester = None if sees_all(actor) else actor.account_id
        rows = self._reads.requests_page(requester, status, cursor, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return RequestPage(tuple(rows), rows[-1].index + 1 if more else None)

    def reject(self, actor: Actor, request_id: str, reason: str) -> dict[str, Any]:
        """A notary rejects an open request, with a reason (kept private)."""
        authorize(actor, "certificate.review")
        return reject_request(self._ledger, request_id, reason, by=actor.account_id or None)

    def issued(
        self, actor: Actor, *, issued_by_me: bool = False, cursor: int = 0, limit: int = 100
    ) -> list[CertificateRecord]:
        """Certificates in log order: of one's own evidence for rights holders;
        all (or, with ``issued_by_me``, those one issued) for the other roles."""
        authorize(actor, "certificate.read")
        limit = max(1, min(limit, 1000))
        owner = None if sees_all(actor) else actor.account_id
        issuer = actor.account_id if issued_by_me and actor.account_id else None
        return self._reads.certificates_page(issuer, owner, cursor, limit)

    def get(self, actor: Actor, certificate_id: str) -> bytes:
        """The certificate's exact bytes (RFC 8785 canonical JSON, as signed)."""
        self.visible(actor, certificate_id)
        return get_certificate(self._ledger, certificate_id)

    def _private_allowed(self, actor: Actor, certificate_id: str) -> None:
        """Private capture artefacts (WARC records and screenshots holding secrets
        typed during a capture) go only to the rights holder who owns the
        evidence, or the operator; nobody else, whatever their role."""
        record = self.visible(actor, certificate_id)
        if actor.is_operator:
            return
        evidence = self._evidence.get(actor, record.evidence_id)
        if evidence.owner is None or evidence.owner != actor.account_id:
            raise Forbidden(
                "certificate.package: private artefacts are only for the rights holder "
                "who owns the evidence"
            )

    def write_package(
        self, actor: Actor, certificate_id: str, out: BinaryIO, *, include_private: bool = False
    ) -> None:
        """Write the evidence package (证据包) to a seekable stream; with
        ``include_private``, a capture's private artefacts too (owner only)."""
        if include_private:
            self._private_allowed(actor, certificate_id)
        else:
            self.visible(actor, certificate_id)
        write_certificate_package(
            self._ledger, certificate_id, out, include_private=include_private
        )

    def pdf(self, actor: Actor, certificate_id: str) -> bytes:
        """The signed PDF certificate (PDF/A-3b, PAdES) of a visible certificate."""
        from ledger.pdfcert.service import certificate_pdf

        self.visible(actor, certificate_id)
        return certificate_pdf(self._ledger, certificate_id)

    def package_to(
        self, actor: Actor, certificate_id: str, path: Path, *, include_private: bool = False
    ) -> Path:
        """Write the evidence package to ``path`` atomically (temporary file, fsync,
        rename); ``include_private`` as for :meth:`write_package`."""
        if include_private:
            self._private_allowed(actor, certificate_id)
        else:
            self.visible(actor, certificate_id)
        return package_certificate(
            self._ledger, certificate_id, path, include_private=include_private
        )

    def revoke(self, actor: Actor, certificate_id: str, reason: str) -> Revocation:
        """Revoke a certificate: its issuing notary or an admin (or the operator)."""
        authorize(actor, "certificate.revoke")
        record = self._record(certificate_id)
        if actor.role == "notary" and record.account_id != actor.account_id:
            raise Forbidden("certificate.revoke: only the issuing notary or an admin may revoke")
        done = revoke_certificate(self._ledger, certificate_id, reason, by=actor.account_id or None)
        return Revocation(done["certificate_id"], int(done["index"]), str(done["time"]))

    def status(self, certificate_id: str) -> CertificateStatus:
        """Public status of a certificate (no private data beyond the reason a
        revocation gives), read from the log by the verifier's fold."""
        return certificate_status(self._ledger, certificate_id)

    def deposit_no(self, status: CertificateStatus) -> str | None:
        """存证编号 of a certificate's evidence (public: index and date only)."""
        if status.evidence_id is None:
            return None
        record = self._reads.evidence(status.evidence_id)
        return None if record is None else record.deposit_no

    # -- 在线验真 ------------------------------------------------------------
    def trust(self) -> Trust:
        """This ledger's own trust file, parsed as the verifier parses any."""
        return load_trust(json.dumps(trust_export(self._ledger)).encode("utf-8"))

    def log_status(self, cert: Certificate) -> LogStatus:
        """What this ledger's own log says about a certificate and its issuer's key."""
        return log_status(self._ledger, cert)

    def verify_package(self, path: Path, name: str | None = None) -> Report:
        """Public: an evidence package checked exactly as ``evidence-verify
        package`` checks it, with this ledger's trust file and its log for
        revocation. Malformed input raises the verifier's error."""
        del name
        return verify_package(path, self.trust(), log_status=self.log_status).extended(())

    def verify_certificate(
        self, certificate: Path, evidence: list[Path], name: str | None = None
    ) -> Report:
        """Public: a certificate and its evidence files, checked as
        ``evidence-verify certificate`` checks them, with the evidence records
        this ledger holds for the certificate's checkpoint token (renewals made
        after the certificate was issued)."""
        with certificate.open("rb") as f:  # from_json refuses more than the limit
            cert = Certificate.from_json(f.read(MAX_CERTIFICATE_SIZE + 1))
        files = [digest_file(p) for p in evidence]
        records: list[bytes] = []
        if cert.checkpoint_body.origin == self._ledger.config.origin:
            records = evidence_records(
                self._ledger, cert.checkpoint_body.size, cert.timestamp_token
            )
        checks = verify_certificate(
            cert, self.trust(), files, log=self.log_status(cert), evidence_records=records
        )
        return Report("certificate", name or certificate.name, tuple(checks), cert.facts())
