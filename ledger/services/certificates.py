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
    get_certificate,
    issue_certificate,
    package_certificate,
    revoke_certificate,
    trust_export,
    write_certificate_package,
)
from ledger.errors import Forbidden, InvalidInput, NotFound
from ledger.services.evidence import EvidenceService
from ledger.services.policy import Actor, authorize
from ledger.storage.queries import CertificateRecord, ReadModel
from verifier.certificate import Certificate, LogStatus, verify_certificate
from verifier.digest import digest_file
from verifier.package import verify_package
from verifier.report import Report
from verifier.trust import Trust, load_trust

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = ["CertificateService", "CertificateStatus", "Revocation"]


@dataclass(frozen=True, slots=True)
class CertificateStatus:
    """Public: whether a certificate is valid or revoked, per this ledger's log."""

    certificate_id: str
    status: str
    """``valid`` or ``revoked``."""
    issued_index: int
    issued_time: str
    evidence_id: str
    revoked_index: int | None = None
    revoked_time: str | None = None


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
    ) -> IssuedCertificate:
        """Issue a certificate for sealed evidence. A notary signs with their
        own key; the operator names the notary (``notary``)."""
        authorize(actor, "certificate.issue")
        if not actor.is_operator:
            notary = actor.account_id
        elif notary is None:
            raise InvalidInput("certificate: name the issuing notary")
        if self._reads.evidence(evidence_id) is None:
            raise NotFound(f"evidence: {evidence_id} not found")
        return issue_certificate(self._ledger, evidence_id, notary, statement)

    def get(self, actor: Actor, certificate_id: str) -> bytes:
        """The certificate's exact bytes (RFC 8785 canonical JSON, as signed)."""
        self.visible(actor, certificate_id)
        return get_certificate(self._ledger, certificate_id)

    def write_package(self, actor: Actor, certificate_id: str, out: BinaryIO) -> None:
        """Write the evidence package (证据包) to a seekable stream."""
        self.visible(actor, certificate_id)
        write_certificate_package(self._ledger, certificate_id, out)

    def package_to(self, actor: Actor, certificate_id: str, path: Path) -> Path:
        """Write the evidence package to ``path`` atomically (temporary file, fsync, rename)."""
        self.visible(actor, certificate_id)
        return package_certificate(self._ledger, certificate_id, path)

    def revoke(self, actor: Actor, certificate_id: str, reason: str) -> Revocation:
        """Revoke a certificate: its issuing notary or an admin (or the operator)."""
        authorize(actor, "certificate.revoke")
        record = self._record(certificate_id)
        if actor.role == "notary" and record.account_id != actor.account_id:
            raise Forbidden("certificate.revoke: only the issuing notary or an admin may revoke")
        done = revoke_certificate(self._ledger, certificate_id, reason, by=actor.account_id or None)
        return Revocation(done["certificate_id"], int(done["index"]), str(done["time"]))

    def status(self, certificate_id: str) -> CertificateStatus:
        """Public status of a certificate (no private data)."""
        r = self._record(certificate_id)
        return CertificateStatus(
            certificate_id=certificate_id,
            status="revoked" if r.revoked_index is not None else "valid",
            issued_index=r.index,
            issued_time=r.time,
            evidence_id=r.evidence_id,
            revoked_index=r.revoked_index,
            revoked_time=r.revoked_time,
        )

    # -- 在线验真 ------------------------------------------------------------
    def trust(self) -> Trust:
        """This ledger's own trust file, parsed as the verifier parses any."""
        return load_trust(json.dumps(trust_export(self._ledger)).encode("utf-8"))

    def log_status(self, cert: Certificate) -> LogStatus:
        """What this ledger's own log says about a certificate and its issuer's key."""
        size = self._ledger.published_size()
        record = self._reads.certificate(cert.certificate_id)
        keys = self._reads.keys(vkey=cert.issuer_vkey.to_text())
        revoked = None
        if record is not None and record.revoked_index is not None:
            revoked = (record.revoked_index, record.revoked_time or "")
        key_revoked = None
        if keys and keys[0].revoked_index is not None:
            idx = keys[0].revoked_index
            entry = self._ledger.store.entries(idx, idx + 1)
            key_revoked = (idx, entry[0][2] if entry else "")
        return LogStatus(
            origin=self._ledger.config.origin,
            size=size,
            issued_index=None if record is None else record.index,
            revoked=revoked,
            key_registered=keys[0].index if keys else None,
            key_revoked=key_revoked,
        )

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
        ``evidence-verify certificate`` checks them."""
        cert = Certificate.from_json(certificate.read_bytes())
        files = [digest_file(p) for p in evidence]
        checks = verify_certificate(cert, self.trust(), files, log=self.log_status(cert))
        return Report("certificate", name or certificate.name, tuple(checks), cert.facts())
