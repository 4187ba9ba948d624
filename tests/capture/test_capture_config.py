"""Capture settings in ``config.json``: defaults for older homes, validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.config import CaptureConfig, load_config
from ledger.core import Ledger
from ledger.errors import ConfigError


def _home(tmp_path: Path) -> Path:
    Ledger.init(tmp_path / "home", "config.test/log").close()
    return tmp_path / "home"


def _rewrite(home: Path, change: dict[str, object] | None) -> None:
    path = home / "config.json"
    raw = json.loads(path.read_text())
    if change is None:
        raw.pop("capture")
    else:
        raw["capture"].update(change)
    path.write_text(json.dumps(raw))


def test_new_homes_write_the_defaults_and_refuse_private_ranges(tmp_path: Path) -> None:
    home = _home(tmp_path)
    raw = json.loads((home / "config.json").read_text())["capture"]
    assert raw["allow"] == [] and raw["concurrency"] == 2
    assert load_config(home).capture == CaptureConfig()


def test_homes_without_capture_settings_load_with_defaults(tmp_path: Path) -> None:
    home = _home(tmp_path)
    _rewrite(home, None)
    assert load_config(home).capture == CaptureConfig()


def test_allowed_ranges_are_normalised(tmp_path: Path) -> None:
    home = _home(tmp_path)
    _rewrite(home, {"allow": ["127.0.0.1/8", "fd00::1/8"], "max_seconds": 5})
    cfg = load_config(home).capture
    assert cfg.allow == ("127.0.0.0/8", "fd00::/8") and cfg.max_seconds == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"allow": ["10.0.0.0/33"]}, "capture allow: '10.0.0.0/33' is not a CIDR range"),
        ({"allow": ["localhost"]}, "is not a CIDR range"),
        ({"concurrency": 0}, "capture limits must be positive"),
        ({"max_bytes": -1}, "capture limits must be positive"),
        ({"unknown": 1}, "is invalid"),
        ({"isolation": "off"}, "capture isolation must be one of namespace, none"),
        ({"browser_user": "root"}, "must be an unprivileged system user name"),
        ({"browser_user": "a b"}, "must be an unprivileged system user name"),
    ],
)
def test_bad_capture_settings(tmp_path: Path, change: dict[str, object], message: str) -> None:
    home = _home(tmp_path)
    _rewrite(home, change)
    with pytest.raises(ConfigError, match=message):
        load_config(home)


def test_capture_settings_must_be_an_object(tmp_path: Path) -> None:
    home = _home(tmp_path)
    path = home / "config.json"
    raw = json.loads(path.read_text())
    raw["capture"] = ["127.0.0.0/8"]
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="capture must be an object"):
        load_config(home)


def test_the_weaker_isolation_is_a_setting(tmp_path: Path) -> None:
    home = _home(tmp_path)
    assert load_config(home).capture.isolation == "namespace"
    _rewrite(home, {"isolation": "none", "browser_user": "capture-browser"})
    cfg = load_config(home).capture
    assert (cfg.isolation, cfg.browser_user) == ("none", "capture-browser")
