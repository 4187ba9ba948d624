"""The ledger home: configuration, keys, the SQLite database and blobs.

``--home DIR`` (env ``EVIDENCE_LEDGER_HOME``, default ``./var``) holds
``config.json``, ``keys/log.key`` (mode 0600), ``ledger.db`` and ``blobs/``
(when files are kept on the filesystem; see :mod:`ledger.blobs`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger.blobs import BLOB_KINDS
from ledger.errors import ConfigError
from ledger.files import private_dir, write_private
from verifier.errors import MalformedError
from verifier.note import ALG_COSIGNATURE_V1, VerifierKey
from verifier.trust import parse_utc

__all__ = [
    "HOME_FORMAT",
    "CaptureConfig",
    "Config",
    "HttpConfig",
    "RateLimit",
    "RenewalConfig",
    "SealPolicy",
    "TsaConfig",
    "WitnessEntry",
    "check_public_url",
    "load_config",
    "save_config",
]

HOME_FORMAT = "evidence-ledger-home/1"
DEFAULT_MAX_UPLOAD = 4 * 1024**3
DEFAULT_GROUP_MAX = 10_000
_ORIGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~:/-]{0,253}")


@dataclass(frozen=True, slots=True)
class SealPolicy:
    """When the sealer integrates entries: at most ``batch_max`` per checkpoint,
    and (in the service) at least every ``interval`` seconds while entries wait."""

    batch_max: int = 100_000
    interval: float = 1.0


@dataclass(frozen=True, slots=True)
class WitnessEntry:
    """A witness the sealer asks to cosign: its name, URL prefix and cosigner key."""

    name: str
    url: str
    vkey: str


@dataclass(frozen=True, slots=True)
class TsaConfig:
    """An RFC 3161 TSA the sealer asks for tokens, and the roots its tokens chain to."""

    url: str
    roots: str
    """Path of a PEM file with the trusted root certificates."""


@dataclass(frozen=True, slots=True)
class RenewalConfig:
    """When checkpoint timestamps are renewed (RFC 4998 archive timestamps).

    A token is renewed once its TSA certificate expires within
    ``window_days``, or one of its hash algorithms is retired within them;
    the service checks every ``interval`` seconds. ``hash`` is the algorithm
    of a hash-tree renewal (when the current one is being retired);
    ``retired`` maps hash algorithms to the RFC 3339 UTC time from which they
    no longer count (also written to the trust file).
    """

    window_days: float = 90.0
    interval: float = 86400.0
    hash: str = "sha256"
    retired: tuple[tuple[str, str], ...] = ()

    def retired_at(self) -> dict[str, datetime]:
        """``retired`` as times."""
        return {name: parse_utc(t, f"renewal: retired.{name}") for name, t in self.retired}


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """Online capture (在线取证) settings: what the capture browser may reach and how much.

    ``allow`` lists CIDR ranges the operator explicitly permits although they
    are not public (loopback, private, link-local...): empty by default, so
    every such target is refused. ``ca_file`` is a PEM file of extra roots the
    platform's fetcher trusts besides the system store.

    Recorded captures: ``max_duration`` bounds the ``duration`` option,
    ``max_steps`` and ``max_steps_seconds`` the scripted steps (their number,
    and their waits and timeouts added up), ``max_video_bytes`` the video
    file; ``ffmpeg`` and ``ffprobe`` encode and measure it, ``font`` draws
    the clock and URL on every frame.

    Interactive captures (:mod:`ledger.services.interactive`): a session is
    abandoned, never deposited, after ``interactive_seconds``, after
    ``interactive_idle`` seconds without input, or when its page has not
    asked for a frame or the state for ``interactive_grace`` seconds.

    The browser's jail (:mod:`ledger.capture.jail`): ``isolation`` is
    ``namespace`` (its own network namespace, run as ``browser_user`` with
    Chromium's sandbox on; captures are refused when that cannot be set up)
    or ``none`` (the weaker mode, chosen explicitly: no namespace).
    """

    allow: tuple[str, ...] = ()
    concurrency: int = 2
    queue_max: int = 16
    max_bytes: int = 50 * 1024**2
    max_requests: int = 500
    max_seconds: int = 60
    chromium: str = "/usr/bin/chromium"
    ca_file: str | None = None
    max_duration: int = 300
    max_steps: int = 50
    max_steps_seconds: int = 300
    max_video_bytes: int = 256 * 1024**2
    ffmpeg: str = "/usr/bin/ffmpeg"
    ffprobe: str = "/usr/bin/ffprobe"
    font: str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
    isolation: str = "namespace"
    browser_user: str = "evidence-capture"
    interactive_seconds: int = 600
    interactive_idle: int = 60
    interactive_grace: int = 10


ISOLATION_MODES = ("namespace", "none")
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def check_capture(c: CaptureConfig, where: str) -> CaptureConfig:
    """Refuse unusable capture settings; normalise the allowed ranges."""
    nets = []
    for cidr in c.allow:
        try:
            nets.append(str(ipaddress.ip_network(cidr, strict=False)))
        except ValueError as e:
            raise ConfigError(
                f"config: {where}: capture allow: {cidr!r} is not a CIDR range"
            ) from e
    limits = (c.concurrency, c.queue_max, c.max_bytes, c.max_requests, c.max_seconds)
    recording = (c.max_duration, c.max_steps, c.max_steps_seconds, c.max_video_bytes)
    if min(*limits, *recording) < 1:
        raise ConfigError(f"config: {where}: capture limits must be positive")
    if c.interactive_seconds < 10 or min(c.interactive_idle, c.interactive_grace) < 5:
        raise ConfigError(
            f"config: {where}: capture interactive_seconds must be at least 10, "
            "interactive_idle and interactive_grace at least 5"
        )
    if c.isolation not in ISOLATION_MODES:
        raise ConfigError(
            f"config: {where}: capture isolation must be one of {', '.join(ISOLATION_MODES)}"
        )
    if not _USER_NAME.fullmatch(c.browser_user) or c.browser_user == "root":
        raise ConfigError(
            f"config: {where}: capture browser_user {c.browser_user!r} must be an "
            "unprivileged system user name (not root)"
        )
    return replace(c, allow=tuple(nets))


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``burst`` requests at once, then ``rate`` per second."""

    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """What the HTTP service accepts from a client, and whom it believes.

    ``trusted_proxies`` lists the addresses (CIDR ranges) of the reverse
    proxies in front of the service: only a request arriving from one of them
    may name its client in ``X-Forwarded-For`` (and its scheme in
    ``X-Forwarded-Proto``). Empty by default, so the peer address is the
    client, whatever the request says.

    ``max_header_bytes`` bounds a request's line and headers;
    ``max_body_bytes`` the body of every request that is not an upload (JSON
    and forms); uploads are bounded by ``max_upload_bytes`` (deposits) and
    the verification limits. ``verify``, ``check`` and ``login`` are the rate
    limits of the public verification (API and page), the page's deposit
    check, and wrong tokens at the login page, per client address (an IPv6
    client by its /64), shared by every worker and host through the database.
    """

    trusted_proxies: tuple[str, ...] = ()
    max_header_bytes: int = 32 * 1024
    max_body_bytes: int = 64 * 1024
    verify: RateLimit = field(default_factory=lambda: RateLimit(2.0, 10))
    check: RateLimit = field(default_factory=lambda: RateLimit(1.0, 20))
    login: RateLimit = field(default_factory=lambda: RateLimit(0.1, 10))


def _http(raw: Any) -> HttpConfig:
    """HTTP settings from JSON; absent (older homes) means the defaults."""
    if raw is None:
        return HttpConfig()
    if not isinstance(raw, dict):
        raise TypeError("http must be an object")
    limits = {k: RateLimit(**raw[k]) for k in ("verify", "check", "login") if k in raw}
    return HttpConfig(**{**raw, **limits, "trusted_proxies": tuple(raw.get("trusted_proxies", ()))})


def check_http(h: HttpConfig, where: str) -> HttpConfig:
    """Refuse unusable HTTP settings; normalise the trusted proxy ranges."""
    nets = []
    for cidr in h.trusted_proxies:
        try:
            nets.append(str(ipaddress.ip_network(cidr, strict=False)))
        except ValueError as e:
            raise ConfigError(
                f"config: {where}: http trusted_proxies: {cidr!r} is not an address or CIDR range"
            ) from e
    if h.max_header_bytes < 1024 or h.max_body_bytes < 1024:
        raise ConfigError(f"config: {where}: http size limits must be at least 1024 bytes")
    for name in ("verify", "check", "login"):
        limit: RateLimit = getattr(h, name)
        if not limit.rate > 0 or limit.burst < 1:
            raise ConfigError(f"config: {where}: http {name}: rate and burst must be positive")
    return replace(h, trusted_proxies=tuple(nets))


@dataclass(frozen=True, slots=True)
class Config:
    """Settings stored in ``config.json``."""

    home: Path
    origin: str
    database_url: str
    seal: SealPolicy = field(default_factory=SealPolicy)
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    group_max: int = DEFAULT_GROUP_MAX
    witnesses: tuple[WitnessEntry, ...] = ()
    quorum: int = 0
    """Witnesses that must cosign a checkpoint before it is published (0: no witnesses)."""
    tsas: tuple[TsaConfig, ...] = ()
    tsa_quorum: int = 0
    """TSAs whose tokens a checkpoint needs before it is published (0: no TSA)."""
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    renewal: RenewalConfig = field(default_factory=RenewalConfig)
    blobs: str = "fs"
    """Where deposited files go: ``fs`` (``blob_dir``) or ``postgresql`` (the
    ledger's database, shared by every host)."""

    @property
    def tsa(self) -> TsaConfig | None:
        """The first TSA: the only one of a single-TSA configuration."""
        return self.tsas[0] if self.tsas else None

    public_base_url: str | None = None
    """Where the web console is public (the PDF certificate's QR code opens
    ``{public_base_url}/c/{certificate_id}``); None: ``https://`` + the origin's host."""

    @property
    def base_url(self) -> str:
        """The public base URL, or its default."""
        return self.public_base_url or "https://" + self.origin.split("/")[0]

    @property
    def key_path(self) -> Path:
        return self.home / "keys" / "log.key"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("home")
        d["renewal"]["retired"] = dict(self.renewal.retired)
        if len(self.tsas) <= 1:
            # One TSA is written as before several were possible, so that a home
            # stays readable by earlier versions (which would drop a "tsas" key).
            tsas, _ = d.pop("tsas"), d.pop("tsa_quorum")
            d["tsa"] = tsas[0] if tsas else None
        return {"format": HOME_FORMAT, **d}


def check_origin(origin: str) -> str:
    """A checkpoint origin: a schema-less URL, usable as a signed-note key name."""
    if not _ORIGIN.fullmatch(origin) or "+" in origin or "://" in origin:
        raise ConfigError(f"origin: {origin!r} is not a schema-less URL (e.g. example.com/log)")
    return origin


def default_database_url(home: Path) -> str:
    return "sqlite:///" + str((home / "ledger.db").resolve())


def load_config(home: Path) -> Config:
    """Read ``home/config.json``; a missing or foreign file is a ConfigError."""
    path = home / "config.json"
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"config: no ledger in {home} (run 'evidence-ledger init')") from e
    except (OSError, ValueError) as e:
        raise ConfigError(f"config: cannot read {path} ({e})") from e
    if not isinstance(raw, dict) or raw.get("format") != HOME_FORMAT:
        raise ConfigError(f"config: {path} is not an evidence ledger configuration")
    try:
        seal = SealPolicy(**raw.get("seal", {}))
        cfg = Config(
            home=home,
            origin=check_origin(str(raw["origin"])),
            database_url=str(raw["database_url"]),
            seal=seal,
            max_upload_bytes=int(raw.get("max_upload_bytes", DEFAULT_MAX_UPLOAD)),
            group_max=int(raw.get("group_max", DEFAULT_GROUP_MAX)),
            witnesses=tuple(WitnessEntry(**w) for w in raw.get("witnesses", [])),
            quorum=int(raw.get("quorum", 0)),
            **_tsas(raw),
            capture=_capture(raw.get("capture")),
            http=_http(raw.get("http")),
            renewal=_renewal(raw.get("renewal")),
            # Homes made before the choice existed kept their files on disk.
            blobs=str(raw.get("blobs", "fs")),
            public_base_url=raw.get("public_base_url"),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"config: {path} is invalid ({e})") from e
    if cfg.seal.batch_max < 1 or cfg.seal.interval <= 0 or cfg.group_max < 1:
        raise ConfigError(f"config: {path} has non-positive limits")
    if cfg.blobs not in BLOB_KINDS:
        raise ConfigError(f"config: {path}: blobs must be one of {', '.join(BLOB_KINDS)}")
    check_anchoring(cfg, str(path))
    check_renewal(cfg.renewal, str(path))
    check_public_url(cfg, str(path))
    return replace(
        cfg,
        capture=check_capture(cfg.capture, str(path)),
        http=check_http(cfg.http, str(path)),
    )


