"""Scripted steps of a process capture (过程取证): parse and validate strictly.

A steps file is a JSON list; each step is an object naming its ``action``:

``{"action": "goto", "url": "https://..."}``
    load another page (checked and fetched like the first one);
``{"action": "click", "selector": "#buy"}``
    click the one element the selector matches;
``{"action": "type", "selector": "#q", "text": "...", "secret": false}``
    type into the one element the selector matches; ``secret: true`` keeps the
    text out of the manifest, the action log and the public artefacts and
    masks the element in the video and screenshots;
``{"action": "press", "key": "Enter"}``
    press a key (Playwright key names, ``Control+A``...);
``{"action": "scroll", "y": 800}`` (optionally ``"x"``)
    scroll the page by that many CSS pixels (negative: up or left);
``{"action": "wait", "seconds": 2}`` or ``{"action": "wait", "selector": "#done"}``
    wait a fixed time, or until the selector matches a visible element;
``{"action": "screenshot", "name": "after-search"}``
    keep a viewport and a full-page screenshot and the DOM under that name.

Input actions, at coordinates rather than selectors (what an interactive
capture sends, :mod:`ledger.capture.live`):

``{"action": "pointer", "type": "click", "x": 120, "y": 48, "button": "left"}``
    click at a point of the viewport (CSS pixels; the capture checks that
    the point lies inside its viewport);
``{"action": "wheel", "dy": 300}`` (optionally ``"dx"``)
    turn the mouse wheel by that many pixels;
``{"action": "key", "key": "Enter"}``
    press one key of :data:`KEYS`;
``{"action": "text", "text": "...", "secret": false}``
    type text into whatever has the focus (``secret`` as for ``type``).

Every member is checked (exact members per action, types, lengths); the first
defect raises :class:`~ledger.errors.InvalidInput` naming the step:
``"steps[3] (click): selector must be 1 to 500 characters"``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import InvalidInput
from verifier.capture import ACTIONS, BUTTONS, KEYS

__all__ = [
    "ACTIONS",
    "KEYS",
    "MAX_SELECTOR",
    "MAX_STEPS",
    "MAX_STEPS_FILE",
    "MAX_TEXT",
    "MAX_WAIT_SECONDS",
    "MIN_SECRET",
    "Step",
    "load_steps",
    "parse_step",
    "parse_steps",
    "steps_seconds",
]

MAX_POINT = 3840
"""Coordinates of a ``pointer`` action lie in 0..MAX_POINT-1 (the largest viewport)."""
MAX_WHEEL = 10_000
MAX_STEPS = 200
"""Hard ceiling; the operator's ``capture.max_steps`` (default 50) is lower."""
MAX_STEPS_FILE = 1 << 20
MAX_TEXT = 1000
MIN_SECRET = 6
MAX_SELECTOR = 500
MAX_URL = 8192
MAX_WAIT_SECONDS = 60
MAX_SCROLL = 100_000
_KEY = re.compile(r"[!-~]{1,40}")
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
_URL = re.compile(r"[hH][tT][tT][pP][sS]?://\S+")
# The members each action takes: (required, optional).
_MEMBERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "goto": (frozenset({"url"}), frozenset()),
    "click": (frozenset({"selector"}), frozenset()),
    "type": (frozenset({"selector", "text"}), frozenset({"secret"})),
    "press": (frozenset({"key"}), frozenset()),
    "scroll": (frozenset(), frozenset({"x", "y"})),
    "wait": (frozenset(), frozenset({"seconds", "selector"})),
    "screenshot": (frozenset({"name"}), frozenset()),
    "pointer": (frozenset({"type", "x", "y"}), frozenset({"button"})),
    "wheel": (frozenset(), frozenset({"dx", "dy"})),
    "key": (frozenset({"key"}), frozenset()),
    "text": (frozenset({"text"}), frozenset({"secret"})),
}


