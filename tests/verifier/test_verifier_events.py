"""The event catalogue: round trips, strict parsing, time and deposit number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.canonical import canonicalize, loads_canonical
from verifier.errors import MalformedError
from verifier.events import (
    CATALOGUE,
    KINDS,
    ROLES,
    AccountRegistered,
    AccountRegisteredPrivate,
    AccountRevoked,
    CertificateIssued,
    CertificateIssuedPrivate,
    CertificateRequested,
    CertificateRequestedPrivate,
    CertificateRequestRejected,
    CertificateRequestRejectedPrivate,
    CertificateRevoked,
    CertificateRevokedPrivate,
    Event,
    EventError,
    EvidenceDeposited,
    EvidenceDepositedPrivate,
    KeyRegistered,
    KeyRevoked,
    NoPrivate,
    deposit_number,
    format_time,
    parse_event,
    parse_time,
)
from verifier.note import VerifierKey

ID = "0123456789abcdef" * 2
CID = "ab" * 32
VKEY = VerifierKey.from_public_key("notary.test/n1", bytes(range(32))).to_text()
T = "2026-03-01T08:09:10.123456Z"

ids = st.text("0123456789abcdef", min_size=32, max_size=32)
digests = st.text("0123456789abcdef", min_size=64, max_size=64)
texts = st.text(max_size=40)
nonempty = st.text(min_size=1, max_size=40)
maybe = st.none().__or__
times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
).map(format_time)
vkeys = st.builds(
    lambda name, key: VerifierKey.from_public_key(name, key).to_text(),
    st.text("abcdefghijklmnopqrstuvwxyz./-0123456789", min_size=1, max_size=30),
    st.binary(min_size=32, max_size=32),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def deposits(draw: st.DrawFn) -> EvidenceDeposited:
    kind = draw(st.sampled_from(KINDS))
    private = EvidenceDepositedPrivate(
        kind=kind,
        sha256=draw(digests),
        sm3=draw(maybe(digests)),
        size=draw(maybe(st.integers(0, 2**53 - 1))),
        title=draw(maybe(texts)),
        description=draw(maybe(texts)),
        file_name=draw(maybe(texts)),
        media_type=draw(maybe(texts)),
        owner=draw(maybe(texts)),
        idempotency_key=draw(maybe(texts)),
        request_sha256=draw(maybe(digests)),
        extra=draw(maybe(st.dictionaries(texts, json_values, min_size=1, max_size=3))),
    )
    return EvidenceDeposited(evidence_id=draw(ids), kind=kind, private=private)


events: st.SearchStrategy[Event[Any]] = st.one_of(
    deposits(),
    st.builds(
        lambda a, r, n, t: AccountRegistered(
            account_id=a, role=r, private=AccountRegisteredPrivate(name=n, token_sha256=t)
        ),
        ids,
        st.sampled_from(ROLES),
        nonempty,
        maybe(digests),
    ),
    st.builds(lambda a: AccountRevoked(account_id=a, private=NoPrivate()), ids),
    st.builds(
        lambda a, k, t: KeyRegistered(
            account_id=a, vkey=k, purpose="certificate", valid_from=t, private=NoPrivate()
        ),
        ids,
        vkeys,
        times,
    ),
    st.builds(lambda a, k: KeyRevoked(account_id=a, vkey=k, private=NoPrivate()), ids, vkeys),
    st.builds(
        lambda r, e, q, n: CertificateRequested(
            request_id=r,
            evidence_id=e,
            private=CertificateRequestedPrivate(requester=q, note=n),
        ),
        ids,
        ids,
        ids,
        maybe(texts),
    ),
    st.builds(
        lambda r, why, by: CertificateRequestRejected(
            request_id=r, private=CertificateRequestRejectedPrivate(reason=why, by=by)
        ),
        ids,
        nonempty,
        maybe(ids),
    ),
    st.builds(
        lambda c, e, a, r, data: CertificateIssued(
            certificate_id=c,
            evidence_id=e,
            account_id=a,
            request_id=r,
            private=CertificateIssuedPrivate(certificate=data),
        ),
        digests,
        ids,
        ids,
        maybe(ids),
        nonempty,
    ),
    st.builds(
        lambda c, why, by: CertificateRevoked(
            certificate_id=c, private=CertificateRevokedPrivate(reason=why, by=by)
        ),
        digests,
        nonempty,
        maybe(ids),
    ),
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_every_event_round_trips_through_canonical_json(event: Event[Any]) -> None:
    body = loads_canonical(canonicalize(event.to_body()))
    private = loads_canonical(canonicalize(event.to_private()))
    again = parse_event(event.TYPE, body, private)
    assert again == event
    assert type(again) is type(event)
    # The public record alone parses too, with the private body unknown.
    public_only = parse_event(event.TYPE, body)
    assert public_only.private is None
    assert public_only.to_body() == event.to_body()
    with pytest.raises(EventError, match="private body is not known"):
        public_only.to_private()


def test_the_catalogue_lists_every_event_class_once() -> None:
    assert set(CATALOGUE) == {
        "evidence.deposited",
        "account.registered",
        "account.revoked",
        "key.registered",
        "key.revoked",
        "certificate.requested",
        "certificate.request_rejected",
        "certificate.issued",
        "certificate.revoked",
    }
    for type_, cls in CATALOGUE.items():
        assert type_ == cls.TYPE
        assert cls.__doc__ and type_ in cls.__doc__


def test_bodies_keep_the_shape_the_ledger_has_always_written() -> None:
    """Existing logs: the catalogue writes the same members as before, nulls included."""
    deposit = EvidenceDeposited(
        evidence_id=ID,
        kind="hash",
        private=EvidenceDepositedPrivate(kind="hash", sha256=CID, title="t"),
    )
    assert deposit.to_body() == {"evidence_id": ID, "kind": "hash"}
    assert deposit.to_private() == {"kind": "hash", "sha256": CID, "title": "t"}
    account = AccountRegistered(
        account_id=ID, role="notary", private=AccountRegisteredPrivate(name="n")
    )
    assert account.to_private() == {"name": "n", "token_sha256": None}
    revoked = CertificateRevoked(certificate_id=CID, private=CertificateRevokedPrivate(reason="r"))
    assert revoked.to_body() == {"certificate_id": CID}
    assert revoked.to_private() == {"reason": "r", "by": None}
    issued = CertificateIssued(
        certificate_id=CID,
        evidence_id=ID,
        account_id=ID,
        private=CertificateIssuedPrivate(certificate="{}"),
    )
    assert issued.to_body() == {"certificate_id": CID, "evidence_id": ID, "account_id": ID}
    key = KeyRevoked(account_id=ID, vkey=VKEY, private=NoPrivate())
    assert key.to_private() == {}


def test_early_private_bodies_with_nulls_still_parse() -> None:
    """The first ledgers wrote absent deposit facts as nulls."""
    private = {
        "kind": "file",
        "sha256": CID,
        "sm3": None,
        "size": 3,
        "title": None,
        "description": None,
        "file_name": "a.txt",
        "media_type": None,
        "owner": None,
    }
    event = parse_event("evidence.deposited", {"evidence_id": ID, "kind": "file"}, private)
    assert isinstance(event, EvidenceDeposited)
    assert event.opened().size == 3 and event.opened().sm3 is None
    assert event.to_private() == {"kind": "file", "sha256": CID, "size": 3, "file_name": "a.txt"}


DEPOSIT = {"evidence_id": ID, "kind": "hash"}
DEPOSIT_PRIVATE = {"kind": "hash", "sha256": CID}

# (name, type, public body, private body or None, message fragment)
MALFORMED: list[tuple[str, str, Any, Any, str]] = [
    ("unknown-type", "evidence.deleted", {}, None, "unknown type"),
    ("body-not-object", "evidence.deposited", [ID, "hash"], None, "must be a JSON object"),
    ("missing-member", "evidence.deposited", {"evidence_id": ID}, None, "missing members"),
    ("unknown-member", "evidence.deposited", {**DEPOSIT, "owner": "x"}, None, "unknown members"),
    ("private-as-member", "evidence.deposited", {**DEPOSIT, "private": {}}, None, "unknown"),
    ("bad-kind", "evidence.deposited", {**DEPOSIT, "kind": "rumour"}, None, "kind must be"),
    ("id-uppercase", "evidence.deposited", {**DEPOSIT, "evidence_id": ID.upper()}, None, "hex"),
    ("id-short", "evidence.deposited", {**DEPOSIT, "evidence_id": ID[:31]}, None, "hex"),
    ("id-number", "account.revoked", {"account_id": 7}, {}, "hex"),
    ("null-required", "evidence.deposited", {**DEPOSIT, "kind": None}, None, "is required"),
    (
        "kinds-differ",
        "evidence.deposited",
        DEPOSIT,
        {**DEPOSIT_PRIVATE, "kind": "file"},
        "differs",
    ),
    (
        "private-unknown",
        "evidence.deposited",
        DEPOSIT,
        {**DEPOSIT_PRIVATE, "score": 1},
        "unknown members",
    ),
    (
        "private-not-object",
        "evidence.deposited",
        DEPOSIT,
        [DEPOSIT_PRIVATE],
        "must be a JSON object",
    ),
    (
        "size-float",
        "evidence.deposited",
        DEPOSIT,
        {**DEPOSIT_PRIVATE, "size": 1.0},
        "size must be",
    ),
    (
        "size-bool",
        "evidence.deposited",
        DEPOSIT,
        {**DEPOSIT_PRIVATE, "size": True},
        "size must be",
    ),
    (
        "size-negative",
        "evidence.deposited",
        DEPOSIT,
        {**DEPOSIT_PRIVATE, "size": -1},
        "size must be",
    ),
    (
        "extra-not-object",
        "evidence.deposited",
        DEPOSIT,
        {**DEPOSIT_PRIVATE, "extra": []},
        "extra must be",
    ),
    ("bad-role", "account.registered", {"account_id": ID, "role": "judge"}, None, "role must"),
    (
        "empty-name",
        "account.registered",
        {"account_id": ID, "role": "admin"},
        {"name": ""},
        "name must be",
    ),
    (
        "vkey-not-canonical",
        "key.revoked",
        {"account_id": ID, "vkey": " " + VKEY},
        {},
        "vkey must be",
    ),
    (
        "vkey-garbage",
        "key.revoked",
        {"account_id": ID, "vkey": "n+0+key"},
        {},
        "vkey must be",
    ),
    (
        "purpose",
        "key.registered",
        {"account_id": ID, "vkey": VKEY, "purpose": "tsa", "valid_from": T},
        {},
        "purpose must be",
    ),
    (
        "valid-from-date",
        "key.registered",
        {"account_id": ID, "vkey": VKEY, "purpose": "certificate", "valid_from": "2026-01-01"},
        {},
        "valid_from must be",
    ),
    (
        "valid-from-day-32",
        "key.registered",
        {
            "account_id": ID,
            "vkey": VKEY,
            "purpose": "certificate",
            "valid_from": "2026-01-32T00:00:00.000000Z",
        },
        {},
        "valid_from must be",
    ),
    ("key-private", "key.revoked", {"account_id": ID, "vkey": VKEY}, {"why": "x"}, "unknown"),
    ("cert-id-32", "certificate.revoked", {"certificate_id": ID}, None, "64 lowercase hex"),
    (
        "empty-reason",
        "certificate.revoked",
        {"certificate_id": CID},
        {"reason": "", "by": None},
        "reason must be",
    ),
    (
        "request-null-id",
        "certificate.issued",
        {"certificate_id": CID, "evidence_id": ID, "account_id": ID, "request_id": 5},
        None,
        "request_id must be",
    ),
    (
        "requester-missing",
        "certificate.requested",
        {"request_id": ID, "evidence_id": ID},
        {"note": "please"},
        "missing members",
    ),
]


@pytest.mark.parametrize(
    ("type_", "body", "private", "fragment"),
    [m[1:] for m in MALFORMED],
    ids=[m[0] for m in MALFORMED],
)
def test_malformed_bodies_raise_one_typed_error(
    type_: str, body: Any, private: Any, fragment: str
) -> None:
    with pytest.raises(EventError, match=fragment) as info:
        parse_event(type_, body, private)
    assert isinstance(info.value, MalformedError)
    message = str(info.value)
    assert "\n" not in message
    assert message.split(":")[0].startswith(("event", type_))


def test_constructing_an_invalid_event_fails_too() -> None:
    """An instance is valid whichever way it was made."""
    with pytest.raises(EventError, match="role must be one of"):
        AccountRegistered(account_id=ID, role="judge")
    with pytest.raises(EventError, match="sha256 must be 64 lowercase hex digits"):
        EvidenceDepositedPrivate(kind="hash", sha256="AB" * 32)


def test_time_format() -> None:
    t = datetime(2026, 3, 1, 16, 9, 10, 123456, tzinfo=timezone(timedelta(hours=8)))
    assert format_time(t) == "2026-03-01T08:09:10.123456Z"
    assert parse_time(format_time(t)) == t
    assert format_time(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"
    for bad in (
        "2026-03-01T08:09:10Z",
        "2026-03-01T08:09:10.123Z",
        "2026-03-01T08:09:10.123456+00:00",
        "2026-02-30T08:09:10.123456Z",
        "2026-03-01 08:09:10.123456Z",
        20260301,
    ):
        with pytest.raises(EventError, match="time"):
            parse_time(bad)


def test_deposit_number() -> None:
    assert deposit_number(42, "2026-11-21T00:00:00.000000Z") == "EL-20261121-0000000042"
    assert deposit_number(0, T) == "EL-20260301-0000000000"
