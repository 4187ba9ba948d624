"""The fold from log records to certificate, request and key status."""

from __future__ import annotations

from typing import Any

import pytest

from verifier.events import (
    CertificateIssued,
    CertificateIssuedPrivate,
    CertificateRequested,
    CertificateRequestedPrivate,
    CertificateRequestRejected,
    CertificateRequestRejectedPrivate,
    CertificateRevoked,
    CertificateRevokedPrivate,
    Event,
    KeyRegistered,
    KeyRevoked,
    NoPrivate,
)
from verifier.note import VerifierKey
from verifier.record import GENESIS_PREV, Record
from verifier.status import (
    CERTIFICATE_ISSUED,
    CERTIFICATE_REVOKED,
    REQUEST_ISSUED,
    REQUEST_OPEN,
    REQUEST_REJECTED,
    Revocation,
    StatusFold,
)

CID = "c1" * 32
OTHER = "c2" * 32
EID = "e" * 32
NOTARY = "a" * 32
HOLDER = "b" * 32
RID = "f" * 32
VKEY = VerifierKey.from_public_key("notary.test/n1", bytes(32)).to_text()


def _time(index: int) -> str:
    return f"2026-03-01T08:00:{index:02d}.000000Z"


class Log:
    """Records built from catalogue events, with their private bodies."""

    def __init__(self) -> None:
        self.entries: list[tuple[Record, dict[str, Any]]] = []

    def add(self, event: Event[Any], index: int | None = None) -> int:
        i = len(self.entries) if index is None else index
        record = Record(i, event.TYPE, _time(i), GENESIS_PREV, "0" * 64, event.to_body())
        self.entries.append((record, event.to_private()))
        return i

    def fold(self, private: bool = True) -> StatusFold:
        return StatusFold().extend((r, p if private else None) for r, p in self.entries)


def issued(cid: str = CID, request_id: str | None = None) -> CertificateIssued:
    return CertificateIssued(
        certificate_id=cid,
        evidence_id=EID,
        account_id=NOTARY,
        request_id=request_id,
        private=CertificateIssuedPrivate(certificate="{}"),
    )


def revoked(reason: str, cid: str = CID) -> CertificateRevoked:
    return CertificateRevoked(
        certificate_id=cid, private=CertificateRevokedPrivate(reason=reason, by=NOTARY)
    )


def requested(rid: str = RID) -> CertificateRequested:
    return CertificateRequested(
        request_id=rid,
        evidence_id=EID,
        private=CertificateRequestedPrivate(requester=HOLDER, note="for court"),
    )


def rejected(reason: str, rid: str = RID) -> CertificateRequestRejected:
    return CertificateRequestRejected(
        request_id=rid, private=CertificateRequestRejectedPrivate(reason=reason, by=NOTARY)
    )


@pytest.mark.parametrize("private", [True, False], ids=["with-private", "public-only"])
def test_issued_then_revoked(private: bool) -> None:
    log = Log()
    i = log.add(issued())
    log.add(issued(OTHER))
    r = log.add(revoked("issued in error"))
    fold = log.fold(private)
    cert = fold.certificate(CID)
    assert cert.status == CERTIFICATE_REVOKED
    assert (cert.issued_index, cert.issued_time, cert.evidence_id) == (i, _time(i), EID)
    reason = "issued in error" if private else None
    by = NOTARY if private else None
    assert cert.revoked == Revocation(r, _time(r), reason, by)
    assert fold.certificate(OTHER).status == CERTIFICATE_ISSUED
    assert fold.certificate("d" * 64).status is None
    assert [(c.certificate_id, rv.index) for c, rv in fold.revocations()] == [(CID, r)]


def test_revoked_twice_counts_once() -> None:
    log = Log()
    log.add(issued())
    first = log.add(revoked("first"))
    log.add(revoked("second"))
    fold = log.fold()
    assert fold.certificate(CID).revoked == Revocation(first, _time(first), "first", NOTARY)
    assert len(fold.revocations()) == 1


