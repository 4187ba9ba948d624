"""The ledger home: configuration, keys, the SQLite database and blobs.

``--home DIR`` (env ``EVIDENCE_LEDGER_HOME``, default ``./var``) holds
``config.json``, ``keys/log.key`` (mode 0600), ``ledger.db`` and ``blobs/``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ledger.errors import ConfigError

__all__ = ["HOME_FORMAT", "Config", "SealPolicy", "load_config", "save_config"]

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
class Config:
    """Settings stored in ``config.json``."""

    home: Path
    origin: str
    database_url: str
    seal: SealPolicy = field(default_factory=SealPolicy)
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    group_max: int = DEFAULT_GROUP_MAX

    @property
    def key_path(self) -> Path:
        return self.home / "keys" / "log.key"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("home")
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
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"config: {path} is invalid ({e})") from e
    if cfg.seal.batch_max < 1 or cfg.seal.interval <= 0 or cfg.group_max < 1:
        raise ConfigError(f"config: {path} has non-positive limits")
    return cfg


def save_config(cfg: Config) -> None:
    """Write ``config.json`` atomically."""
    cfg.home.mkdir(parents=True, exist_ok=True)
    tmp = cfg.home / "config.json.tmp"
    tmp.write_text(json.dumps(cfg.to_json(), indent=2, sort_keys=True) + "\n", "utf-8")
    os.replace(tmp, cfg.home / "config.json")


def with_seal(cfg: Config, **changes: Any) -> Config:
    return replace(cfg, seal=replace(cfg.seal, **changes))