def _tsas(raw: dict[str, Any]) -> dict[str, Any]:
    """TSA settings from JSON: ``tsas`` and ``tsa_quorum``, or the single ``tsa``
    of configurations written before several TSAs were possible (quorum 1)."""
    if raw.get("tsa") and raw.get("tsas"):
        raise ValueError("tsa and tsas are both set")
    if raw.get("tsa"):
        return {"tsas": (TsaConfig(**raw["tsa"]),), "tsa_quorum": 1}
    tsas = tuple(TsaConfig(**t) for t in raw.get("tsas", []))
    return {"tsas": tsas, "tsa_quorum": int(raw.get("tsa_quorum", 1 if tsas else 0))}


def _renewal(raw: Any) -> RenewalConfig:
    """Renewal settings from JSON; absent (older homes) means the defaults."""
    if raw is None:
        return RenewalConfig()
    if not isinstance(raw, dict) or not isinstance(raw.get("retired", {}), dict):
        raise TypeError("renewal must be an object, renewal.retired too")
    retired = tuple(sorted((str(k), str(v)) for k, v in raw.get("retired", {}).items()))
    return RenewalConfig(
        **{k: v for k, v in raw.items() if k != "retired"},
        retired=retired,
    )


def check_renewal(r: RenewalConfig, where: str) -> None:
    """Refuse renewal settings that could not work: known hashes, valid times,
    positive window and interval, a renewal hash that is not retired itself."""
    from verifier.ers import HASH_OIDS

    if r.window_days <= 0 or r.interval <= 0:
        raise ConfigError(f"config: {where}: renewal window_days and interval must be positive")
    for name in (r.hash, *(n for n, _ in r.retired)):
        if name not in HASH_OIDS:
            raise ConfigError(
                f"config: {where}: renewal: {name!r} is not a hash algorithm "
                f"({', '.join(HASH_OIDS)})"
            )
    try:
        retired = r.retired_at()
    except MalformedError as e:
        raise ConfigError(f"config: {where}: {e}") from e
    if r.hash in retired:
        raise ConfigError(f"config: {where}: renewal hash {r.hash} is itself retired")


