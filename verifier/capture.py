"""Capture manifests (取证清单), format ``evidence-capture/v1``.

A web capture (在线取证) is deposited as its manifest: RFC 8785 canonical JSON
describing what the platform's browser was asked to load, what it loaded,
how, and the size, SHA-256 and SM3 of every artefact it produced (the WACZ
web archive, screenshots, DOM, PDF, TLS chain). The certificate commits to
the manifest's digest; the manifest commits to every artefact's digest. So
checking a capture offline is: (1) the manifest is the file the certificate
names (the package's ``evidence_file`` check), (2) the manifest is
well-formed, (3) every artefact in the package has the size and digests the
manifest lists, and nothing is missing or added.

Only the members needed for that chain are parsed strictly here; the rest
of the manifest (settings, environment checks, request log) is informative
and shown as it is. ``docs/capture.md`` documents every member.

``requested_url_sent`` (the requested URL as sent: host in IDNA, the rest
percent-encoded) is absent from manifests made before it existed.

A recorded capture (录屏取证 / 过程取证) adds optional members, absent from
manifests of plain captures (which verify as before): ``recording`` (the
video artefact's codec, size in pixels, duration, frame count and times),
``actions`` (the log of the scripted steps, each pointing at its
screenshot artefact and digest) and ``secrets`` (how texts typed as secrets
were kept out). An artefact marked ``"private": true`` holds such a secret:
it is listed with its digests but a package may leave it out; when present
it is checked like any other.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verifier.canonical import loads_canonical
from verifier.digest import FileDigest
from verifier.errors import MalformedError
from verifier.events import TIME_PATTERN
from verifier.report import FAILED, NOT_CHECKED, PASSED, Check

__all__ = [
    "ARTEFACT_DIR",
    "CAPTURE_FORMAT",
    "MANIFEST_FILE_NAME",
    "MAX_ARTEFACTS",
    "MAX_MANIFEST_SIZE",
    "Artefact",
    "CaptureManifest",
    "Recording",
    "expected_members",
    "manifest_check",
    "verify_artefacts",
]

CAPTURE_FORMAT = "evidence-capture/v1"
MANIFEST_FILE_NAME = "capture-manifest.json"
ARTEFACT_DIR = "capture/"
MAX_MANIFEST_SIZE = 1 << 20
MAX_ARTEFACTS = 640
"""A plain capture has at most 8; a process capture adds one screenshot per step
(at most 200 steps) and a full-page screenshot and DOM per screenshot step."""
MAX_ACTIONS = 200
STATUSES = ("complete", "partial")
ACTIONS = (
    "goto",
    "click",
    "type",
    "press",
    "scroll",
    "wait",
    "screenshot",
    "pointer",
    "wheel",
    "key",
    "text",
)
KEYS = frozenset(
    {
        "Enter",
        "Tab",
        "Escape",
        "Backspace",
        "Delete",
        "ArrowUp",
        "ArrowDown",
        "ArrowLeft",
        "ArrowRight",
        "Home",
        "End",
        "PageUp",
        "PageDown",
        "Space",
    }
)
"""Keys an input ``key`` action may press (characters come as ``text``); the
capture's step parser (:mod:`ledger.capture.steps`) uses these same sets."""
BUTTONS = ("left", "middle", "right")
MAX_WHEEL = 10_000
MAX_TEXT = 1000
_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(TIME_PATTERN)
_TOP = {
    "artefacts",
    "browser",
    "capture_id",
    "ended_at",
    "environment",
    "final_url",
    "format",
    "http_status",
    "limit_reached",
    "main_document",
    "page_title",
    "platform",
    "redirects",
    "requested_url",
    "requests",
    "settings",
    "started_at",
    "status",
}
_OPTIONAL = {"actions", "interactive", "recording", "requested_url_sent", "secrets"}
_ARTEFACT = {"media_type", "name", "path", "sha256", "size", "sm3"}
_RECORDING = {
    "artefact",
    "codec",
    "container",
    "duration_ms",
    "ended_at",
    "frame_count",
    "height",
    "started_at",
    "width",
}