def test_a_revocation_logged_before_the_issue_still_counts() -> None:
    """Fail closed: a log that names a revocation first does not hide it."""
    log = Log()
    r = log.add(revoked("early"))
    log.add(issued())
    cert = log.fold().certificate(CID)
    assert cert.status == CERTIFICATE_REVOKED and cert.revoked is not None
    assert cert.revoked.index == r


def test_the_first_issue_wins() -> None:
    log = Log()
    first = log.add(issued())
    log.add(issued())
    assert log.fold().certificate(CID).issued_index == first


def test_request_then_rejected() -> None:
    log = Log()
    q = log.add(requested())
    j = log.add(rejected("not sealed evidence"))
    log.add(rejected("again"))
    log.add(issued(request_id=RID))  # a late issue does not reopen or change it
    fold = log.fold()
    req = fold.request(RID)
    assert req is not None
    assert (req.status, req.index, req.evidence_id, req.requester, req.note) == (
        REQUEST_REJECTED,
        q,
        EID,
        HOLDER,
        "for court",
    )
    assert (req.closed_index, req.closed_time, req.reason, req.by) == (
        j,
        _time(j),
        "not sealed evidence",
        NOTARY,
    )
    assert req.certificate_id is None
    # The certificate itself is still issued: rejection closes the request only.
    assert fold.certificate(CID).status == CERTIFICATE_ISSUED


def test_request_then_issued() -> None:
    log = Log()
    log.add(requested())
    assert log.fold().request(RID).status == REQUEST_OPEN  # type: ignore[union-attr]
    i = log.add(issued(request_id=RID))
    log.add(rejected("too late"))
    fold = log.fold()
    req = fold.request(RID)
    assert req is not None
    assert (req.status, req.closed_index, req.certificate_id, req.by, req.reason) == (
        REQUEST_ISSUED,
        i,
        CID,
        NOTARY,
        None,
    )
    assert fold.certificate(CID).request_id == RID


def test_closing_an_unknown_request_changes_nothing() -> None:
    log = Log()
    log.add(rejected("no such request"))
    log.add(issued(request_id=RID))
    fold = log.fold()
    assert fold.request(RID) is None
    assert fold.certificate(CID).status == CERTIFICATE_ISSUED


def test_public_only_requests_have_no_private_facts() -> None:
    log = Log()
    log.add(requested())
    log.add(rejected("why"))
    req = log.fold(private=False).request(RID)
    assert req is not None and req.status == REQUEST_REJECTED
    assert (req.requester, req.note, req.reason, req.by) == (None, None, None, None)


def test_keys() -> None:
    log = Log()
    reg = log.add(
        KeyRegistered(
            account_id=NOTARY,
            vkey=VKEY,
            purpose="certificate",
            valid_from=_time(0),
            private=NoPrivate(),
        )
    )
    rev = log.add(KeyRevoked(account_id=NOTARY, vkey=VKEY, private=NoPrivate()))
    log.add(KeyRevoked(account_id=NOTARY, vkey=VKEY, private=NoPrivate()))
    key = log.fold().key(VKEY)
    assert (key.account_id, key.registered_index) == (NOTARY, reg)
    assert key.revoked == Revocation(rev, _time(rev))
    assert log.fold().key("other").registered_index is None


def test_malformed_events_are_kept_aside_and_change_nothing() -> None:
    fold = StatusFold()
    body = {"certificate_id": CID, "note": "not in the catalogue"}
    fold.add(Record(0, "certificate.revoked", _time(0), GENESIS_PREV, "0" * 64, body))
    fold.add(Record(1, "evidence.deposited", _time(1), GENESIS_PREV, "0" * 64, {"x": 1}))
    assert fold.certificate(CID).revoked is None
    (bad,) = fold.malformed
    assert (bad.index, bad.type) == (0, "certificate.revoked")
    assert "unknown members" in bad.error
    assert fold.naming(CID, VKEY) == [bad]
    assert fold.naming(OTHER, VKEY) == []


def test_records_must_come_in_log_order() -> None:
    log = Log()
    log.add(issued(), index=5)
    log.add(revoked("r"), index=5)
    with pytest.raises(ValueError, match="out of order"):
        log.fold()