def _capture(raw: Any) -> CaptureConfig:
    """Capture settings from JSON; absent (older homes) means the defaults."""
    if raw is None:
        return CaptureConfig()
    if not isinstance(raw, dict):
        raise TypeError("capture must be an object")
    return CaptureConfig(**{**raw, "allow": tuple(raw.get("allow", ()))})


def check_anchoring(cfg: Config, where: str) -> None:
    """Refuse witness lists and quorums that could publish without the policy.

    Every witness has a distinct name and cosigner key (type 0x04) named like
    it; the quorum is between 1 and the number of witnesses (0 only when
    there are none).
    """
    names: set[str] = set()
    keys: set[bytes] = set()
    for w in cfg.witnesses:
        try:
            key = VerifierKey.from_text(w.vkey)
        except MalformedError as e:
            raise ConfigError(f"config: {where}: witness {w.name!r}: {e}") from e
        if key.alg != ALG_COSIGNATURE_V1 or key.name != w.name:
            raise ConfigError(
                f"config: {where}: witness {w.name!r} needs a cosignature key (type 0x04) "
                "with the same name"
            )
        if w.name in names or key.public_key in keys:
            raise ConfigError(f"config: {where}: witness {w.name!r} is listed twice")
        if not w.url.startswith(("http://", "https://")):
            raise ConfigError(f"config: {where}: witness {w.name!r} URL must be http(s)://")
        names.add(w.name)
        keys.add(key.public_key)
    low = 1 if cfg.witnesses else 0
    if not low <= cfg.quorum <= len(cfg.witnesses):
        raise ConfigError(
            f"config: {where}: quorum {cfg.quorum} is not between {low} and "
            f"{len(cfg.witnesses)} (the number of witnesses)"
        )
    check_tsas(cfg, where)


