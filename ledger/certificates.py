"""Certificates (在线出证): issue, read, package and revoke; the ledger's trust file.

The formats are defined in :mod:`verifier.certificate` and
:mod:`verifier.package`; this module produces them from the log and checks
every certificate with the verifier before it is recorded, so the producer
and the checker cannot disagree silently. The CLI and the HTTP API call these
functions.

Storage: a certificate is recorded by a ``certificate.issued`` event whose
public body names it (``certificate_id``, ``evidence_id``, the notary's
``account_id``) and whose private body holds the certificate's exact bytes.
Keeping the certificate in the log (not in the blob store) means it is
committed to by the event's commitment, is durable in the same transaction,
travels with every backup of the log and survives ``rebuild``, which replays
the ``certificates`` projection from these events. ``certificate.revoked``
names the certificate publicly (so anyone auditing the log sees the
revocation) and keeps the reason private.

Requests: a rights holder asks for a certificate of sealed evidence
(``certificate.requested``); a notary rejects it with a reason
(``certificate.request_rejected``) or issues the certificate naming the
request, which closes it. The ``requests`` projection follows them.

Status: what the log says about a certificate, a request or a notary key is
computed by the verifier's fold (:class:`verifier.status.StatusFold`) over
the very records that decide it (found through the projections), so the
status route, ``POST /v1/verify`` and ``evidence-verify log`` agree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from ledger.accounts import KEY_PURPOSE, find_account, notary_signer
from ledger.anchoring import trust_anchoring
from ledger.core import Ledger
from ledger.errors import Conflict, InvalidInput, LedgerError, NotFound
from ledger.events import (
    certificate_issued,
    certificate_request_rejected,
    certificate_requested,
    certificate_revoked,
)
from ledger.renewal import evidence_records
from ledger.storage.base import CheckpointRow
from ledger.storage.queries import CertificateRecord, ReadModel, RequestRecord
from verifier.capture import MAX_MANIFEST_SIZE, CaptureManifest
from verifier.certificate import (
    Certificate,
    EvidenceFacts,
    LogStatus,
    build_certificate,
    verify_certificate,
)
from verifier.errors import Error as VerifierError
from verifier.events import deposit_number, format_time
from verifier.package import write_package
from verifier.record import decode_record
from verifier.status import REQUEST_OPEN, CertificateStatus, RequestStatus, StatusFold
from verifier.trust import TRUST_FORMAT, Trust, load_trust

__all__ = [
    "DEFAULT_STATEMENT",
    "IssuedCertificate",
    "NotSealed",
    "RequestedCertificate",
    "certificate_row",
    "certificate_status",
    "get_certificate",
    "issue_certificate",
    "log_status",
    "package_certificate",
    "reject_request",
    "request_certificate",
    "request_row",
    "request_status",
    "revoke_certificate",
    "trust_export",
    "write_certificate_package",
]

DEFAULT_STATEMENT = (
    "兹证明：上述证据已在存证时间存入本平台证据日志，其内容的哈希值如上所列；"
    "本证书附有该日志条目的包含证明及经签名的检查点，可离线验证。\n"
    "This certifies that the evidence above was deposited in this platform's evidence "
    "log at the deposit time with the digests listed; the certificate carries the "
    "entry's inclusion proof and a signed checkpoint, and can be verified offline."
)
_MAX_STATEMENT = 4000
_MAX_REASON = 1000
_MAX_NOTE = 4000


class NotSealed(Conflict):
    """The evidence is not yet inside a published checkpoint: no proof exists."""


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A certificate just recorded: its id, its exact bytes and the event index."""

    certificate_id: str
    evidence_id: str
    index: int
    data: bytes


def trust_export(ledger: Ledger) -> dict[str, Any]:
    """The ledger's own trust file (``evidence-trust/v1``).

    The log key; the witness keys and quorum and the TSA roots configured
    for anchoring (:func:`ledger.anchoring.trust_anchoring`); every notary key
    ever registered, valid from its registration until its revocation (if
    any); the CA roots of the notaries' X.509 certificates (PDF signatures);
    the hash algorithms the operator retired (``renewal.retired``), if any.
    A court should pin this file once, from a trustworthy channel,
    rather than fetch it next to the evidence.
    """
    notaries = []
    reads = ReadModel(ledger.store)
    names = {a.account_id: a.name for a in reads.accounts()}
    for k in reads.keys(purpose=KEY_PURPOSE):
        until = None
        if k.revoked_index is not None:
            until = ledger.store.entries(k.revoked_index, k.revoked_index + 1)[0][2]
        notaries.append(
            {
                "name": names.get(k.account_id, ""),
                "vkey": k.vkey,
                "valid_from": k.valid_from,
                "valid_until": until,
            }
        )
    anchoring = trust_anchoring(ledger)
    from ledger.pdfcert.service import notary_ca_roots_pem

    retired = dict(ledger.config.renewal.retired)
    return {
        "format": TRUST_FORMAT,
        "logs": [{"origin": ledger.config.origin, "vkey": ledger.verifier_key.to_text()}],
        "witnesses": anchoring["witnesses"],
        "notaries": notaries,
        "tsa_roots": anchoring["tsa_roots"],
        **({"tsas": anchoring["tsas"]} if "tsas" in anchoring else {}),
        "notary_ca_roots": notary_ca_roots_pem(ledger),
        **({"retired_algorithms": retired} if retired else {}),
    }


