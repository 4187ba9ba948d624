"""The one place where pages reach the ledger: through its services.

Pages never hold SQL or decide who may see what: they call the functions
here, which call :class:`ledger.services.Services` (the same objects the JSON
API calls) with the signed-in account as the acting :class:`Actor`, or, for
public facts no service offers yet (each witness's latest cosignature, the
latest timestamp token, the deposit-number check), read the log through the
store's log interface and check what they read with the verifier's code.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import HTTPException, Request

from api.upload import Upload
from ledger.accounts import CreatedAccount
from ledger.anchoring import trust_anchoring
from ledger.capture.jobs import CaptureJob, QueueFull
from ledger.capture.options import CaptureOptions
from ledger.certificates import get_certificate
from ledger.core import Ledger
from ledger.errors import InvalidInput, NotFound
from ledger.projections import deposit_number
from ledger.services import EvidenceFilter, EvidenceRecord, HashDeposit, Services
from ledger.services.policy import Actor, authorize
from ledger.services.sessions import Sessions
from ledger.storage.base import Publication
from ledger.storage.queries import AccountRecord, CertificateRecord, RequestRecord
from verifier.certificate import Certificate
from verifier.checkpoint import Checkpoint
from verifier.errors import Error as VerifierError
from verifier.merkle import verify_consistency
from verifier.note import VerifierKey, parse_note
from verifier.report import Report
from verifier.status import REQUEST_OPEN
from verifier.timestamp import load_roots, verify_timestamp

__all__ = [
    "Consistency",
    "DepositCheck",
    "LogOverview",
    "WitnessStatus",
    "check_deposit",
    "consistency",
    "log_overview",
    "verify_files",
]

_DEPOSIT_NO = re.compile(r"^EL-(\d{8})-(\d{10})$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# How far back /log looks for each witness's latest cosignature.
_RECENT_PUBLICATIONS = 64
# The capture artefacts a page shows as images (ledger.capture.browser names them).
SCREENSHOT = "screenshot_viewport"
IMAGES = ("screenshot_viewport", "screenshot_full")


# -- 在线验真 ---------------------------------------------------------------------


def verify_files(
    services: Services,
    package: tuple[Path, str] | None,
    certificate: tuple[Path, str] | None,
    evidence: list[tuple[Path, str]],
) -> Report:
    """Verify an evidence package, or a certificate with its evidence files, with
    the verifier's own code, this ledger's trust file and its log (revocation):
    the same report as ``evidence-verify`` and ``POST /v1/verify``.

    The report names the files as they were uploaded. Raises
    :class:`InvalidInput` when the files are not a package or certificate.
    """
    certs = services.certificates
    try:
        if package is not None:
            return replace(certs.verify_package(package[0]), subject=package[1])
        if certificate is None:
            raise InvalidInput("verify: send a package or a certificate")
        files = [p for p, _ in evidence]
        return certs.verify_certificate(certificate[0], files, name=certificate[1])
    except VerifierError as e:
        raise InvalidInput(f"verify: input is malformed ({e})") from None


@dataclass(frozen=True, slots=True)
class DepositCheck:
    """The one answer of the public deposit check: ``match``, ``mismatch`` or ``unknown``."""

    outcome: str
    deposit_no: str


def check_deposit(ledger: Ledger, deposit_no: str, sha256: str, sm3: str | None) -> DepositCheck:
    """Does the file whose digests are given match deposit ``deposit_no``?

    (1) parse the deposit number (date and log index); (2) read that one log
    entry by its index and require an ``evidence.deposited`` event whose
    deposit number is exactly the one given, else ``unknown``; (3) compare
    the SHA-256 (and the SM3 when both sides have one). Nothing else about the
    entry (owner, title, kind) leaves this function.
    """
    deposit_no = deposit_no.strip().upper()
    sha256 = sha256.strip().lower()
    sm3 = sm3.strip().lower() if sm3 else None
    if not _HEX64.match(sha256) or (sm3 is not None and not _HEX64.match(sm3)):
        raise InvalidInput("check: digests must be 64 lowercase hex digits")
    m = _DEPOSIT_NO.match(deposit_no)  # (1)
    if m is None:
        raise InvalidInput("check: a deposit number looks like EL-20260101-0000000042")
    index = int(m[2])
    entries = ledger.store.entries(index, index + 1)  # (2)
    if not entries or entries[0][1] != "evidence.deposited":
        return DepositCheck("unknown", deposit_no)
    if deposit_number(index, entries[0][2]) != deposit_no:
        return DepositCheck("unknown", deposit_no)
    private = ledger.store.privates(index, index + 1)
    facts: dict[str, Any] = json.loads(private[0][2]) if private else {}
    same = facts.get("sha256") == sha256  # (3)
    if same and sm3 is not None and facts.get("sm3"):
        same = facts["sm3"] == sm3
    return DepositCheck("match" if same else "mismatch", deposit_no)


# -- the public log ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WitnessStatus:
    """A configured witness and its latest cosignature seen in published checkpoints."""

    name: str
    url: str
    size: int | None
    timestamp: int | None


@dataclass(frozen=True, slots=True)
class LogOverview:
    """What ``/log`` shows: the latest published checkpoint and its anchoring."""

    origin: str
    size: int
    root_hex: str
    note: str
    published_time: str
    pending: int
    quorum: int
    witnesses: tuple[WitnessStatus, ...]
    tsa_url: str | None
    tsa_time: str | None
    tsa_name: str | None
    tsa_size: int | None
    verifier_key: str
    recent_sizes: tuple[int, ...]


def _cosigned_by(note_text: str, key: VerifierKey) -> int | None:
    note = parse_note(note_text)
    for sig in note.signatures:
        if sig.name == key.name and sig.key_id == key.key_id:
            try:
                return key.verify_note_signature(note.text, sig.signature)
            except VerifierError:
                return None
    return None


def log_overview(services: Services) -> LogOverview:
    """The latest published checkpoint, each witness's latest valid cosignature and
    the latest verified timestamp token, from the ledger's own published state
    (the log service's recent publications, read at once)."""
    ledger = services.ledger
    pub = ledger.store.latest_publication()
    if pub is None:
        raise NotFound("log: nothing is published yet")
    cfg = ledger.config
    pubs = services.log.recent(_RECENT_PUBLICATIONS)
    witnesses = []
    for w in cfg.witnesses:
        key = VerifierKey.from_text(w.vkey)
        found: tuple[int | None, int | None] = (None, None)
        for p in pubs:
            ts = _cosigned_by(p.note, key)
            if ts is not None:
                found = (p.size, ts)
                break
        witnesses.append(WitnessStatus(w.name, w.url, found[0], found[1]))
    tsa_time = tsa_name = None
    tsa_size = None
    if cfg.tsa is not None:
        roots = load_roots([r.encode("ascii") for r in trust_roots(ledger)])
        for p in pubs:
            if p.token is None:
                continue
            body = parse_note(p.note).text.encode("utf-8")
            try:
                info = verify_timestamp(p.token, body, roots)
            except VerifierError:
                continue
            tsa_time = _utc(info.gen_time)
            tsa_name, tsa_size = info.tsa, p.size
            break
    cp = Checkpoint.from_text(parse_note(pub.note).text)
    return LogOverview(
        origin=cp.origin,
        size=pub.size,
        root_hex=pub.root.hex(),
        note=pub.note,
        published_time=pub.time,
        pending=max(0, ledger.store.size() - pub.size),
        quorum=cfg.quorum,
        witnesses=tuple(witnesses),
        tsa_url=cfg.tsa.url if cfg.tsa else None,
        tsa_time=tsa_time,
        tsa_name=tsa_name,
        tsa_size=tsa_size,
        verifier_key=ledger.verifier_key.to_text(),
        recent_sizes=tuple(p.size for p in pubs),
    )


def trust_roots(ledger: Ledger) -> list[str]:
    """PEM roots of the TSA this ledger trusts (from its trust file)."""
    return [str(r) for r in trust_anchoring(ledger)["tsa_roots"]]


@dataclass(frozen=True, slots=True)
class Consistency:
    """A verified consistency proof between two published checkpoints."""

    old_size: int
    new_size: int
    old_root_hex: str
    new_root_hex: str
    proof_hex: tuple[str, ...]


def consistency(services: Services, old: int, new: int) -> Consistency:
    """Prove that the log of ``new`` entries extends the log of ``old`` entries
    (the log service verifies it; checked here again with the verifier's code,
    RFC 9162 §2.1.4.2)."""
    if old < 0 or new < 0 or old > new:
        raise InvalidInput("consistency: sizes must satisfy 0 <= old <= new")
    proof = services.log.consistency(old, new)
    verify_consistency(old, new, list(proof.hashes), proof.old.root, proof.new.root)
    return Consistency(
        old, new, proof.old.root.hex(), proof.new.root.hex(), tuple(h.hex() for h in proof.hashes)
    )


def upload_paths(upload: Upload, name: str) -> list[tuple[Path, str]]:
    """Paths and names of the non-empty files of ``name`` in a spooled upload."""
    out = []
    for f in upload.of(name):
        if f.path is not None and f.path.stat().st_size > 0:
            out.append((f.path, f.file_name))
    return out


# -- the signed-in pages ------------------------------------------------------------------


def _utc(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def services_of(request: Request) -> Services:
    """The application's services (built once by the app factory)."""
    services: Services = request.app.state.services
    return services


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of an evidence list, with what is sealed."""

    items: tuple[EvidenceRecord, ...]
    next_cursor: int | None
    published_size: int


def evidence_page(
    services: Services, actor: Actor, filters: EvidenceFilter, cursor: int, limit: int
) -> Listing:
    """The caller's evidence (everyone's for notaries, auditors and admins).

    A deposit number names one log entry by its index: that search reads the
    entry and asks the evidence service for it, instead of scanning the list.
    """
    only_number = filters.deposit_no is not None and filters == EvidenceFilter(
        deposit_no=filters.deposit_no
    )
    if only_number and filters.deposit_no is not None:
        found = _by_deposit_number(services, actor, filters.deposit_no)
        return Listing(found, None, services.evidence.published_size())
    page = services.evidence.list(actor, filters, cursor, limit)
    return Listing(page.items, page.next_cursor, page.published_size)


def _by_deposit_number(
    services: Services, actor: Actor, deposit_no: str
) -> tuple[EvidenceRecord, ...]:
    m = _DEPOSIT_NO.match(deposit_no)
    if m is None:
        return ()
    index = int(m[2])
    entries = services.ledger.store.entries(index, index + 1)
    if not entries or entries[0][1] != "evidence.deposited":
        return ()
    if deposit_number(index, entries[0][2]) != deposit_no:
        return ()
    evidence_id = str(json.loads(entries[0][3])["body"]["evidence_id"])
    try:
        return (services.evidence.get(actor, evidence_id),)
    except NotFound:
        return ()


def deposit_hash(
    services: Services, actor: Actor, sha256: str, sm3: str, title: str
) -> list[dict[str, Any]]:
    """A hash-only deposit; the receipts as the API returns them."""
    plan = services.deposits.plan_hash(
        actor, HashDeposit(sha256, sm3 or None, title.strip() or None, None), None
    )
    result = services.deposits.commit(plan)
    receipts: list[dict[str, Any]] = result.to_json()["receipts"]
    return receipts


@dataclass(frozen=True, slots=True)
class Step:
    """One step of an evidence's status timeline."""

    key: str
    done: bool
    time: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class EvidenceView:
    """Everything the evidence page shows."""

    record: EvidenceRecord
    steps: tuple[Step, ...]
    sealed_size: int | None
    witnesses: tuple[tuple[str, int], ...]
    certificates: tuple[CertificateRecord, ...]
    artefacts: tuple[dict[str, Any], ...]
    can_request: bool
    requests: tuple[RequestRecord, ...]


def _anchoring(
    services: Services, size: int
) -> tuple[Publication, list[tuple[str, int]], str | None]:
    """The published checkpoint of ``size``, its verified cosignatures and its
    verified timestamp time (None without a token)."""
    pub = services.log.published(size)
    cosigned: list[tuple[str, int]] = []
    for w in services.ledger.config.witnesses:
        ts = _cosigned_by(pub.note, VerifierKey.from_text(w.vkey))
        if ts is not None:
            cosigned.append((w.name, ts))
    stamped = None
    if pub.token is not None and services.ledger.config.tsa is not None:
        roots = load_roots(trust_roots(services.ledger))
        body = parse_note(pub.note).text.encode("utf-8")
        try:
            info = verify_timestamp(pub.token, body, roots)
            stamped = _utc(info.gen_time)
        except VerifierError:
            stamped = None
    return pub, cosigned, stamped


def evidence_view(services: Services, actor: Actor, evidence_id: str) -> EvidenceView:
    """Facts and status timeline of evidence the caller may see: durable, then
    sealed in a published checkpoint, cosigned by witnesses, timestamped."""
    record = services.evidence.get(actor, evidence_id)
    published = services.evidence.published_size(covering=record.index + 1)
    steps = [Step("durable", True, record.time)]
    sealed_size = None
    witnesses: tuple[tuple[str, int], ...] = ()
    if published > record.index:
        sealed_size = published
        pub, cosigned, stamped = _anchoring(services, published)
        witnesses = tuple(cosigned)
        steps.append(Step("sealed", True, pub.time, str(published)))
        if services.ledger.config.witnesses:
            last = max((ts for _, ts in cosigned), default=None)
            when = (
                datetime.fromtimestamp(last, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if last else None
            )
            steps.append(Step("cosigned", bool(cosigned), when, ", ".join(n for n, _ in cosigned)))
        if services.ledger.config.tsa is not None:
            steps.append(Step("timestamped", stamped is not None, stamped))
    else:
        steps.append(Step("sealed", False))
    certificates = tuple(services.reads.certificates_of_evidence(evidence_id))
    artefacts: tuple[dict[str, Any], ...] = ()
    if record.kind == "capture":
        artefacts = tuple(_manifest(services, record).get("artefacts", []))
    requests = tuple(requests_for(services, actor, evidence_id))
    can_request = (
        actor.role == "rights_holder"
        and sealed_size is not None
        and not any(r.status == REQUEST_OPEN for r in requests)
    )
    return EvidenceView(
        record, tuple(steps), sealed_size, witnesses, certificates, artefacts, can_request, requests
    )


def _manifest(services: Services, record: EvidenceRecord) -> dict[str, Any]:
    """The capture manifest of a visible capture deposit (its deposited file)."""
    blobs = services.ledger.blobs
    if not blobs.exists(record.sha256):
        return {}
    data = b"".join(blobs.iter_chunks(record.sha256))
    manifest: dict[str, Any] = json.loads(data)
    return manifest


def artefact_chunks(
    services: Services, actor: Actor, evidence_id: str, name: str
) -> Iterator[bytes]:
    """An artefact of a capture deposit the caller may see (a screenshot...)."""
    record = services.evidence.get(actor, evidence_id)
    if record.kind != "capture":
        raise NotFound(f"evidence: {evidence_id} is not a capture")
    for a in _manifest(services, record).get("artefacts", []):
        if a.get("name") == name and services.ledger.blobs.exists(a["sha256"]):
            return services.ledger.blobs.iter_chunks(a["sha256"])
    raise NotFound(f"capture: no {name} in {evidence_id}")


def request_capture(services: Services, actor: Actor, url: str, title: str) -> CaptureJob:
    """Queue a capture of ``url`` with the default options."""
    if not url.startswith(("http://", "https://")) or len(url) > 2000:
        raise InvalidInput("capture: the address must start with http:// or https://")
    try:
        return services.captures.create(actor, url, CaptureOptions(), title.strip() or None)
    except QueueFull as e:
        raise HTTPException(429, str(e), headers={"Retry-After": "10"}) from e


def schedule_captures(
    services: Services,
    actor: Actor,
    urls: list[str],
    title: str,
    start_at: datetime | None,
) -> list[CaptureJob]:
    """Schedule captures of ``urls`` with the default options, at ``start_at``
    or as workers free up (``POST /v1/captures`` with ``urls``)."""
    return services.captures.create_batch(
        actor, urls, CaptureOptions(), title.strip() or None, start_at
    )


@dataclass(frozen=True, slots=True)
class CaptureView:
    job: CaptureJob
    has_screenshot: bool


def capture_view(services: Services, actor: Actor, job_id: str) -> CaptureView:
    """A capture job the caller may see, and whether its screenshot is stored."""
    job = services.captures.get(actor, job_id)
    shot = False
    if job.evidence_id:
        record = services.evidence.get(actor, job.evidence_id)
        artefacts = _manifest(services, record).get("artefacts", [])
        shot = any(a.get("name") == SCREENSHOT for a in artefacts)
    return CaptureView(job, shot)


def capture_artefact(services: Services, actor: Actor, job_id: str, name: str) -> Iterator[bytes]:
    """An artefact of a finished capture job the caller may see."""
    job = services.captures.get(actor, job_id)
    if not job.evidence_id:
        raise NotFound(f"capture: job {job_id} has no evidence yet")
    return artefact_chunks(services, actor, job.evidence_id, name)


def request_certificate(
    services: Services, actor: Actor, evidence_id: str, note: str | None
) -> str:
    """Ask the notaries for a certificate of sealed evidence; the request id."""
    return services.certificates.request(actor, evidence_id, note).request_id


def package_spool(services: Services, actor: Actor, certificate_id: str) -> BinaryIO:
    """The evidence package of a visible certificate, in a temporary file."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - the caller streams and closes it
    try:
        services.certificates.write_package(actor, certificate_id, spool)
    except BaseException:
        spool.close()
        raise
    return spool


# -- notaries ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A certificate request, with the deposit it is about."""

    request: RequestRecord
    deposit_no: str
    title: str | None


def request_queue(services: Services, actor: Actor, limit: int = 200) -> list[QueuedRequest]:
    """The open certificate requests, oldest first (the notaries' queue)."""
    page = services.certificates.requests(actor, REQUEST_OPEN, 0, limit)
    out = []
    for r in page.items:
        ev = services.reads.evidence(r.evidence_id)
        out.append(QueuedRequest(r, ev.deposit_no if ev else "", ev.title if ev else None))
    return out


def requests_for(services: Services, actor: Actor, evidence_id: str) -> list[RequestRecord]:
    """The requests about one deposit that the caller may see (its requester's
    own, or all of them for notaries, auditors and admins)."""
    out: list[RequestRecord] = []
    cursor: int | None = 0
    while cursor is not None and len(out) < 100:
        page = services.certificates.requests(actor, None, cursor, 1000)
        out.extend(r for r in page.items if r.evidence_id == evidence_id)
        cursor = page.next_cursor
    return out


def reject_request(services: Services, actor: Actor, request_id: str, reason: str) -> None:
    """Reject a certificate request with a reason (``certificate.request_rejected``)."""
    services.certificates.reject(actor, request_id, reason)


def issue(
    services: Services,
    actor: Actor,
    evidence_id: str,
    statement: str | None,
    request_id: str | None = None,
) -> str:
    """Issue a certificate (the notary's own key), closing ``request_id``; its id."""
    issued = services.certificates.issue(actor, evidence_id, statement, request_id=request_id)
    return issued.certificate_id


def revoke(services: Services, actor: Actor, certificate_id: str, reason: str) -> None:
    """Revoke a certificate: its issuing notary or an admin."""
    services.certificates.revoke(actor, certificate_id, reason)


@dataclass(frozen=True, slots=True)
class IssuedRow:
    """A certificate in a notary's list."""

    record: CertificateRecord
    deposit_no: str
    title: str | None


def issued_by(services: Services, actor: Actor, limit: int = 200) -> list[IssuedRow]:
    """The certificates the calling notary issued, newest first."""
    records: list[CertificateRecord] = []
    cursor = 0
    while True:
        page = services.certificates.issued(actor, issued_by_me=True, cursor=cursor, limit=1000)
        records.extend(page)
        if len(page) < 1000:
            break
        cursor = page[-1].index + 1
    out = []
    for record in reversed(records[-limit:]):
        ev = services.reads.evidence(record.evidence_id)
        out.append(IssuedRow(record, ev.deposit_no if ev else "", ev.title if ev else None))
    return out


# -- administration ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Health:
    """What the admin page shows about sealing, publication and anchoring."""

    size: int
    checkpoint_size: int
    published_size: int
    pending: int
    unpublished: int
    last_published: str | None
    seconds_since_publication: float | None
    seal_interval: float
    witnesses: tuple[WitnessStatus, ...]
    quorum: int
    tsa_url: str | None
    tsa_time: str | None
    last_error: str | None


def accounts(services: Services, actor: Actor) -> list[AccountRecord]:
    """Every account (admins and auditors)."""
    return services.accounts.list(actor)


def create_account(services: Services, actor: Actor, role: str, name: str) -> CreatedAccount:
    """A new account; its token is shown once and kept nowhere."""
    return services.accounts.create(actor, role, name.strip())


def revoke_account(services: Services, sessions: Sessions, actor: Actor, account_id: str) -> int:
    """Revoke an account; every session it had ends at once. Sessions ended."""
    services.accounts.revoke(actor, account_id)
    return sessions.end_account(account_id)


def health(services: Services, actor: Actor) -> Health:
    """Sealing and publication lag, witness and TSA status (admins and auditors)."""
    authorize(actor, "ledger.inspect")
    stats = services.stats()
    ledger = services.ledger
    try:
        overview: LogOverview | None = log_overview(services)
    except NotFound:
        overview = None
    last = overview.published_time if overview else None
    age = None
    if last:
        published = datetime.fromisoformat(last.replace("Z", "+00:00"))
        age = max(0.0, (datetime.now(UTC) - published).total_seconds())
    anchoring = stats.get("anchoring", {})
    return Health(
        size=int(stats["size"]),
        checkpoint_size=int(stats["checkpoint_size"]),
        published_size=int(stats["published_size"]),
        pending=int(stats["pending"]),
        unpublished=int(stats["checkpoint_size"]) - int(stats["published_size"]),
        last_published=last,
        seconds_since_publication=age,
        seal_interval=ledger.config.seal.interval,
        witnesses=overview.witnesses if overview else (),
        quorum=ledger.config.quorum,
        tsa_url=ledger.config.tsa.url if ledger.config.tsa else None,
        tsa_time=overview.tsa_time if overview else None,
        last_error=anchoring.get("last_error"),
    )


# -- public certificate status ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublicCertificate:
    """What ``/c/{certificate_id}`` shows: public facts only."""

    certificate_id: str
    status: str
    issuer: str
    issued_at: str
    issued_index: int
    deposit_no: str
    origin: str
    checkpoint_size: int
    revoked_index: int | None
    revoked_time: str | None
    revoked_reason: str | None


def certificate_public(services: Services, certificate_id: str) -> PublicCertificate:
    """The public status of a certificate (what its PDF's QR code opens): no
    owner, title, file name or digest."""
    if not re.fullmatch(r"[0-9a-f]{1,64}", certificate_id):
        raise NotFound(f"certificate: {certificate_id} not found")
    status = services.certificates.status(certificate_id)
    if status.issued_index is None:
        raise NotFound(f"certificate: {certificate_id} not found")
    cert = Certificate.from_json(get_certificate(services.ledger, certificate_id))
    revoked = status.revoked
    return PublicCertificate(
        certificate_id=certificate_id,
        status="revoked" if revoked is not None else "valid",
        issuer=cert.issuer_name,
        issued_at=cert.issued_at,
        issued_index=status.issued_index,
        deposit_no=services.certificates.deposit_no(status) or cert.evidence.deposit_no,
        origin=cert.checkpoint_body.origin,
        checkpoint_size=cert.checkpoint_body.size,
        revoked_index=revoked.index if revoked else None,
        revoked_time=revoked.time if revoked else None,
        revoked_reason=revoked.reason if revoked else None,
    )
