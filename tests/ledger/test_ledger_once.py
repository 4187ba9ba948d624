""" "Only once" events are atomic with their state check, on SQLite and PostgreSQL.

A revocation, a request's closing, an account's or key's revocation, a
second open request, a second active account of one name: the state they
require is checked inside the append transaction, under the sequencing
lock, so concurrent callers (threads of one process, or processes sharing
the database) append exactly one event and the others get a 409-style
:class:`StateConflict`. The races below go through the services (which
read first, as a route does) and also append raw drafts (no read at all),
so the store alone must hold the line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger.accounts import create_account, revoke_account
from ledger.core import Ledger
from ledger.errors import Conflict, NotFound, StateConflict
from ledger.events import (
    Draft,
    account_registered,
    account_revoked,
    certificate_request_rejected,
    certificate_requested,
    certificate_revoked,
    evidence_deposited,
    key_revoked,
)
from ledger.services import Services
from ledger.services.policy import Actor

REVOKER = Path(__file__).with_name("revoker_proc.py")
RACERS = 12


@dataclass
class World:
    """A notary, a rights holder, sealed evidence with an open request, and a
    certificate issued for other sealed evidence."""

    notary: Actor
    holder: Actor
    notary_vkey: str
    evidence_id: str
    request_id: str
    certificate_id: str
    certified_id: str
    """The evidence of the certificate (no request open for it)."""


def make_world(ledger: Ledger) -> World:
    services = Services(ledger)
    n = create_account(ledger, "notary", "notary-1")
    h = create_account(ledger, "rights_holder", "holder-1")
    notary = Actor(n.account_id, "notary", "notary-1")
    holder = Actor(h.account_id, "rights_holder", "holder-1")
    e1 = services.deposits.deposit_hash(holder, os.urandom(32).hex(), title="one")
    e2 = services.deposits.deposit_hash(holder, os.urandom(32).hex(), title="two")
    ledger.seal()
    req = services.certificates.request(holder, e1.evidence_id, "please")
    cert = services.certificates.issue(notary, e2.evidence_id)
    assert n.vkey is not None
    return World(
        notary,
        holder,
        n.vkey,
        e1.evidence_id,
        req.request_id,
        cert.certificate_id,
        e2.evidence_id,
    )


def race(n: int, attempt: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``attempt(i)`` on ``n`` threads released together; results and errors."""
    start = threading.Barrier(n)
    done: list[Any] = []
    failed: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        start.wait()
        try:
            out = attempt(i)
        except BaseException as e:
            with lock:
                failed.append(e)
        else:
            with lock:
                done.append(out)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done, failed


def types_after(ledger: Ledger, start: int) -> list[str]:
    return [e[1] for e in ledger.store.entries(start, ledger.store.size())]


def assert_one_won(
    ledger: Ledger,
    start: int,
    done: list[Any],
    failed: list[BaseException],
    kind: str,
    refusals: tuple[type[Exception], ...] = (Conflict,),
) -> None:
    assert len(done) == 1, (done, failed)
    assert len(failed) == RACERS - 1
    assert all(isinstance(e, refusals) for e in failed), failed
    assert types_after(ledger, start).count(kind) == 1


# -- through the services, as the routes call them ----------------------------------


def test_twelve_revocations_through_the_service_append_one(ledger: Ledger) -> None:
    w = make_world(ledger)
    services = Services(ledger)
    start = ledger.store.size()
    done, failed = race(
        RACERS, lambda i: services.certificates.revoke(w.notary, w.certificate_id, f"reason {i}")
    )
    assert_one_won(ledger, start, done, failed, "certificate.revoked")
    status = services.certificates.status(w.certificate_id)
    assert status.revoked is not None and status.revoked.index == done[0].index
    # The projection agrees with a replay of the log.
    before = ledger.store.dump_projections()
    ledger.store.rebuild()
    assert ledger.store.dump_projections() == before