def _own_trust(ledger: Ledger) -> Trust:
    return load_trust(json.dumps(trust_export(ledger)).encode("utf-8"))


def _facts(evidence_id: str, index: int, time: str, private: dict[str, Any]) -> EvidenceFacts:
    return EvidenceFacts(
        evidence_id=evidence_id,
        deposit_no=deposit_number(index, time),
        kind=private["kind"],
        sha256=private["sha256"],
        sm3=private.get("sm3"),
        size=private.get("size"),
        title=private.get("title"),
        file_name=private.get("file_name"),
        media_type=private.get("media_type"),
        depositor=private.get("owner"),
        deposited_at=time,
    )


def _sealed(ledger: Ledger, index: int) -> CheckpointRow:
    """The latest published checkpoint, which must contain entry ``index``."""
    cp = ledger.latest_checkpoint()
    if cp.size <= index:
        raise NotSealed(
            f"certificate: entry {index} is not yet in a published checkpoint "
            f"(latest has {cp.size} entries); seal first"
        )
    return cp


def issue_certificate(
    ledger: Ledger,
    evidence_id: str,
    notary: str,
    statement: str | None = None,
    request_id: str | None = None,
) -> IssuedCertificate:
    """Issue, self-verify and record a certificate for ``evidence_id``.

    (1) find the evidence and the active notary (by name or account id) and
    load its key; with ``request_id``, the request must be open and for this
    evidence (the issue closes it); (2) take the latest published checkpoint (with its
    cosignatures), which must contain the entry, a verified inclusion proof
    to it and the checkpoint's RFC 3161 token if it has one; (3) build and
    sign the certificate with the entry, its opening, the checkpoint and token;
    (4) verify it with :mod:`verifier` against the ledger's own trust file;
    (5) append ``certificate.issued`` and return the certificate.
    """
    if statement is not None and (not statement.strip() or len(statement) > _MAX_STATEMENT):
        raise InvalidInput(f"certificate: statement must have 1 to {_MAX_STATEMENT} characters")
    ev = ReadModel(ledger.store).evidence(evidence_id)
    if ev is None:  # (1)
        raise NotFound(f"evidence: {evidence_id} not found")
    account = find_account(ledger, notary, "notary")
    signer = notary_signer(ledger, account)
    if request_id is not None:
        request = _open_request(ledger, request_id)
        if request.evidence_id != evidence_id:
            raise InvalidInput(
                f"certificate: request {request_id} is for evidence {request.evidence_id}, "
                f"not {evidence_id}"
            )
    index = ev.index
    cp = _sealed(ledger, index)  # (2)
    cp, proof = ledger.inclusion_proof(index, cp.size)
    token = ledger.checkpoint_token(cp.size)
    leaf = ledger.store.entries(index, index + 1)[0][3]
    _, salt, private_json = ledger.store.privates(index, index + 1)[0]
    private = json.loads(private_json)
    facts = _facts(evidence_id, index, ev.time, private)
    try:
        data = build_certificate(  # (3)
            issued_at=format_time(datetime.now(UTC)),
            issuer_name=account.name,
            issuer_account_id=account.account_id,
            issuer_vkey=signer.verifier_key,
            statement=statement if statement is not None else DEFAULT_STATEMENT,
            evidence=facts,
            index=index,
            leaf=bytes(leaf),
            salt=bytes(salt),
            private_body=bytes(private_json),
            tree_size=cp.size,
            proof=proof,
            checkpoint=cp.note,
            timestamp_token=token,
            sign=signer.sign,
        )
    except VerifierError as e:  # e.g. a statement that is not valid Unicode
        raise InvalidInput(f"certificate: {e}") from e
    cert = Certificate.from_json(data)
    records = evidence_records(ledger, cp.size, token)
    checks = verify_certificate(cert, _own_trust(ledger), evidence_records=records)  # (4)
    # Without the file, only the evidence-file check may fail; revocation is not asked.
    bad = [c for c in checks if not c.ok and c.key != "evidence_file"]
    if bad:
        raise LedgerError(f"certificate: self-check failed: {bad[0].key}: {bad[0].reason}")
    draft = certificate_issued(  # (5)
        certificate_id=cert.certificate_id,
        evidence_id=evidence_id,
        account_id=account.account_id,
        certificate=data,
        request_id=request_id,
    )
    appended = ledger.append([draft])[0]
    return IssuedCertificate(cert.certificate_id, evidence_id, appended.index, data)


