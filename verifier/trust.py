"""The trust file: the only source of keys the verifier believes.

A judge obtains it from the court or the IP office, never from the package
under test. Format ``evidence-trust/v1`` (JSON, UTF-8)::

    {"format": "evidence-trust/v1",
     "logs": [{"origin": str, "vkey": str}],
     "witnesses": {"quorum": int, "keys": [{"name": str, "vkey": str}]},
     "notaries": [{"name": str, "vkey": str,
                   "valid_from": str, "valid_until": str | null}],
     "tsa_roots": [PEM str, ...],
     "notary_ca_roots": [PEM str, ...],      (optional)
     "tsas": {"quorum": int,                 (optional)
              "authorities": [{"name": str, "roots": [PEM str, ...]}]},
     "retired_algorithms": {hash name: str}} (optional)

``tsa_roots`` is one TSA (any of these roots); ``tsas``, optional, is a
policy of several TSAs of which ``quorum`` must have timestamped each
checkpoint. A file has at most one of them non-empty.

Verifier keys are in the C2SP signed-note ``name+hash+base64`` form; a log's
key name is its origin. Times are RFC 3339 UTC (``2025-01-01T00:00:00Z``,
optionally with up to six fraction digits). ``notary_ca_roots`` lists the CA
roots of the X.509 certificates that sign PDF certificates (PAdES); a trust
file without it is still valid, and a PDF signature then cannot be trusted.
``retired_algorithms`` maps hash algorithms (``sha256``, ``sha384``,
``sha512``, ``sha3-256``...) to the time from which a timestamp relying on
them no longer counts unless it was renewed before (RFC 4998 evidence
records, :mod:`verifier.ers`).
Parsing is strict: exact members,
no duplicates, and it fails closed: a file without a log key is refused,
because nothing could be verified against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verifier.canonical import loads_strict
from verifier.cosignature import WitnessPolicy
from verifier.errors import MalformedError
from verifier.note import ALG_COSIGNATURE_V1, ALG_ED25519, VerifierKey

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "TRUST_FORMAT",
    "NotaryKey",
    "Trust",
    "TsaAuthority",
    "TsaPolicy",
    "format_utc",
    "load_trust",
    "parse_utc",
    "read_trust",
]

TRUST_FORMAT = "evidence-trust/v1"
MAX_TRUST_SIZE = 4 << 20
_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,6})?Z"
)
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?")


def parse_utc(text: object, what: str) -> datetime:
    """Parse an RFC 3339 UTC time ending in ``Z`` (at most microseconds)."""
    m = _TIME.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise MalformedError(f"{what}: {text!r} is not an RFC 3339 UTC time (…Z)")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or ".")[1:].ljust(6, "0"))
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError as e:
        raise MalformedError(f"{what}: {text!r} is not a valid date and time") from e


def format_utc(t: datetime) -> str:
    """The log's time format: UTC with microseconds."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class NotaryKey:
    """A notary's certificate-signing key and the period in which it may sign."""

    name: str
    vkey: VerifierKey
    valid_from: datetime
    valid_until: datetime | None

    def valid_at(self, t: datetime) -> bool:
        """True when ``valid_from <= t < valid_until`` (no end: open)."""
        return self.valid_from <= t and (self.valid_until is None or t < self.valid_until)

    def period(self) -> str:
        """The validity period as text."""
        end = format_utc(self.valid_until) if self.valid_until else "open"
        return f"[{format_utc(self.valid_from)}, {end})"


@dataclass(frozen=True, slots=True)
class TsaAuthority:
    """One time-stamping authority of a policy: a name and the roots its tokens chain to."""

    name: str
    roots: tuple[x509.Certificate, ...]


@dataclass(frozen=True, slots=True)
class TsaPolicy:
    """``quorum`` of ``authorities`` must each have timestamped a checkpoint.

    Refuses what could be met wrongly: no authorities, a quorum outside
    1..n, two authorities with one name, an authority without roots.
    """

    authorities: tuple[TsaAuthority, ...]
    quorum: int

    def __post_init__(self) -> None:
        n = len(self.authorities)
        if not n:
            raise MalformedError("trust: a TSA policy needs at least one authority")
        if not 1 <= self.quorum <= n:
            raise MalformedError(f"trust: TSA quorum {self.quorum} is not between 1 and {n}")
        names = [a.name for a in self.authorities]
        if len(set(names)) != n or not all(names):
            raise MalformedError("trust: TSA names must be non-empty and distinct")
        if not all(a.roots for a in self.authorities):
            raise MalformedError("trust: every TSA of a policy needs at least one root")


