"""What "only once" events require of the ledger's state, checked as they are appended.

Some events may happen once for what they name, or only in a given state:

- ``certificate.revoked``: the certificate is issued and not yet revoked;
- ``certificate.request_rejected``: the request is open;
- ``certificate.issued``: the issuing notary's key is still valid and, when
  it answers a request, that request is open and for this evidence;
- ``certificate.requested``: no other request for the evidence is open;
- ``account.registered``: no active account of the same role has the name;
- ``account.revoked`` and ``key.revoked``: the account (key) is still active;
- ``evidence.deposited``: the depositing account (the owner) is not revoked,
  so an account revoked while its upload streams in deposits nothing. An
  owner that names no account at all (a draft appended by the operator's own
  code) is not refused: accounts are never deleted, only revoked.

A service checks these first, to answer with a precise message, but two
callers can both pass such a check before either appends. So each event's
requirement is derived here, as data, from the typed event itself (whoever
drafted it), and the store evaluates it inside the append transaction,
under the sequencing lock, against the projections as they stand after
every event before it (earlier log entries and earlier drafts of the same
group): of concurrent callers exactly one appends, the others get
:class:`~ledger.errors.StateConflict` and append nothing. Projections hold
the state because they are updated in that same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from verifier.events import (
    AccountRegistered,
    AccountRevoked,
    CertificateIssued,
    CertificateRequested,
    CertificateRequestRejected,
    CertificateRevoked,
    Event,
    EvidenceDeposited,
    KeyRevoked,
)

__all__ = ["REQUIREMENTS", "Require", "requirements"]


class Require(NamedTuple):
    """A row of ``table`` whose ``match`` columns equal their values and whose
    ``open_column`` is still null (with ``closed``: is set) must exist
    (``exists``) or must not; else the event is refused with ``message``.
    Table and column names are this module's constants, never input."""

    table: str
    match: tuple[tuple[str, Any], ...]
    open_column: str
    exists: bool
    message: str
    closed: bool = False


E = TypeVar("E", bound=Event[Any])
Rule = Callable[[Any], list[Require]]

REQUIREMENTS: dict[str, Rule] = {}
"""The requirement of each event type that has one."""


def _rule(cls: type[E]) -> Callable[[Callable[[E], list[Require]]], Rule]:
    def register(fn: Callable[[E], list[Require]]) -> Rule:
        REQUIREMENTS[cls.TYPE] = fn
        return fn

    return register


def requirements(event: Event[Any]) -> list[Require]:
    """What the state must be for ``event`` to be appended (empty: nothing)."""
    rule = REQUIREMENTS.get(event.TYPE)
    return [] if rule is None else rule(event)


@_rule(CertificateRevoked)
def _certificate_revoked(e: CertificateRevoked) -> list[Require]:
    cid = e.certificate_id
    return [
        Require(
            "certificates",
            (("certificate_id", cid),),
            "revoked_idx",
            True,
            f"certificate: {cid} is not issued or was already revoked",
        )
    ]


@_rule(CertificateRequestRejected)
def _request_rejected(e: CertificateRequestRejected) -> list[Require]:
    rid = e.request_id
    return [
        Require(
            "requests",
            (("request_id", rid),),
            "closed_idx",
            True,
            f"certificate request: {rid} is not open (already rejected or issued)",
        )
    ]


@_rule(CertificateIssued)
def _certificate_issued(e: CertificateIssued) -> list[Require]:
    out = []
    vkey = _issuer_vkey(e)
    if vkey is not None:
        out.append(
            Require(
                "keys",
                (("vkey", vkey), ("account_id", e.account_id)),
                "revoked_idx",
                True,
                f"certificate: the key of notary {e.account_id} is not registered or was revoked",
            )
        )
    if e.request_id is not None:
        out.append(
            Require(
                "requests",
                (("request_id", e.request_id), ("evidence_id", e.evidence_id)),
                "closed_idx",
                True,
                f"certificate request: {e.request_id} is not an open request for evidence "
                f"{e.evidence_id}",
            )
        )
    return out


def _issuer_vkey(e: CertificateIssued) -> str | None:
    """The issuer's verifier key named inside the certificate (private body)."""
    if e.private is None:
        return None
    try:
        vkey = json.loads(e.private.certificate)["issuer"]["vkey"]
    except (ValueError, TypeError, KeyError):
        return None
    return vkey if isinstance(vkey, str) else None


@_rule(CertificateRequested)
def _certificate_requested(e: CertificateRequested) -> list[Require]:
    eid = e.evidence_id
    return [
        Require(
            "requests",
            (("evidence_id", eid),),
            "closed_idx",
            False,
            f"certificate request: a request for evidence {eid} is still open",
        )
    ]


@_rule(AccountRegistered)
def _account_registered(e: AccountRegistered) -> list[Require]:
    if e.private is None:
        return []
    name = e.private.name
    return [
        Require(
            "accounts",
            (("role", e.role), ("name", name)),
            "revoked_idx",
            False,
            f"account: an active {e.role} named {name!r} already exists",
        )
    ]


@_rule(AccountRevoked)
def _account_revoked(e: AccountRevoked) -> list[Require]:
    aid = e.account_id
    return [
        Require(
            "accounts",
            (("account_id", aid),),
            "revoked_idx",
            True,
            f"account: {aid} is not an active account (already revoked?)",
        )
    ]


@_rule(KeyRevoked)
def _key_revoked(e: KeyRevoked) -> list[Require]:
    return [
        Require(
            "keys",
            (("vkey", e.vkey), ("account_id", e.account_id)),
            "revoked_idx",
            True,
            f"key: {e.vkey} of account {e.account_id} is not active (already revoked?)",
        )
    ]


@_rule(EvidenceDeposited)
def _evidence_deposited(e: EvidenceDeposited) -> list[Require]:
    owner = e.private.owner if e.private is not None else None
    if owner is None:
        return []
    return [
        Require(
            "accounts",
            (("account_id", owner),),
            "revoked_idx",
            False,
            f"deposit: account {owner} was revoked; nothing was deposited",
            closed=True,
        )
    ]