@dataclass(frozen=True, slots=True)
class Step:
    """One validated step; only the members of its action are set."""

    action: str
    url: str | None = None
    selector: str | None = None
    text: str | None = None
    secret: bool = False
    key: str | None = None
    x: int = 0
    y: int = 0
    seconds: float | None = None
    name: str | None = None
    button: str | None = None

    def within(self, width: int, height: int) -> bool:
        """Whether a ``pointer`` action's point lies in a viewport of that size."""
        return self.action != "pointer" or (0 <= self.x < width and 0 <= self.y < height)

    @property
    def target(self) -> str:
        """What the step acts on, for the action log and the video overlay."""
        if self.action == "goto":
            return str(self.url)
        if self.action == "pointer":
            return f"{self.button} click at {self.x}, {self.y}"
        if self.action == "wheel":
            return f"dx {self.x:+d}, dy {self.y:+d}"
        if self.action == "text":
            return "[secret]" if self.secret else f"{len(str(self.text))} characters"
        if self.action in ("press", "key"):
            return str(self.key)
        if self.action == "scroll":
            return f"x {self.x:+d}, y {self.y:+d}"
        if self.action == "screenshot":
            return str(self.name)
        if self.action == "wait" and self.selector is None:
            return f"{self.seconds} s"
        return str(self.selector)

    def to_json(self) -> dict[str, Any]:
        """The step's members (the action log's keys), a secret text as null."""
        members: dict[str, Any]
        if self.action == "pointer":
            members = {"type": "click", "x": self.x, "y": self.y, "button": self.button}
        elif self.action == "wheel":
            members = {"dx": self.x, "dy": self.y}
        elif self.action == "text":
            members = {"text": None if self.secret else self.text, "secret": self.secret}
        elif self.action == "type":
            members = {
                "selector": self.selector,
                "text": None if self.secret else self.text,
                "secret": self.secret,
            }
        elif self.action == "scroll":
            members = {"x": self.x, "y": self.y}
        elif self.action == "wait" and self.selector is None:
            members = {"seconds": self.seconds}
        else:
            member = {"goto": "url", "press": "key", "key": "key", "screenshot": "name"}.get(
                self.action, "selector"
            )
            members = {member: getattr(self, member)}
        return {"action": self.action, **members}


def _where(i: int, action: object = None) -> str:
    return f"steps[{i}]" + (f" ({action[:20]})" if isinstance(action, str) else "")


def _text(obj: dict[str, Any], member: str, limit: int, where: str) -> str:
    value = obj[member]
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise InvalidInput(f"{where}: {member} must be a string of 1 to {limit} characters")
    if any(ord(c) < 32 and c not in "\t\n" for c in value) or "\x7f" in value:
        raise InvalidInput(f"{where}: {member} has control characters")
    return value


def _int(obj: dict[str, Any], member: str, limit: int, where: str) -> int:
    value = obj.get(member, 0)
    if type(value) is not int or not -limit <= value <= limit:
        raise InvalidInput(f"{where}: {member} must be an integer between -{limit} and {limit}")
    return value