@dataclass(frozen=True, slots=True)
class Artefact:
    """One file a capture produced: its role, file name, type, size and digests."""

    name: str
    path: str
    media_type: str
    size: int
    sha256: str
    sm3: str
    private: bool = False
    """Holds a secret typed during the capture: a package may leave it out."""

    @property
    def member(self) -> str:
        """Its member name in an evidence package: ``capture/<path>``."""
        return ARTEFACT_DIR + self.path


@dataclass(frozen=True, slots=True)
class Recording:
    """The video of a recorded capture, as the manifest describes it."""

    artefact: Artefact
    container: str
    codec: str
    width: int
    height: int
    duration_ms: int
    frame_count: int
    started_at: str
    ended_at: str


@dataclass(frozen=True, slots=True)
class CaptureManifest:
    """A parsed manifest; ``data`` is the whole object, ``raw`` its exact bytes."""

    raw: bytes
    capture_id: str
    requested_url: str
    final_url: str
    status: str
    started_at: str
    ended_at: str
    artefacts: tuple[Artefact, ...]
    data: dict[str, Any]
    recording: Recording | None = None
    actions: int = 0
    """Steps in the action log (0: not a process capture)."""
    failed_actions: int = 0

    @classmethod
    def from_json(cls, raw: bytes) -> CaptureManifest:
        """Parse strictly: canonical JSON, exact top-level members, valid artefacts.

        Raises :class:`MalformedError` naming the first defect.
        """
        if len(raw) > MAX_MANIFEST_SIZE:
            raise MalformedError(f"capture manifest: larger than {MAX_MANIFEST_SIZE} bytes")
        try:
            obj = loads_canonical(raw)
        except MalformedError as e:
            raise MalformedError(f"capture manifest: {e}") from e
        if not isinstance(obj, dict):
            raise MalformedError("capture manifest: not a JSON object")
        if obj.get("format") != CAPTURE_FORMAT:
            raise MalformedError(
                f"capture manifest: format is {obj.get('format')!r}, expected {CAPTURE_FORMAT!r}"
            )
        _exact(obj, _TOP, "capture manifest", optional=_OPTIONAL)
        if "requested_url_sent" in obj:
            _str(obj["requested_url_sent"], "requested_url_sent")
        if "interactive" in obj:
            _interactive(obj["interactive"])
        status = _str(obj["status"], "status")
        if status not in STATUSES:
            raise MalformedError(f"capture manifest: status {status!r} is not one of {STATUSES}")
        items = obj["artefacts"]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ARTEFACTS:
            raise MalformedError(
                f"capture manifest: artefacts must be a list of 1 to {MAX_ARTEFACTS} entries"
            )
        artefacts = tuple(_artefact(a, i) for i, a in enumerate(items))
        for what in ("name", "path"):
            values = [getattr(a, what).lower() for a in artefacts]
            if len(set(values)) != len(values):
                raise MalformedError(f"capture manifest: two artefacts have the same {what}")
        by_name = {a.name: a for a in artefacts}
        recording = _recording(obj["recording"], by_name) if "recording" in obj else None
        settings = obj["settings"]
        viewport = _viewport(settings.get("options") if isinstance(settings, dict) else None)
        actions = _actions(obj["actions"], by_name, viewport) if "actions" in obj else ()
        if "secrets" in obj:
            _secrets(obj["secrets"], by_name)
        elif any(a.private for a in artefacts):
            raise MalformedError("capture manifest: private artefacts without a secrets member")
        return cls(
            raw=raw,
            capture_id=_str(obj["capture_id"], "capture_id"),
            requested_url=_str(obj["requested_url"], "requested_url"),
            final_url=_str(obj["final_url"], "final_url"),
            status=status,
            started_at=_time(obj["started_at"], "started_at"),
            ended_at=_time(obj["ended_at"], "ended_at"),
            artefacts=artefacts,
            data=obj,
            recording=recording,
            actions=len(actions),
            failed_actions=sum(1 for a in actions if a != "ok"),
        )

    def members(self, present: Collection[str] = ()) -> list[str]:
        """Package member names of the artefacts, in manifest order: every public
        one, and the private ones that are ``present``."""
        return [a.member for a in self.artefacts if not a.private or a.member in present]

    def packaged(self, include_private: bool = False) -> tuple[Artefact, ...]:
        """The artefacts a package carries: the public ones, or all of them."""
        return tuple(a for a in self.artefacts if include_private or not a.private)


