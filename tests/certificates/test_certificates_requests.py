"""Certificate requests and the status of certificates, on both backends.

Status answers come from the verifier's fold over the ledger's own records;
the projections only find those records. Both must agree, also after a race
that logs two revocations, and after ``rebuild``.
"""

from __future__ import annotations

import io
import json

import pytest
from unchecked import unchecked

from ledger.accounts import CreatedAccount, create_account, revoke_account
from ledger.certificates import (
    NotSealed,
    certificate_row,
    certificate_status,
    issue_certificate,
    log_status,
    reject_request,
    request_certificate,
    request_row,
    request_status,
    revoke_certificate,
)
from ledger.core import Ledger
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.events import certificate_revoked
from ledger.services import OPERATOR, Services
from verifier.certificate import Certificate
from verifier.record import decode_record
from verifier.status import REQUEST_ISSUED, REQUEST_OPEN, REQUEST_REJECTED, Revocation


def _setup(ledger: Ledger) -> tuple[CreatedAccount, CreatedAccount, str]:
    notary = create_account(ledger, "notary", "Notary Li")
    holder = create_account(ledger, "rights_holder", "Holder Ltd")
    eid = (
        Services(ledger)
        .deposits.deposit_file(
            OPERATOR, io.BytesIO(b"contract " * 100), title="合同", owner=holder.account_id
        )
        .evidence_id
    )
    return notary, holder, eid


def _record(ledger: Ledger, index: int) -> tuple[str, dict[str, object], dict[str, object]]:
    leaf = ledger.store.entries(index, index + 1)[0][3]
    private = ledger.store.privates(index, index + 1)[0][2]
    r = decode_record(bytes(leaf))
    return r.type, r.body, json.loads(private)


def test_request_then_reject(ledger: Ledger) -> None:
    notary, holder, eid = _setup(ledger)
    with pytest.raises(NotSealed):
        request_certificate(ledger, eid, holder.account_id)
    ledger.seal()
    with pytest.raises(NotFound):
        request_certificate(ledger, "0" * 32, holder.account_id)
    with pytest.raises(InvalidInput, match="note"):
        request_certificate(ledger, eid, holder.account_id, note=" ")
    req = request_certificate(ledger, eid, holder.account_id, note="for the hearing")
    assert _record(ledger, req.index) == (
        "certificate.requested",
        {"request_id": req.request_id, "evidence_id": eid},
        {"requester": holder.account_id, "note": "for the hearing"},
    )
    with pytest.raises(Conflict, match="still open"):
        request_certificate(ledger, eid, holder.account_id)
    row = request_row(ledger, req.request_id)
    assert (row.status, row.requester, row.index, row.closed_index) == (
        REQUEST_OPEN,
        holder.account_id,
        req.index,
        None,
    )
    assert request_status(ledger, req.request_id).status == REQUEST_OPEN

    with pytest.raises(InvalidInput, match="reason"):
        reject_request(ledger, req.request_id, "")
    done = reject_request(ledger, req.request_id, "the title is wrong", by=notary.account_id)
    assert _record(ledger, done["index"]) == (
        "certificate.request_rejected",
        {"request_id": req.request_id},
        {"reason": "the title is wrong", "by": notary.account_id},
    )
    status = request_status(ledger, req.request_id)
    assert (status.status, status.closed_index, status.reason, status.by, status.requester) == (
        REQUEST_REJECTED,
        done["index"],
        "the title is wrong",
        notary.account_id,
        holder.account_id,
    )
    row = request_row(ledger, req.request_id)
    assert (row.status, row.closed_index, row.reason, row.closed_by) == (
        REQUEST_REJECTED,
        done["index"],
        "the title is wrong",
        notary.account_id,
    )
    with pytest.raises(Conflict, match="already rejected"):
        reject_request(ledger, req.request_id, "again")
    with pytest.raises(Conflict, match="already rejected"):
        issue_certificate(ledger, eid, notary.account_id, request_id=req.request_id)
    with pytest.raises(NotFound):
        reject_request(ledger, "1" * 32, "no such request")
    # A rejected request can be followed by a new one.
    again = request_certificate(ledger, eid, holder.account_id)
    assert request_status(ledger, again.request_id).status == REQUEST_OPEN