def _step(obj: object, i: int) -> Step:
    if not isinstance(obj, dict):
        raise InvalidInput(f"{_where(i)}: a step must be a JSON object with an action")
    action = obj.get("action")
    where = _where(i, action)
    if action not in _MEMBERS:
        raise InvalidInput(f"{where}: action must be one of {', '.join(ACTIONS)}")
    required, optional = _MEMBERS[action]
    given = set(obj) - {"action"}
    if missing := sorted(required - given):
        raise InvalidInput(f"{where}: missing {', '.join(missing)}")
    if extra := sorted(given - required - optional):
        raise InvalidInput(f"{where}: unexpected {', '.join(extra)}")
    if action == "goto":
        url = _text(obj, "url", MAX_URL, where)
        if not _URL.fullmatch(url):
            raise InvalidInput(f"{where}: url must be an http or https URL")
        return Step(action, url=url)
    if action == "click":
        return Step(action, selector=_text(obj, "selector", MAX_SELECTOR, where))
    if action == "pointer":
        if obj["type"] != "click":
            raise InvalidInput(f"{where}: type must be click")
        button = obj.get("button", "left")
        if button not in BUTTONS:
            raise InvalidInput(f"{where}: button must be one of {', '.join(BUTTONS)}")
        x, y = _int(obj, "x", MAX_POINT - 1, where), _int(obj, "y", MAX_POINT - 1, where)
        if x < 0 or y < 0:
            raise InvalidInput(f"{where}: x and y must not be negative")
        return Step(action, x=x, y=y, button=button)
    if action == "wheel":
        if not given:
            raise InvalidInput(f"{where}: give dy (and/or dx), the pixels to turn the wheel by")
        return Step(
            action, x=_int(obj, "dx", MAX_WHEEL, where), y=_int(obj, "dy", MAX_WHEEL, where)
        )
    if action == "key":
        key = obj["key"]
        if not isinstance(key, str) or key not in KEYS:
            raise InvalidInput(f"{where}: key must be one of {', '.join(sorted(KEYS))}")
        return Step(action, key=key)
    if action in ("type", "text"):
        secret = obj.get("secret", False)
        if not isinstance(secret, bool):
            raise InvalidInput(f"{where}: secret must be true or false")
        text = _text(obj, "text", MAX_TEXT, where)
        if secret and len(text) < MIN_SECRET:
            # A shorter text would be found (and hidden) everywhere in the evidence.
            raise InvalidInput(f"{where}: a secret text needs at least {MIN_SECRET} characters")
        if action == "text":
            return Step(action, text=text, secret=secret)
        return Step(
            action, selector=_text(obj, "selector", MAX_SELECTOR, where), text=text, secret=secret
        )
    if action == "press":
        key = obj["key"]
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InvalidInput(f"{where}: key must be a key name such as Enter or Control+A")
        return Step(action, key=key)
    if action == "scroll":
        if not given:
            raise InvalidInput(f"{where}: give y (and/or x), the pixels to scroll by")
        return Step(
            action, x=_int(obj, "x", MAX_SCROLL, where), y=_int(obj, "y", MAX_SCROLL, where)
        )
    if action == "wait":
        if len(given) != 1:
            raise InvalidInput(f"{where}: give either seconds or selector")
        if "selector" in given:
            return Step(action, selector=_text(obj, "selector", MAX_SELECTOR, where))
        seconds = obj["seconds"]
        if (
            type(seconds) not in (int, float)
            or not math.isfinite(seconds)
            or not 0 < seconds <= MAX_WAIT_SECONDS
        ):
            raise InvalidInput(
                f"{where}: seconds must be a number above 0, at most {MAX_WAIT_SECONDS}"
            )
        return Step(action, seconds=seconds)
    name = obj["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{where}: name must be 1 to 40 lower-case letters, digits and '-', "
            "starting with a letter or digit"
        )
    return Step(action, name=name)


def parse_step(value: object, i: int = 0) -> Step:
    """Validate one decoded step (``i`` names it in errors)."""
    return _step(value, i)


def parse_steps(value: object, max_steps: int = MAX_STEPS) -> tuple[Step, ...]:
    """Validate a decoded steps list; raise InvalidInput naming the first defect."""
    if not isinstance(value, list):
        raise InvalidInput("steps: must be a JSON list of step objects")
    if not 1 <= len(value) <= max_steps:
        raise InvalidInput(f"steps: give 1 to {max_steps} steps (got {len(value)})")
    steps = tuple(_step(s, i) for i, s in enumerate(value))
    names = [s.name for s in steps if s.name is not None]
    for n in names:
        if names.count(n) > 1:
            raise InvalidInput(f"steps: two screenshot steps are named {n!r}")
    return steps


def load_steps(path: Path) -> tuple[Step, ...]:
    """Read and validate a steps file (UTF-8 JSON, at most 1 MiB)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_STEPS_FILE + 1)
    except OSError as e:
        raise InvalidInput(f"steps: cannot read {path} ({e.strerror or e})") from e
    if len(raw) > MAX_STEPS_FILE:
        raise InvalidInput(f"steps: {path} is larger than {MAX_STEPS_FILE} bytes")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidInput(f"steps: {path} is not UTF-8 JSON ({e})") from e
    return parse_steps(value)


def steps_seconds(steps: Sequence[Step], step_timeout: int) -> float:
    """The longest the steps can take: every fixed wait, plus the timeout of every
    other step (each step's screenshot included)."""
    return sum(
        s.seconds if s.seconds is not None else float(step_timeout) for s in steps
    ) + 2.0 * len(steps)