def verify_artefacts(manifest: CaptureManifest, files: Mapping[str, FileDigest]) -> list[Check]:
    """One ``capture_artefact`` check per artefact: ``files`` (by member name)
    holds the size and digests of what the package contains."""
    checks: list[Check] = []
    for a in manifest.artefacts:
        f = files.get(a.member)
        if f is None and a.private:
            checks.append(
                Check(
                    "capture_artefact",
                    NOT_CHECKED,
                    f"{a.name}: withheld, it holds a secret typed during the capture "
                    f"(SHA-256 {a.sha256}, {a.size} bytes, in the manifest)",
                    f"{a.name}：含取证时输入的保密内容，未放入证据包"
                    f"（清单记载 SHA-256 {a.sha256}，{a.size} 字节）",
                    a.member,
                )
            )
            continue
        if f is None:
            checks.append(
                Check(
                    "capture_artefact",
                    FAILED,
                    f"{a.member} is missing",
                    f"缺少 {a.member}",
                    a.member,
                )
            )
            continue
        en, zh = _differences(a, f)
        if en:
            checks.append(Check("capture_artefact", FAILED, "; ".join(en), "；".join(zh), a.member))
            continue
        sm3_en, sm3_zh = (
            (", SM3 matches", "，SM3 一致")
            if f.sm3
            else (
                " (SM3 not available in this Python, not compared)",
                "（本环境不支持 SM3，未比对）",
            )
        )
        checks.append(
            Check(
                "capture_artefact",
                PASSED,
                f"{a.name}: SHA-256 {f.sha256} matches ({f.size} bytes){sm3_en}",
                f"{a.name}：SHA-256 {f.sha256} 一致（{f.size} 字节）{sm3_zh}",
                a.member,
            )
        )
    return checks


def manifest_check(manifest: CaptureManifest) -> Check:
    """The ``capture_manifest`` check of a parsed manifest: what it says was captured."""
    m = manifest
    en = (
        f"{m.status} capture of {m.final_url} "
        f"({m.started_at} to {m.ended_at}), {len(m.artefacts)} artefacts"
    )
    zh = (
        f"{m.final_url} 的{'完整' if m.status == 'complete' else '部分'}取证"
        f"（{m.started_at} 至 {m.ended_at}），{len(m.artefacts)} 个文件"
    )
    if m.recording is not None:
        r = m.recording
        seconds = f"{r.duration_ms / 1000:.1f}"
        en += f"; video {seconds} s, {r.frame_count} frames, {r.codec} {r.width}x{r.height}"
        zh += f"；录像 {seconds} 秒，{r.frame_count} 帧，{r.codec} {r.width}x{r.height}"
    if m.actions:
        failed = f", {m.failed_actions} failed" if m.failed_actions else ""
        en += f"; {m.actions} steps logged{failed}"
        zh += f"；记录操作 {m.actions} 步" + (f"，{m.failed_actions} 步失败" if failed else "")
    return Check("capture_manifest", PASSED, en, zh)


def _differences(a: Artefact, f: FileDigest) -> tuple[list[str], list[str]]:
    en: list[str] = []
    zh: list[str] = []
    if f.size != a.size:
        en.append(f"size is {f.size} bytes, the manifest says {a.size}")
        zh.append(f"大小为 {f.size} 字节，清单记载为 {a.size}")
    if f.sha256 != a.sha256:
        en.append(f"SHA-256 is {f.sha256}, the manifest says {a.sha256}")
        zh.append(f"SHA-256 为 {f.sha256}，清单记载为 {a.sha256}")
    if f.sm3 is not None and f.sm3 != a.sm3:
        en.append(f"SM3 is {f.sm3}, the manifest says {a.sm3}")
        zh.append(f"SM3 为 {f.sm3}，清单记载为 {a.sm3}")
    return en, zh


def _exact(obj: dict[str, Any], names: set[str], what: str, optional: Collection[str] = ()) -> None:
    missing = sorted(names - obj.keys())
    extra = sorted(obj.keys() - names - set(optional))
    if missing:
        raise MalformedError(f"{what}: missing {', '.join(missing)}")
    if extra:
        raise MalformedError(f"{what}: unexpected {', '.join(extra)}")