def test_issuing_closes_the_request(ledger: Ledger) -> None:
    notary, holder, eid = _setup(ledger)
    other = (
        Services(ledger)
        .deposits.deposit_hash(OPERATOR, "ab" * 32, owner=holder.account_id)
        .evidence_id
    )
    ledger.seal()
    req = request_certificate(ledger, eid, holder.account_id)
    with pytest.raises(InvalidInput, match="is for evidence"):
        issue_certificate(ledger, other, notary.account_id, request_id=req.request_id)
    issued = issue_certificate(ledger, eid, notary.account_id, request_id=req.request_id)
    kind, body, _ = _record(ledger, issued.index)
    assert kind == "certificate.issued"
    assert body == {
        "certificate_id": issued.certificate_id,
        "evidence_id": eid,
        "account_id": notary.account_id,
        "request_id": req.request_id,
    }
    status = request_status(ledger, req.request_id)
    assert (status.status, status.certificate_id, status.closed_index, status.by) == (
        REQUEST_ISSUED,
        issued.certificate_id,
        issued.index,
        notary.account_id,
    )
    row = request_row(ledger, req.request_id)
    assert (row.status, row.certificate_id, row.closed_index) == (
        REQUEST_ISSUED,
        issued.certificate_id,
        issued.index,
    )
    with pytest.raises(Conflict, match="already issued"):
        reject_request(ledger, req.request_id, "too late")
    # Without a request, the issued event keeps the body it always had.
    plain = issue_certificate(ledger, other, notary.account_id)
    assert "request_id" not in _record(ledger, plain.index)[1]
    assert certificate_status(ledger, plain.certificate_id).request_id is None


def test_status_follows_the_log_and_the_first_revocation_wins(ledger: Ledger) -> None:
    notary, _holder, eid = _setup(ledger)
    ledger.seal()
    issued = issue_certificate(ledger, eid, notary.account_id)
    status = certificate_status(ledger, issued.certificate_id)
    assert (status.status, status.issued_index, status.revoked) == (
        "issued",
        issued.index,
        None,
    )
    with pytest.raises(NotFound):
        certificate_status(ledger, "f" * 64)
    # The ledger appends one revocation only (tests/ledger/test_ledger_once.py);
    # a log written without that check may hold two: the first one counts.
    with unchecked("certificate.revoked"):
        first, second = ledger.append(
            [
                certificate_revoked(certificate_id=issued.certificate_id, reason="first", by=None),
                certificate_revoked(certificate_id=issued.certificate_id, reason="second", by=None),
            ]
        )
    status = certificate_status(ledger, issued.certificate_id)
    assert status.revoked == Revocation(first.index, first.time, "first", None)
    row = certificate_row(ledger, issued.certificate_id)
    assert (row.revoked_index, row.revoked_time, row.revoked_reason) == (
        first.index,
        first.time,
        "first",
    )
    with pytest.raises(Conflict, match="already revoked"):
        revoke_certificate(ledger, issued.certificate_id, "third")
    before = ledger.store.dump_projections()
    assert ledger.store.rebuild() == ledger.store.size()
    assert ledger.store.dump_projections() == before
    assert certificate_status(ledger, issued.certificate_id) == status
    assert second.index == first.index + 1


def test_log_status_reads_the_deciding_records(ledger: Ledger) -> None:
    notary, _holder, eid = _setup(ledger)
    ledger.seal()
    issued = issue_certificate(ledger, eid, notary.account_id)
    cert = Certificate.from_json(issued.data)
    key_index = ledger.store.query("select idx from keys where vkey = ?", (notary.vkey,))[0]["idx"]
    s = log_status(ledger, cert)
    assert (s.origin, s.size, s.error) == (ledger.config.origin, ledger.published_size(), None)
    assert (s.issued_index, s.revoked, s.key_registered, s.key_revoked) == (
        issued.index,
        None,
        key_index,
        None,
    )
    r = revoke_certificate(ledger, issued.certificate_id, "wrong file", by=notary.account_id)
    gone = revoke_account(ledger, notary.account_id)
    key_revoked = ledger.store.entries(gone["index"] + 1, gone["index"] + 2)[0]
    s = log_status(ledger, cert)
    assert s.revoked == (r["index"], r["time"])
    assert s.key_revoked == (key_revoked[0], key_revoked[2])


def test_requests_rebuild_identically(ledger: Ledger) -> None:
    notary, holder, eid = _setup(ledger)
    second = (
        Services(ledger)
        .deposits.deposit_hash(OPERATOR, "cd" * 32, owner=holder.account_id)
        .evidence_id
    )
    ledger.seal()
    a = request_certificate(ledger, eid, holder.account_id, note="a")
    b = request_certificate(ledger, second, holder.account_id)
    reject_request(ledger, a.request_id, "no", by=notary.account_id)
    c = request_certificate(ledger, eid, holder.account_id)
    issue_certificate(ledger, eid, notary.account_id, request_id=c.request_id)
    before = ledger.store.dump_projections()
    statuses = sorted(r[6] for r in before["requests"])
    assert statuses == [REQUEST_ISSUED, REQUEST_REJECTED, REQUEST_OPEN]
    assert ledger.store.rebuild() == ledger.store.size()
    assert ledger.store.dump_projections() == before
    assert request_status(ledger, b.request_id).status == REQUEST_OPEN