def certificate_row(ledger: Ledger, certificate_id: str) -> CertificateRecord:
    """The projection row of a certificate (ids, index, revocation)."""
    record = ReadModel(ledger.store).certificate(certificate_id)
    if record is None:
        raise NotFound(f"certificate: {certificate_id} not found")
    return record


def get_certificate(ledger: Ledger, certificate_id: str) -> bytes:
    """A certificate's exact bytes, read from its ``certificate.issued`` event."""
    idx = certificate_row(ledger, certificate_id).index
    _, _, private = ledger.store.privates(idx, idx + 1)[0]
    return str(json.loads(private)["certificate"]).encode("utf-8")


@contextmanager
def _evidence_streams(
    ledger: Ledger, cert: Certificate, include_private: bool = False
) -> Iterator[tuple[BinaryIO | None, list[BinaryIO]]]:
    """The deposited file and, for a capture, the artefacts its manifest lists
    (without the private ones, which hold secrets, unless asked)."""
    if cert.evidence.kind == "hash":
        yield None, []
        return
    with ExitStack() as stack:
        evidence = stack.enter_context(ledger.blobs.open(cert.evidence.sha256))
        artefacts: list[BinaryIO] = []
        if cert.evidence.kind == "capture":
            with ledger.blobs.open(cert.evidence.sha256) as f:
                manifest = CaptureManifest.from_json(f.read(MAX_MANIFEST_SIZE + 1))
            artefacts = [
                stack.enter_context(ledger.blobs.open(a.sha256))
                for a in manifest.packaged(include_private)
            ]
        yield evidence, artefacts


def write_certificate_package(
    ledger: Ledger, certificate_id: str, out: BinaryIO, *, include_private: bool = False
) -> None:
    """Write the evidence package of a certificate to a seekable stream; a
    capture's private artefacts (secrets typed during it) only if asked. The
    package carries the RFC 4998 evidence records of every renewal of the
    checkpoint's timestamp made so far: packaging again after a renewal gives
    a package that stays verifiable after the TSA certificate expires."""
    cert = Certificate.from_json(get_certificate(ledger, certificate_id))
    from ledger.pdfcert.service import certificate_pdf

    pdf = certificate_pdf(ledger, certificate_id)
    records = evidence_records(ledger, cert.checkpoint_body.size, cert.timestamp_token)
    try:
        with _evidence_streams(ledger, cert, include_private) as (evidence, artefacts):
            write_package(
                out,
                cert,
                evidence,
                artefacts,
                pdf=pdf,
                include_private=include_private,
                evidence_records=records,
            )
    except VerifierError as e:
        raise LedgerError(str(e)) from e


def package_certificate(
    ledger: Ledger, certificate_id: str, path: Path, *, include_private: bool = False
) -> Path:
    """Write the evidence package to ``path`` atomically (temporary file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write_certificate_package(ledger, certificate_id, f, include_private=include_private)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def revoke_certificate(
    ledger: Ledger, certificate_id: str, reason: str, by: str | None = None
) -> dict[str, Any]:
    """Append ``certificate.revoked`` (id public, reason private); refuse twice."""
    if not reason.strip() or len(reason) > _MAX_REASON:
        raise InvalidInput(f"certificate: reason must have 1 to {_MAX_REASON} characters")
    row = certificate_row(ledger, certificate_id)
    if row.revoked_index is not None:
        raise Conflict(
            f"certificate: {certificate_id} was already revoked at index {row.revoked_index}"
        )
    draft = certificate_revoked(certificate_id=certificate_id, reason=reason, by=by)
    a = ledger.append([draft])[0]
    return {"certificate_id": certificate_id, "index": a.index, "time": a.time}


# -- requests -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestedCertificate:
    """A request just recorded: its id, the evidence, the event's index and time."""

    request_id: str
    evidence_id: str
    index: int
    time: str


