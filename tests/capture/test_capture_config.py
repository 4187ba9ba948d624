"""Capture settings in ``config.json``: defaults for older homes, validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.config import CaptureConfig, load_config
from ledger.core import Ledger
from ledger.errors import ConfigError
from ledger.services.interactive import InteractiveService
from ledger.services.policy import Actor


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
        ({"interactive_seconds": 5}, "interactive_seconds must be at least 10"),
        ({"interactive_idle": 0}, "interactive_idle and interactive_grace at least 5"),
        ({"interactive_grace": 2}, "interactive_idle and interactive_grace at least 5"),
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


def test_interactive_sessions_take_their_bounds_from_the_settings(tmp_path: Path) -> None:
    home = _home(tmp_path)
    assert (
        load_config(home).capture.interactive_seconds,
        load_config(home).capture.interactive_idle,
        load_config(home).capture.interactive_grace,
    ) == (600, 60, 10)
    _rewrite(home, {"interactive_seconds": 120, "interactive_idle": 30, "interactive_grace": 6})
    with Ledger.open(home) as ledger:
        service = InteractiveService(ledger)
        holder = Actor("holder", "rights_holder", "holder")
        # An address that never resolves here: the session starts, then ends
        # without evidence; its bounds are the settings'.
        session = service.start(holder, "https://interactive-bounds.invalid/")
        try:
            live = session.live
            assert (live.max_seconds, live.idle_seconds, live.grace_seconds) == (120, 30, 6)
        finally:
            service.shutdown()
        assert session.done.is_set() and session.result is None