def test_rejections_and_issues_of_one_request_close_it_once(ledger: Ledger) -> None:
    w = make_world(ledger)
    services = Services(ledger)
    start = ledger.store.size()

    def close(i: int) -> Any:
        if i % 2:
            return services.certificates.reject(w.notary, w.request_id, f"no {i}")
        return services.certificates.issue(w.notary, w.evidence_id, request_id=w.request_id)

    done, failed = race(RACERS, close)
    assert len(done) == 1 and len(failed) == RACERS - 1, (done, failed)
    assert all(isinstance(e, Conflict) for e in failed), failed
    added = types_after(ledger, start)
    assert len(added) == 1 and added[0] in ("certificate.issued", "certificate.request_rejected")
    assert services.certificates.get_request(w.notary, w.request_id).status != "requested"


def test_concurrent_requests_for_one_evidence_open_one(ledger: Ledger) -> None:
    w = make_world(ledger)
    services = Services(ledger)
    services.certificates.reject(w.notary, w.request_id, "start again")
    start = ledger.store.size()
    done, failed = race(
        RACERS, lambda i: services.certificates.request(w.holder, w.evidence_id, f"ask {i}")
    )
    assert_one_won(ledger, start, done, failed, "certificate.requested")


def test_concurrent_account_revocations_append_one(ledger: Ledger) -> None:
    w = make_world(ledger)
    start = ledger.store.size()
    done, failed = race(RACERS, lambda i: revoke_account(ledger, w.notary.account_id))
    # A caller that reads after the winner committed finds no active account.
    assert_one_won(ledger, start, done, failed, "account.revoked", (Conflict, NotFound))
    # Its key was revoked once, with it.
    assert types_after(ledger, start) == ["account.revoked", "key.revoked"]


def test_concurrent_registrations_of_one_name_append_one(ledger: Ledger) -> None:
    start = ledger.store.size()
    done, failed = race(RACERS, lambda i: create_account(ledger, "rights_holder", "same name"))
    assert_one_won(ledger, start, done, failed, "account.registered")


# -- raw drafts: no read before the append, the store alone decides ----------------------


def _drafts(w: World, kind: str) -> Callable[[int], Draft]:
    return {
        "certificate.revoked": lambda i: certificate_revoked(
            certificate_id=w.certificate_id, reason=f"r{i}", by=None
        ),
        "certificate.request_rejected": lambda i: certificate_request_rejected(
            request_id=w.request_id, reason=f"r{i}", by=None
        ),
        "certificate.requested": lambda i: certificate_requested(
            evidence_id=w.certified_id, requester=w.holder.account_id, note=f"ask {i}"
        ),
        "account.revoked": lambda i: account_revoked(account_id=w.holder.account_id),
        "key.revoked": lambda i: key_revoked(account_id=w.notary.account_id, vkey=w.notary_vkey),
        "account.registered": lambda i: account_registered(
            role="auditor", name="auditor-x", token_sha256=os.urandom(32).hex()
        ),
    }[kind]


ONCE = [
    "certificate.revoked",
    "certificate.request_rejected",
    "certificate.requested",
    "account.revoked",
    "key.revoked",
    "account.registered",
]


@pytest.mark.parametrize("kind", ONCE)
def test_raw_drafts_racing_append_once(ledger: Ledger, kind: str) -> None:
    w = make_world(ledger)
    make = _drafts(w, kind)
    drafts = [make(i) for i in range(RACERS)]
    start = ledger.store.size()
    done, failed = race(RACERS, lambda i: ledger.append([drafts[i]]))
    assert_one_won(ledger, start, done, failed, kind)
    assert all(isinstance(e, StateConflict) for e in failed)
    # Sequentially, too: the same event again is refused and appends nothing.
    size = ledger.store.size()
    with pytest.raises(StateConflict):
        ledger.append([make(99)])
    assert ledger.store.size() == size