def request_row(ledger: Ledger, request_id: str) -> RequestRecord:
    """The projection row of a certificate request."""
    record = ReadModel(ledger.store).request(request_id)
    if record is None:
        raise NotFound(f"certificate request: {request_id} not found")
    return record


def _open_request(ledger: Ledger, request_id: str) -> RequestRecord:
    row = request_row(ledger, request_id)
    if row.status != REQUEST_OPEN:
        raise Conflict(
            f"certificate request: {request_id} is already {row.status} "
            f"(at index {row.closed_index})"
        )
    return row


def request_certificate(
    ledger: Ledger, evidence_id: str, requester: str, note: str | None = None
) -> RequestedCertificate:
    """Append ``certificate.requested``: ``requester`` (an account id) asks for a
    certificate of sealed evidence.

    (1) the evidence exists and is in a published checkpoint; (2) no request
    for it is open already; (3) append the request.
    """
    if note is not None and (not note.strip() or len(note) > _MAX_NOTE):
        raise InvalidInput(f"certificate request: note must have 1 to {_MAX_NOTE} characters")
    reads = ReadModel(ledger.store)
    ev = reads.evidence(evidence_id)
    if ev is None:  # (1)
        raise NotFound(f"evidence: {evidence_id} not found")
    _sealed(ledger, ev.index)
    open_ = reads.requests_of_evidence(evidence_id, REQUEST_OPEN)  # (2)
    if open_:
        raise Conflict(
            f"certificate request: {open_[0].request_id} for evidence {evidence_id} is still open"
        )
    draft = certificate_requested(evidence_id=evidence_id, requester=requester, note=note)
    a = ledger.append([draft])[0]  # (3)
    return RequestedCertificate(draft.ref, evidence_id, a.index, a.time)


def reject_request(
    ledger: Ledger, request_id: str, reason: str, by: str | None = None
) -> dict[str, Any]:
    """Append ``certificate.request_rejected`` (id public; reason and notary private)
    for an open request."""
    if not reason.strip() or len(reason) > _MAX_REASON:
        raise InvalidInput(f"certificate request: reason must have 1 to {_MAX_REASON} characters")
    _open_request(ledger, request_id)
    draft = certificate_request_rejected(request_id=request_id, reason=reason, by=by)
    a = ledger.append([draft])[0]
    return {"request_id": request_id, "index": a.index, "time": a.time}


# -- status (the verifier's fold over the deciding records) ------------------------


def _fold(ledger: Ledger, indexes: Iterable[int | None]) -> StatusFold:
    """Fold the records at ``indexes`` (with their private bodies), in log order."""
    fold = StatusFold()
    for index in sorted({i for i in indexes if i is not None}):
        leaf = ledger.store.entries(index, index + 1)[0][3]
        private = ledger.store.privates(index, index + 1)[0][2]
        fold.add(decode_record(bytes(leaf)), json.loads(private))
    return fold


def _certificate_indexes(ledger: Ledger, certificate_id: str) -> list[int | None]:
    record = ReadModel(ledger.store).certificate(certificate_id)
    return [] if record is None else [record.index, record.revoked_index]


def certificate_status(ledger: Ledger, certificate_id: str) -> CertificateStatus:
    """Issued or revoked (with the revocation's index, time and reason), as the
    verifier's fold reads this ledger's log."""
    indexes = _certificate_indexes(ledger, certificate_id)
    status = _fold(ledger, indexes).certificate(certificate_id)
    if status.issued_index is None:
        raise NotFound(f"certificate: {certificate_id} not found")
    return status


def request_status(ledger: Ledger, request_id: str) -> RequestStatus:
    """Open, rejected (with the reason) or issued (with the certificate id)."""
    row = request_row(ledger, request_id)
    status = _fold(ledger, (row.index, row.closed_index)).request(request_id)
    if status is None:
        raise NotFound(f"certificate request: {request_id} not found")
    return status


def log_status(ledger: Ledger, cert: Certificate) -> LogStatus:
    """What this ledger's own log says about a certificate and its issuer's key
    (checks (13) and (14) of :func:`verifier.certificate.verify_certificate`)."""
    keys = ReadModel(ledger.store).keys(vkey=cert.issuer_vkey.to_text())
    indexes = _certificate_indexes(ledger, cert.certificate_id)
    indexes += [i for k in keys for i in (k.index, k.revoked_index)]
    return _fold(ledger, indexes).log_status(cert, ledger.config.origin, ledger.published_size())