@dataclass(frozen=True, slots=True)
class Trust:
    """A parsed trust file."""

    logs: tuple[VerifierKey, ...]
    witnesses: WitnessPolicy | None
    """The k-of-n witness policy; None when the trust file requires no cosignature
    (quorum 0), which verification reports as not applicable."""
    witness_keys: tuple[VerifierKey, ...]
    notaries: tuple[NotaryKey, ...]
    tsa_roots: tuple[x509.Certificate, ...]
    """Every TSA root the file lists (of ``tsa_roots`` or of every ``tsas`` authority)."""
    tsa_roots_pem: tuple[str, ...]
    tsa_policy: TsaPolicy | None = None
    """Which TSAs must have timestamped a checkpoint; None when the file lists no
    TSA roots (verification reports the timestamp as not applicable)."""
    notary_ca_roots: tuple[x509.Certificate, ...] = ()
    """Roots of the notaries' X.509 certificates (PDF signatures)."""
    notary_ca_roots_pem: tuple[str, ...] = ()
    retired_algorithms: tuple[tuple[str, datetime], ...] = ()
    """(hash algorithm, retired since), from ``retired_algorithms``."""

    @property
    def retired(self) -> dict[str, datetime]:
        """Retired hash algorithms by hashlib name."""
        return dict(self.retired_algorithms)

    def log_keys(self, origin: str) -> list[VerifierKey]:
        """Trusted keys of the log named ``origin`` (empty if the log is unknown)."""
        return [k for k in self.logs if k.name == origin]

    def notary_keys(self, vkey: VerifierKey) -> list[NotaryKey]:
        """Trust entries for exactly this key (same name, key ID and public key)."""
        return [n for n in self.notaries if n.vkey == vkey]