def test_a_refused_draft_does_not_fail_its_group(ledger: Ledger) -> None:
    """Drafts of many callers share one transaction (group commit): the one
    whose requirement fails is refused alone, the others are appended."""
    w = make_world(ledger)
    start = ledger.store.size()
    # In one store call, the second revocation sees the first one's effect.
    revoke = _drafts(w, "certificate.revoked")
    deposit = evidence_deposited(kind="hash", sha256=os.urandom(32).hex())
    with pytest.raises(StateConflict) as e:
        ledger.store.append([revoke(1), deposit, revoke(2)])
    assert e.value.position == 2
    assert ledger.store.size() == start  # nothing of the group
    # Through the sequencer, queued together with deposits of other callers.
    futures = []
    for i in range(20):
        futures.append(ledger.sequencer.submit([revoke(i)] if i % 5 == 0 else [_deposit()]))
    outcomes = [f.exception(timeout=30) for f in futures]
    refused = [i for i, x in enumerate(outcomes) if x is not None]
    assert refused == [5, 10, 15], outcomes
    assert all(isinstance(outcomes[i], StateConflict) for i in refused)
    added = types_after(ledger, start)
    assert added.count("certificate.revoked") == 1 and added.count("evidence.deposited") == 16
    # A request can be rejected and a new one opened in one group: each
    # requirement reads the state left by the drafts before it.
    fresh = certificate_requested(evidence_id=w.evidence_id, requester=w.holder.account_id)
    reject = _drafts(w, "certificate.request_rejected")(0)
    with pytest.raises(StateConflict):
        ledger.store.append([fresh, reject])  # the request is still open: refused
    ledger.append([reject, fresh])


def _deposit() -> Draft:
    return evidence_deposited(kind="hash", sha256=os.urandom(32).hex())


def test_a_revoked_notary_key_issues_nothing(ledger: Ledger) -> None:
    """An issue racing the notary's revocation: if the revocation is appended
    first, the certificate signed with the revoked key is refused."""
    w = make_world(ledger)
    services = Services(ledger)
    e = services.deposits.deposit_hash(w.holder, os.urandom(32).hex())
    ledger.seal()
    from ledger.certificates import issue_certificate

    real_append = ledger.append

    def revoke_first(drafts: Any) -> Any:
        ledger.append = real_append  # type: ignore[method-assign]
        revoke_account(ledger, w.notary.account_id)  # lands between check and append
        return real_append(drafts)

    ledger.append = revoke_first  # type: ignore[method-assign]
    try:
        with pytest.raises(StateConflict, match="revoked"):
            issue_certificate(ledger, e.evidence_id, w.notary.account_id)
    finally:
        ledger.append = real_append  # type: ignore[method-assign]
    assert types_after(ledger, ledger.store.size() - 2) == ["account.revoked", "key.revoked"]


# -- processes sharing one database ------------------------------------------------------


def test_revocations_from_two_processes_append_one(ledger: Ledger, tmp_path: Path) -> None:
    """Two processes (two API hosts on PostgreSQL, two workers on SQLite),
    six threads each, revoke one certificate at the same moment."""
    w = make_world(ledger)
    home = ledger.config.home
    start = ledger.store.size()
    go = tmp_path / "go"
    procs, outs = [], []
    for p in range(2):
        out = tmp_path / f"out-{p}"
        outs.append(out)
        procs.append(
            subprocess.Popen(
                [sys.executable, str(REVOKER), str(home), w.certificate_id, "6", str(go), str(out)],
                stderr=subprocess.PIPE,
            )
        )
    deadline = time.monotonic() + 60
    while not all(o.exists() for o in outs):
        assert time.monotonic() < deadline, "revokers never became ready"
        assert all(p.poll() is None for p in procs), [p.stderr.read() for p in procs if p.stderr]
        time.sleep(0.02)
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    results = [json.loads(line) for o in outs for line in o.read_text().splitlines()]
    assert len(results) == 12
    won = [r for r in results if "index" in r]
    assert len(won) == 1, results
    assert all(
        r.get("error") == "StateConflict" or r.get("error") == "Conflict"
        for r in results
        if r not in won
    )
    assert types_after(ledger, start) == ["certificate.revoked"]