def _str(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedError(f"capture manifest: {what} must be a non-empty string")
    return value


def _time(value: object, what: str) -> str:
    text = _str(value, what)
    if not _TIME.fullmatch(text):
        raise MalformedError(f"capture manifest: {what} is not a UTC time with microseconds")
    return text


def _artefact(value: object, i: int) -> Artefact:
    where = f"capture manifest: artefacts[{i}]"
    if not isinstance(value, dict):
        raise MalformedError(f"{where} is not an object")
    _exact(value, _ARTEFACT, where, optional=("private",))
    private = value.get("private", False)
    if private is not True and "private" in value:
        raise MalformedError(f"{where}: private must be true when present")
    name, path = value["name"], value["path"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise MalformedError(f"{where}: name must be lower-case letters, digits and _")
    if not isinstance(path, str) or not _PATH.fullmatch(path) or ".." in path:
        raise MalformedError(f"{where}: path {path!r} is not a plain file name")
    size = value["size"]
    if type(size) is not int or size < 0:
        raise MalformedError(f"{where}: size must be a non-negative integer")
    digests = []
    for key in ("sha256", "sm3"):
        v = value[key]
        if not isinstance(v, str) or not _HEX64.fullmatch(v):
            raise MalformedError(f"{where}: {key} must be 64 lower-case hex digits")
        digests.append(v)
    media = value["media_type"]
    if not isinstance(media, str) or not 0 < len(media) <= 100:
        raise MalformedError(f"{where}: media_type must be a short string")
    return Artefact(name, path, media, size, digests[0], digests[1], private)


def _int(value: object, where: str) -> int:
    if type(value) is not int or value < 0:
        raise MalformedError(f"{where} must be a non-negative integer")
    return value


def _named(value: object, artefacts: Mapping[str, Artefact], where: str) -> Artefact:
    if not isinstance(value, str) or value not in artefacts:
        raise MalformedError(f"{where} does not name an artefact of this manifest")
    return artefacts[value]


def _recording(value: object, artefacts: Mapping[str, Artefact]) -> Recording:
    """The ``recording`` member: its video must be one of the artefacts."""
    where = "capture manifest: recording"
    if not isinstance(value, dict):
        raise MalformedError(f"{where} is not an object")
    _exact(value, _RECORDING, where, optional=value.keys() - _RECORDING)
    for key in ("container", "codec"):
        if not isinstance(value[key], str) or not 0 < len(value[key]) <= 40:
            raise MalformedError(f"{where}: {key} must be a short string")
    return Recording(
        artefact=_named(value["artefact"], artefacts, f"{where}: artefact"),
        container=value["container"],
        codec=value["codec"],
        width=_int(value["width"], f"{where}: width"),
        height=_int(value["height"], f"{where}: height"),
        duration_ms=_int(value["duration_ms"], f"{where}: duration_ms"),
        frame_count=_int(value["frame_count"], f"{where}: frame_count"),
        started_at=_time(value["started_at"], "recording: started_at"),
        ended_at=_time(value["ended_at"], "recording: ended_at"),
    )


def _interactive(value: object) -> None:
    """The ``interactive`` member: the session's bounds, and the inputs logged."""
    where = "capture manifest: interactive"
    if not isinstance(value, dict):
        raise MalformedError(f"{where} must be an object")
    _exact(value, {"max_seconds", "idle_seconds", "inputs", "ended_by"}, where)
    for key in ("max_seconds", "idle_seconds", "inputs"):
        _bounded(value[key], 0, 86_400, f"{where}: {key}")
    if value["ended_by"] != "finish":
        raise MalformedError(f"{where}: ended_by must be finish (only finished sessions count)")


def _viewport(options: object) -> tuple[int, int]:
    """The capture's viewport from its options (``settings.options``; the
    largest one when not stated)."""
    width, height = 3840, 2160
    if isinstance(options, dict):
        w, h = options.get("viewport_width"), options.get("viewport_height")
        if type(w) is int and type(h) is int and 0 < w <= width and 0 < h <= height:
            width, height = w, h
    return width, height


def _bounded(value: object, low: int, high: int, what: str) -> None:
    if type(value) is not int or not low <= value <= high:
        raise MalformedError(f"{what} must be an integer from {low} to {high}")


def _input(entry: dict[str, Any], at: str, viewport: tuple[int, int]) -> None:
    """The members of an input action (pointer, wheel, key, text): exactly its
    own, each within its bounds; a secret text is null."""
    action = entry["action"]
    if action == "pointer":
        if entry.get("type") != "click" or entry.get("button") not in BUTTONS:
            raise MalformedError(f"{at}: pointer needs type click and a button")
        _bounded(entry.get("x"), 0, viewport[0] - 1, f"{at}: x")
        _bounded(entry.get("y"), 0, viewport[1] - 1, f"{at}: y")
    elif action == "wheel":
        _bounded(entry.get("dx"), -MAX_WHEEL, MAX_WHEEL, f"{at}: dx")
        _bounded(entry.get("dy"), -MAX_WHEEL, MAX_WHEEL, f"{at}: dy")
    elif action == "key":
        if entry.get("key") not in KEYS:
            raise MalformedError(f"{at}: key must be one of {', '.join(sorted(KEYS))}")
    elif action == "text":
        secret, text = entry.get("secret"), entry.get("text")
        if not isinstance(secret, bool):
            raise MalformedError(f"{at}: secret must be true or false")
        if secret and text is not None:
            raise MalformedError(f"{at}: a secret text must be null in the log")
        if not secret and not (isinstance(text, str) and 1 <= len(text) <= MAX_TEXT):
            raise MalformedError(f"{at}: text must be 1 to {MAX_TEXT} characters")


def _actions(
    value: object, artefacts: Mapping[str, Artefact], viewport: tuple[int, int] = (3840, 2160)
) -> tuple[str, ...]:
    """The action log: numbered steps, each with its times, outcome and, when it has
    one, a screenshot that is an artefact with the same SHA-256; input actions
    with their members in bounds (:func:`_input`). Returns the outcomes."""
    where = "capture manifest: actions"
    if not isinstance(value, list) or len(value) > MAX_ACTIONS:
        raise MalformedError(f"{where} must be a list of at most {MAX_ACTIONS} steps")
    outcomes = []
    for i, entry in enumerate(value, 1):
        at = f"{where}[{i - 1}]"
        if not isinstance(entry, dict):
            raise MalformedError(f"{at} is not an object")
        for key in ("index", "action", "outcome", "started_at", "ended_at"):
            if key not in entry:
                raise MalformedError(f"{at}: missing {key}")
        if entry["index"] != i or type(entry["index"]) is not int:
            raise MalformedError(f"{at}: index must be {i}")
        if entry["action"] not in ACTIONS:
            raise MalformedError(f"{at}: action must be one of {', '.join(ACTIONS)}")
        _input(entry, at, viewport)
        _time(entry["started_at"], f"actions[{i - 1}]: started_at")
        _time(entry["ended_at"], f"actions[{i - 1}]: ended_at")
        outcomes.append(_str(entry["outcome"], f"actions[{i - 1}]: outcome"))
        shot = entry.get("screenshot")
        if shot is not None:
            if not isinstance(shot, dict) or set(shot) != {"artefact", "sha256"}:
                raise MalformedError(f"{at}: screenshot must name an artefact and its sha256")
            a = _named(shot["artefact"], artefacts, f"{at}: screenshot")
            if shot["sha256"] != a.sha256:
                raise MalformedError(f"{at}: screenshot sha256 differs from the artefact's")
    return tuple(outcomes)


def _secrets(value: object, artefacts: Mapping[str, Artefact]) -> None:
    """The ``secrets`` member: the artefacts it calls private are marked private."""
    where = "capture manifest: secrets"
    if not isinstance(value, dict) or not isinstance(value.get("private_artefacts"), list):
        raise MalformedError(f"{where} must be an object listing private_artefacts")
    named = set()
    for name in value["private_artefacts"]:
        named.add(_named(name, artefacts, f"{where}: private_artefacts").name)
    marked = {a.name for a in artefacts.values() if a.private}
    if named != marked:
        raise MalformedError(f"{where}: private_artefacts are not the artefacts marked private")


def expected_members(manifest: CaptureManifest | None) -> Sequence[str]:
    """Artefact member names a capture package must hold (none without a manifest)."""
    return manifest.members() if manifest is not None else ()
