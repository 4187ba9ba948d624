"""The event catalogue: every event type the log holds, defined once.

Each event type is one frozen dataclass: its public body (published in the
leaf, see :mod:`verifier.record`) as fields, and its private body (kept
beside the leaf, committed to by the record's ``commitment``) as a second
dataclass in ``private``, absent when only the public record is known.
Values are checked when an event is built, so an instance is always valid;
:meth:`Event.from_body` parses JSON bodies strictly (exact members, exact
types) and any fault is one :class:`EventError`; :meth:`Event.to_body` and
:meth:`Event.to_private` give the bodies back.

This module also defines, once for the verifier and the ledger alike, the
evidence kinds, the account roles, the log's time format and the deposit
number (存证编号). The ledger builds its events from these classes and never
re-derives them.

A member that is not required may be absent or ``null`` (the two mean the
same; early ledgers wrote nulls in private bodies). Members named nowhere in
a definition are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, ClassVar, Generic, Self, TypeVar

from verifier.errors import MalformedError
from verifier.note import VerifierKey

__all__ = [
    "CATALOGUE",
    "CERTIFICATE_KEY_PURPOSE",
    "KEY_PURPOSES",
    "KINDS",
    "ROLES",
    "TIME_PATTERN",
    "AccountRegistered",
    "AccountRegisteredPrivate",
    "AccountRevoked",
    "CertificateIssued",
    "CertificateIssuedPrivate",
    "CertificateRequestRejected",
    "CertificateRequestRejectedPrivate",
    "CertificateRequested",
    "CertificateRequestedPrivate",
    "CertificateRevoked",
    "CertificateRevokedPrivate",
    "Event",
    "EventError",
    "EvidenceDeposited",
    "EvidenceDepositedPrivate",
    "KeyRegistered",
    "KeyRevoked",
    "NoPrivate",
    "Private",
    "deposit_number",
    "format_time",
    "parse_event",
    "parse_time",
]

KINDS = ("file", "hash", "capture")
"""Evidence kinds: an uploaded file, a hash-only deposit, a platform capture."""
ROLES = ("rights_holder", "notary", "auditor", "admin")
"""Account roles."""
CERTIFICATE_KEY_PURPOSE = "certificate"
KEY_PURPOSES = (CERTIFICATE_KEY_PURPOSE,)
"""What a registered key may sign (a notary's key signs certificates)."""

TIME_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z"
"""The log's only time format: UTC with microseconds, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
_TIME = re.compile(TIME_PATTERN)
_STRFTIME = "%Y-%m-%dT%H:%M:%S.%fZ"
_ID = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class EventError(MalformedError):
    """An event body does not match its definition in the catalogue."""


def format_time(t: datetime) -> str:
    """``t`` in the log's time format (converted to UTC)."""
    return t.astimezone(UTC).strftime(_STRFTIME)


def parse_time(text: object, what: str = "time") -> datetime:
    """Parse a time in the log's format strictly (a real date, exactly six fraction digits)."""
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise EventError(f"{what}: {text!r} is not a UTC time YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        return datetime.strptime(text, _STRFTIME).replace(tzinfo=UTC)
    except ValueError as e:
        raise EventError(f"{what}: {text!r} is not a valid date and time") from e


def deposit_number(index: int, time: str) -> str:
    """存证编号: ``EL-<YYYYMMDD of the entry's time>-<log index, 10 digits>``."""
    return f"EL-{time[0:4]}{time[5:7]}{time[8:10]}-{index:010d}"


# -- member rules ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    test: Callable[[Any], bool]
    expect: str


def _is_time(v: Any) -> bool:
    try:
        parse_time(v)
    except EventError:
        return False
    return True


def _is_vkey(v: Any) -> bool:
    """A signed-note verifier key in its one canonical spelling."""
    if not isinstance(v, str):
        return False
    try:
        return VerifierKey.from_text(v).to_text() == v
    except MalformedError:
        return False


_IDENT = _Rule(lambda v: type(v) is str and _ID.fullmatch(v) is not None, "32 lowercase hex digits")
_DIGEST = _Rule(
    lambda v: type(v) is str and _HEX64.fullmatch(v) is not None, "64 lowercase hex digits"
)
_TEXT = _Rule(lambda v: type(v) is str, "a string")
_NONEMPTY = _Rule(lambda v: type(v) is str and v != "", "a non-empty string")
_SIZE = _Rule(lambda v: type(v) is int and 0 <= v < 2**53, "a non-negative integer")
_OBJECT = _Rule(lambda v: type(v) is dict, "a JSON object")
_KIND = _Rule(lambda v: v in KINDS and type(v) is str, "one of " + ", ".join(KINDS))
_ROLE = _Rule(lambda v: v in ROLES and type(v) is str, "one of " + ", ".join(ROLES))
_PURPOSE = _Rule(
    lambda v: v in KEY_PURPOSES and type(v) is str, "one of " + ", ".join(KEY_PURPOSES)
)
_TIME_RULE = _Rule(_is_time, "a UTC time YYYY-MM-DDTHH:MM:SS.ffffffZ")
_VKEY = _Rule(_is_vkey, "a verifier key name+hash+key")

_META = "catalogue"


def _required(rule: _Rule) -> dict[str, Any]:
    """Field metadata of a required member."""
    return {_META: (rule, True, False)}


def _optional(rule: _Rule, *, write_null: bool = False) -> dict[str, Any]:
    """Field metadata of a member that may be absent or null; written as ``null``
    when None if ``write_null`` (else left out)."""
    return {_META: (rule, False, not write_null)}


@dataclass(frozen=True, slots=True)
class _Spec:
    """A body class's members, read with one C-level getter on the hot path."""

    names: tuple[str, ...]
    known: frozenset[str]
    members: tuple[tuple[str, _Rule, bool], ...]
    """``(name, rule, required)`` in declaration order."""
    omit: tuple[bool, ...]
    """Whether a None value is left out when written."""
    values: Callable[[Any], tuple[Any, ...]]


_SPECS: dict[type, _Spec] = {}


def _spec(cls: type) -> _Spec:
    try:
        return _SPECS[cls]
    except KeyError:
        pass
    members = [(f.name, *f.metadata[_META]) for f in fields(cls) if _META in f.metadata]
    names = tuple(m[0] for m in members)
    values: Callable[[Any], tuple[Any, ...]]
    if len(names) > 1:
        values = attrgetter(*names)
    else:  # attrgetter of one name returns the value itself, not a tuple
        getters = [attrgetter(n) for n in names]

        def values(obj: Any) -> tuple[Any, ...]:
            return tuple(get(obj) for get in getters)

    spec = _Spec(
        names=names,
        known=frozenset(names),
        members=tuple((name, rule, req) for name, rule, req, _ in members),
        omit=tuple(omit for *_, omit in members),
        values=values,
    )
    _SPECS[cls] = spec
    return spec


# -- bodies -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Body:
    """Members checked on construction, parsed and written as a JSON object."""

    WHAT: ClassVar[str] = "event"

    def __post_init__(self) -> None:
        spec = _spec(type(self))
        for (name, rule, required), value in zip(spec.members, spec.values(self), strict=True):
            if value is None:
                if required:
                    raise EventError(f"{self.WHAT}: {name} is required")
            elif not rule.test(value):
                raise EventError(f"{self.WHAT}: {name} must be {rule.expect}")
        self._check()

    def _check(self) -> None:
        """Checks across members (none by default)."""

    @classmethod
    def _checked(cls, obj: object) -> dict[str, Any]:
        if type(obj) is not dict:
            raise EventError(f"{cls.WHAT}: must be a JSON object")
        spec = _spec(cls)
        unknown = obj.keys() - spec.known
        if unknown:
            raise EventError(f"{cls.WHAT}: unknown members {sorted(map(str, unknown))}")
        missing = [name for name, _, required in spec.members if required and name not in obj]
        if missing:
            raise EventError(f"{cls.WHAT}: missing members {missing}")
        return obj

    def _json(self) -> dict[str, Any]:
        spec = _spec(type(self))
        return {
            name: value
            for name, omit, value in zip(spec.names, spec.omit, spec.values(self), strict=True)
            if value is not None or not omit
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Private(_Body):
    """A private body: stored beside the leaf, never published."""

    @classmethod
    def from_json(cls, obj: object) -> Self:
        """Parse a private body strictly."""
        return cls(**cls._checked(obj))

    def to_json(self) -> dict[str, Any]:
        """The private body as a JSON object."""
        return self._json()


@dataclass(frozen=True, slots=True, kw_only=True)
class NoPrivate(Private):
    """The private body of an event with nothing private: ``{}``."""


P = TypeVar("P", bound=Private)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event(_Body, Generic[P]):
    """One event of the log: its public body, and its private body if known."""

    TYPE: ClassVar[str]
    PRIVATE: ClassVar[type[Private]] = NoPrivate

    private: P | None = None
    """The private body, or None when only the public record is known."""

    @classmethod
    def from_body(cls, body: object, private: object = None) -> Self:
        """Parse a public body and, if given, a private body, strictly."""
        public = cls._checked(body)
        opened: Any = None if private is None else cls.PRIVATE.from_json(private)
        return cls(**public, private=opened)

    def to_body(self) -> dict[str, Any]:
        """The public body (what the leaf publishes)."""
        return self._json()

    def opened(self) -> P:
        """The private body; an error when it is not known."""
        if self.private is None:
            raise EventError(f"{self.TYPE}: the private body is not known")
        return self.private

    def to_private(self) -> dict[str, Any]:
        """The private body as a JSON object; an error when it is not known."""
        return self.opened().to_json()


# -- the catalogue ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceDepositedPrivate(Private):
    """Facts of a deposit: digests, size, descriptions, depositor, idempotency."""

    WHAT: ClassVar[str] = "evidence.deposited private body"

    kind: str = field(metadata=_required(_KIND))
    sha256: str = field(metadata=_required(_DIGEST))
    sm3: str | None = field(default=None, metadata=_optional(_DIGEST))
    size: int | None = field(default=None, metadata=_optional(_SIZE))
    title: str | None = field(default=None, metadata=_optional(_TEXT))
    description: str | None = field(default=None, metadata=_optional(_TEXT))
    file_name: str | None = field(default=None, metadata=_optional(_TEXT))
    media_type: str | None = field(default=None, metadata=_optional(_TEXT))
    owner: str | None = field(default=None, metadata=_optional(_TEXT))
    """The depositor's account id."""
    idempotency_key: str | None = field(default=None, metadata=_optional(_TEXT))
    request_sha256: str | None = field(default=None, metadata=_optional(_DIGEST))
    extra: dict[str, Any] | None = field(default=None, metadata=_optional(_OBJECT))
    """Facts of the kind (a capture's id, URLs and artefacts)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceDeposited(Event[EvidenceDepositedPrivate]):
    """``evidence.deposited``: only the evidence id and kind are public."""

    TYPE: ClassVar[str] = "evidence.deposited"
    WHAT: ClassVar[str] = TYPE
    PRIVATE: ClassVar[type[Private]] = EvidenceDepositedPrivate

    evidence_id: str = field(metadata=_required(_IDENT))
    kind: str = field(metadata=_required(_KIND))

    def _check(self) -> None:
        if self.private is not None and self.private.kind != self.kind:
            raise EventError(f"{self.TYPE}: the private kind differs from the public kind")


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRegisteredPrivate(Private):
    """The account's name and the SHA-256 of its bearer token."""

    WHAT: ClassVar[str] = "account.registered private body"

    name: str = field(metadata=_required(_NONEMPTY))
    token_sha256: str | None = field(default=None, metadata=_optional(_DIGEST, write_null=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRegistered(Event[AccountRegisteredPrivate]):
    """``account.registered``: the account id and role are public."""

    TYPE: ClassVar[str] = "account.registered"
    WHAT: ClassVar[str] = TYPE
    PRIVATE: ClassVar[type[Private]] = AccountRegisteredPrivate

    account_id: str = field(metadata=_required(_IDENT))
    role: str = field(metadata=_required(_ROLE))


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRevoked(Event[NoPrivate]):
    """``account.revoked``: the account may no longer act."""

    TYPE: ClassVar[str] = "account.revoked"
    WHAT: ClassVar[str] = TYPE

    account_id: str = field(metadata=_required(_IDENT))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRegistered(Event[NoPrivate]):
    """``key.registered``: a verifier key bound to an account, in the open."""

    TYPE: ClassVar[str] = "key.registered"
    WHAT: ClassVar[str] = TYPE

    account_id: str = field(metadata=_required(_IDENT))
    vkey: str = field(metadata=_required(_VKEY))
    purpose: str = field(metadata=_required(_PURPOSE))
    valid_from: str = field(metadata=_required(_TIME_RULE))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRevoked(Event[NoPrivate]):
    """``key.revoked``: the key signs nothing from this entry on."""

    TYPE: ClassVar[str] = "key.revoked"
    WHAT: ClassVar[str] = TYPE

    account_id: str = field(metadata=_required(_IDENT))
    vkey: str = field(metadata=_required(_VKEY))


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateRequestedPrivate(Private):
    """Who asked for the certificate, and their note to the notary."""

    WHAT: ClassVar[str] = "certificate.requested private body"

    requester: str = field(metadata=_required(_IDENT))
    note: str | None = field(default=None, metadata=_optional(_TEXT))


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateRequested(Event[CertificateRequestedPrivate]):
    """``certificate.requested``: a rights holder asks for a certificate of sealed
    evidence; the request stays open until rejected or answered by an issue."""

    TYPE: ClassVar[str] = "certificate.requested"
    WHAT: ClassVar[str] = TYPE
    PRIVATE: ClassVar[type[Private]] = CertificateRequestedPrivate

    request_id: str = field(metadata=_required(_IDENT))
    evidence_id: str = field(metadata=_required(_IDENT))


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateRequestRejectedPrivate(Private):
    """Why the request was rejected, and by which notary."""

    WHAT: ClassVar[str] = "certificate.request_rejected private body"

    reason: str = field(metadata=_required(_NONEMPTY))
    by: str | None = field(default=None, metadata=_optional(_TEXT, write_null=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateRequestRejected(Event[CertificateRequestRejectedPrivate]):
    """``certificate.request_rejected``: a notary closes a request without a certificate."""

    TYPE: ClassVar[str] = "certificate.request_rejected"
    WHAT: ClassVar[str] = TYPE
    PRIVATE: ClassVar[type[Private]] = CertificateRequestRejectedPrivate

    request_id: str = field(metadata=_required(_IDENT))


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateIssuedPrivate(Private):
    """The certificate's exact bytes (RFC 8785 canonical JSON, as signed)."""

    WHAT: ClassVar[str] = "certificate.issued private body"

    certificate: str = field(metadata=_required(_NONEMPTY))


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateIssued(Event[CertificateIssuedPrivate]):
    """``certificate.issued``: which certificate, for which evidence, by which
    notary account; ``request_id`` names the request it answers (and closes)."""

    TYPE: ClassVar[str] = "certificate.issued"
    WHAT: ClassVar[str] = TYPE
    PRIVATE: ClassVar[type[Private]] = CertificateIssuedPrivate

    certificate_id: str = field(metadata=_required(_DIGEST))
    evidence_id: str = field(metadata=_required(_IDENT))
    account_id: str = field(metadata=_required(_IDENT))
    request_id: str | None = field(default=None, metadata=_optional(_IDENT))


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateRevokedPrivate(Private):
    """Why the certificate was revoked, and by which account."""

    WHAT: ClassVar[str] = "certificate.revoked private body"

    reason: str = field(metadata=_required(_NONEMPTY))
    by: str | None = field(default=None, metadata=_optional(_TEXT, write_null=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateRevoked(Event[CertificateRevokedPrivate]):
    """``certificate.revoked``: the certificate is named in the open."""

    TYPE: ClassVar[str] = "certificate.revoked"
    WHAT: ClassVar[str] = TYPE
    PRIVATE: ClassVar[type[Private]] = CertificateRevokedPrivate

    certificate_id: str = field(metadata=_required(_DIGEST))


CATALOGUE: Mapping[str, type[Event[Any]]] = {
    cls.TYPE: cls
    for cls in (
        EvidenceDeposited,
        AccountRegistered,
        AccountRevoked,
        KeyRegistered,
        KeyRevoked,
        CertificateRequested,
        CertificateRequestRejected,
        CertificateIssued,
        CertificateRevoked,
    )
}
"""Every event type, by its ``type`` string."""


def parse_event(type_: str, body: object, private: object = None) -> Event[Any]:
    """The typed event of ``type_`` from its bodies; :class:`EventError` if any is wrong."""
    cls = CATALOGUE.get(type_)
    if cls is None:
        raise EventError(f"event: unknown type {type_!r}")
    return cls.from_body(body, private)