def _members(obj: object, names: set[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedError(f"{what}: must be a JSON object")
    if set(obj) != names:
        missing, extra = sorted(names - set(obj)), sorted(set(obj) - names)
        raise MalformedError(
            f"{what}: members must be {sorted(names)} (missing {missing}, unknown {extra})"
        )
    return obj


def _string(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj[key]
    if not isinstance(value, str) or not value:
        raise MalformedError(f"{what}: {key} must be a non-empty string")
    return value


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedError(f"{what}: must be a list")
    return value


def _vkey(text: str, name: str, what: str) -> VerifierKey:
    try:
        key = VerifierKey.from_text(text)
    except MalformedError as e:
        raise MalformedError(f"{what}: {e}") from e
    if key.name != name:
        raise MalformedError(f"{what}: key is named {key.name!r}, expected {name!r}")
    return key


def load_trust(data: bytes) -> Trust:
    """Parse a trust file strictly; raise :class:`MalformedError` on any defect.

    (1) UTF-8 JSON without duplicate members; (2) exact members and format;
    (3) at least one log key, each named after its origin; (4) witness keys
    named after the witness, quorum between 0 and the number of keys;
    (5) notary keys with a valid period; (6) TSA roots that parse as X.509
    certificates; (7) with ``tsas``: named authorities with roots, a quorum
    from 1 to their number, and ``tsa_roots`` empty; (8) notary CA roots
    (optional) that parse as X.509 certificates.
    """
    raw = loads_strict(data)
    members = {"format", "logs", "witnesses", "notaries", "tsa_roots"}
    if isinstance(raw, dict):
        members |= {"tsas", "notary_ca_roots", "retired_algorithms"} & set(raw)
    obj = _members(raw, members, "trust")  # (1)
    if obj["format"] != TRUST_FORMAT:  # (2)
        raise MalformedError(f"trust: format is {obj['format']!r}, expected {TRUST_FORMAT!r}")

    logs: list[VerifierKey] = []  # (3)
    for i, entry in enumerate(_list(obj["logs"], "trust: logs")):
        what = f"trust: logs[{i}]"
        e = _members(entry, {"origin", "vkey"}, what)
        lkey = _vkey(_string(e, "vkey", what), _string(e, "origin", what), what)
        if lkey.alg != ALG_ED25519:
            raise MalformedError(f"{what}: not an Ed25519 log key (type 0x01)")
        logs.append(lkey)
    if not logs:
        raise MalformedError("trust: no log keys: nothing could be verified (fail closed)")

    w = _members(obj["witnesses"], {"quorum", "keys"}, "trust: witnesses")  # (4)
    witnesses: list[VerifierKey] = []
    for i, entry in enumerate(_list(w["keys"], "trust: witnesses.keys")):
        what = f"trust: witnesses.keys[{i}]"
        e = _members(entry, {"name", "vkey"}, what)
        wkey = _vkey(_string(e, "vkey", what), _string(e, "name", what), what)
        if wkey.alg != ALG_COSIGNATURE_V1:
            raise MalformedError(f"{what}: not a cosigner key (type 0x04)")
        witnesses.append(wkey)
    quorum = w["quorum"]
    if type(quorum) is not int or not 0 <= quorum <= len(witnesses):
        raise MalformedError(
            f"trust: witness quorum {quorum!r} must be an integer from 0 to {len(witnesses)}"
        )
    policy = None
    if quorum:
        try:
            policy = WitnessPolicy(keys=tuple(witnesses), quorum=quorum)
        except MalformedError as err:
            raise MalformedError(f"trust: {err}") from err

    notaries: list[NotaryKey] = []  # (5)
    for i, entry in enumerate(_list(obj["notaries"], "trust: notaries")):
        what = f"trust: notaries[{i}]"
        e = _members(entry, {"name", "vkey", "valid_from", "valid_until"}, what)
        name = _string(e, "name", what)
        key = VerifierKey.from_text(_string(e, "vkey", what))
        if key.alg != ALG_ED25519:
            raise MalformedError(f"{what}: not an Ed25519 signing key (type 0x01)")
        start = parse_utc(e["valid_from"], f"{what}.valid_from")
        end = (
            None if e["valid_until"] is None else parse_utc(e["valid_until"], f"{what}.valid_until")
        )
        if end is not None and end <= start:
            raise MalformedError(f"{what}: valid_until is not after valid_from")
        notaries.append(NotaryKey(name=name, vkey=key, valid_from=start, valid_until=end))

    pems = _pems(obj["tsa_roots"], "trust: tsa_roots")  # (6)
    roots = _certificates(pems, "trust: tsa_roots")
    tsa_policy = None
    if roots:
        tsa_policy = TsaPolicy((TsaAuthority("tsa", tuple(roots)),), 1)
    if "tsas" in obj:  # (7)
        if pems:
            raise MalformedError("trust: tsa_roots must be empty when tsas is given")
        tsa_policy = _tsa_policy(obj["tsas"])
        pems = [p for a in obj["tsas"]["authorities"] for p in a["roots"]]
        roots = [r for a in tsa_policy.authorities for r in a.roots]
    ca_pems = _pems(obj.get("notary_ca_roots", []), "trust: notary_ca_roots")  # (8)
    ca_roots = _certificates(ca_pems, "trust: notary_ca_roots")
    retired = _retired(obj.get("retired_algorithms", {}))  # (9)
    return Trust(
        logs=tuple(logs),
        witnesses=policy,
        witness_keys=tuple(witnesses),
        notaries=tuple(notaries),
        tsa_roots=tuple(roots),
        tsa_roots_pem=tuple(pems),
        tsa_policy=tsa_policy,
        notary_ca_roots=tuple(ca_roots),
        notary_ca_roots_pem=tuple(ca_pems),
        retired_algorithms=retired,
    )


def _retired(value: object) -> tuple[tuple[str, datetime], ...]:
    from verifier.ers import HASH_OIDS

    if not isinstance(value, dict):
        raise MalformedError("trust: retired_algorithms must be a JSON object")
    out = []
    for name, since in sorted(value.items()):
        if name not in HASH_OIDS:
            known = ", ".join(HASH_OIDS)
            raise MalformedError(
                f"trust: retired_algorithms: {name!r} is not a hash algorithm ({known})"
            )
        out.append((name, parse_utc(since, f"trust: retired_algorithms.{name}")))
    return tuple(out)


def _pems(value: object, what: str) -> list[str]:
    pems = _list(value, what)
    for i, pem in enumerate(pems):
        if not isinstance(pem, str) or not _PEM.fullmatch(pem.strip() + "\n"):
            raise MalformedError(f"{what}[{i}] is not one PEM certificate")
    return pems


def _certificates(pems: list[str], what: str) -> list[x509.Certificate]:
    if not pems:
        return []
    # X.509 parsing is imported only when there are roots (start-up time).
    from cryptography import x509

    roots = []
    for i, pem in enumerate(pems):
        try:
            roots.append(x509.load_pem_x509_certificate(pem.encode("ascii")))
        except ValueError as e:
            raise MalformedError(f"{what}[{i}] does not parse ({e})") from e
    return roots


def _tsa_policy(value: object) -> TsaPolicy:
    """``{"quorum": int, "authorities": [{"name": str, "roots": [PEM, ...]}]}``."""
    t = _members(value, {"quorum", "authorities"}, "trust: tsas")
    authorities = []
    for i, entry in enumerate(_list(t["authorities"], "trust: tsas.authorities")):
        what = f"trust: tsas.authorities[{i}]"
        e = _members(entry, {"name", "roots"}, what)
        name = _string(e, "name", what)
        roots = _certificates(_pems(e["roots"], f"{what}.roots"), f"{what}.roots")
        authorities.append(TsaAuthority(name, tuple(roots)))
    if type(t["quorum"]) is not int:
        raise MalformedError("trust: tsas.quorum must be an integer")
    try:
        return TsaPolicy(tuple(authorities), t["quorum"])
    except MalformedError as e:
        raise MalformedError(f"trust: tsas: {str(e).removeprefix('trust: ')}") from e


def read_trust(path: str | Path) -> Trust:
    """Read and parse a trust file from disk."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TRUST_SIZE + 1)
    except OSError as e:
        raise MalformedError(f"trust: cannot read {str(path)!r}: {e.strerror}") from e
    if len(data) > MAX_TRUST_SIZE:
        raise MalformedError(f"trust: {str(path)!r} is larger than {MAX_TRUST_SIZE} bytes")
    return load_trust(data)