def check_tsas(cfg: Config, where: str) -> None:
    """Refuse TSA lists that could publish without the policy: http(s) URLs,
    each listed once, a TSA quorum between 1 and their number (0 with none)."""
    urls = [t.url for t in cfg.tsas]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"config: {where}: TSA URL must be http(s)://")
    if len(set(urls)) != len(urls):
        raise ConfigError(f"config: {where}: a TSA is listed twice")
    low = 1 if urls else 0
    if not low <= cfg.tsa_quorum <= len(urls):
        raise ConfigError(
            f"config: {where}: TSA quorum {cfg.tsa_quorum} is not between {low} and "
            f"{len(urls)} (the number of TSAs)"
        )


def check_public_url(cfg: Config, where: str) -> None:
    """Refuse a public base URL the PDF certificate could not show safely."""
    from verifier.pdflayout import check_base_url

    if cfg.public_base_url is None:
        return
    try:
        check_base_url(cfg.public_base_url)
    except MalformedError as e:
        raise ConfigError(f"config: {where}: {e}") from e


def save_config(cfg: Config) -> None:
    """Write ``config.json`` atomically, mode 0600 (a database URL may hold a password)."""
    private_dir(cfg.home)
    text = json.dumps(cfg.to_json(), indent=2, sort_keys=True) + "\n"
    write_private(cfg.home / "config.json", text.encode("utf-8"))


def with_seal(cfg: Config, **changes: Any) -> Config:
    return replace(cfg, seal=replace(cfg.seal, **changes))
