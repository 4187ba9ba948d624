"""Steps, recording options and the manifest's recorded-capture members, without a browser.

Steps files are parsed strictly (one clear error naming the step); options
refuse what the operator's limits do not allow; a secret never appears in
the options' JSON; the verifier reads manifests with and without the new
members, and refuses inconsistent ones; the Matroska stream ffmpeg reads
keeps every frame's millisecond.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ledger.capture import CaptureOptions
from ledger.capture.fetch import Exchange
from ledger.capture.matroska import MjpegStreamWriter
from ledger.capture.secrets import REDACTED, Secrets
from ledger.capture.steps import load_steps, parse_steps, steps_seconds
from ledger.config import CaptureConfig
from ledger.errors import InvalidInput
from verifier.canonical import canonicalize
from verifier.capture import CaptureManifest, verify_artefacts
from verifier.digest import FileDigest
from verifier.errors import MalformedError
from verifier.report import FAILED, NOT_CHECKED, PASSED

GOOD: list[dict[str, Any]] = [
    {"action": "goto", "url": "https://example.com/shop?q=1"},
    {"action": "click", "selector": "#buy"},
    {"action": "type", "selector": "#q", "text": "运动鞋"},
    {"action": "type", "selector": "#pw", "text": "s3cret-pass", "secret": True},
    {"action": "press", "key": "Control+A"},
    {"action": "scroll", "y": -800},
    {"action": "scroll", "x": 300, "y": 0},
    {"action": "wait", "seconds": 0.5},
    {"action": "wait", "selector": "#done"},
    {"action": "screenshot", "name": "after-search"},
]

BAD: list[tuple[Any, str]] = [
    ({"action": "goto"}, "steps[0] (goto): missing url"),
    ({"action": "goto", "url": "file:///etc/passwd"}, "url must be an http or https URL"),
    ({"action": "goto", "url": "https://a.test/", "wait": 1}, "steps[0] (goto): unexpected wait"),
    ({"action": "hover", "selector": "#a"}, "steps[0] (hover): action must be one of goto, click"),
    ({"selector": "#a"}, "steps[0]: action must be one of"),
    (["click", "#a"], "steps[0]: a step must be a JSON object with an action"),
    ({"action": "click", "selector": ""}, "selector must be a string of 1 to 500 characters"),
    ({"action": "click", "selector": "x" * 501}, "selector must be a string of 1 to 500"),
    ({"action": "type", "selector": "#q", "text": "a\x00b"}, "text has control characters"),
    ({"action": "type", "selector": "#q", "text": "t" * 1001}, "1 to 1000 characters"),
    ({"action": "type", "selector": "#q", "text": "x", "secret": "yes"}, "secret must be true"),
    ({"action": "type", "selector": "#q", "text": "12345", "secret": True}, "at least 6"),
    ({"action": "press", "key": "Enter Enter"}, "key must be a key name"),
    ({"action": "scroll"}, "give y (and/or x)"),
    ({"action": "scroll", "y": 1.5}, "y must be an integer"),
    ({"action": "scroll", "y": True}, "y must be an integer"),
    ({"action": "wait"}, "give either seconds or selector"),
    ({"action": "wait", "seconds": 1, "selector": "#a"}, "give either seconds or selector"),
    ({"action": "wait", "seconds": 0}, "seconds must be a number above 0, at most 60"),
    ({"action": "wait", "seconds": 61}, "at most 60"),
    ({"action": "wait", "seconds": "2"}, "seconds must be a number"),
    ({"action": "screenshot", "name": "After Search"}, "name must be 1 to 40 lower-case"),
]


def test_a_good_steps_list_parses_and_logs_its_own_keys() -> None:
    steps = parse_steps(GOOD)
    logged = [s.to_json() for s in steps]
    for given, out in zip(GOOD, logged, strict=True):
        if given.get("secret"):
            assert out == {**given, "text": None}
        elif given["action"] == "type":
            assert out == {**given, "secret": False}
        elif given["action"] == "scroll":
            assert out == {"x": 0, **given}
        else:
            assert out == given
    assert "s3cret-pass" not in json.dumps(logged)
    assert [s.target for s in steps][:2] == ["https://example.com/shop?q=1", "#buy"]


@pytest.mark.parametrize(("step", "message"), BAD)
def test_a_bad_step_is_refused_with_a_clear_message(step: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_steps([step])
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_the_steps_list_itself() -> None:
    for value, message in [
        ({"action": "click"}, "steps: must be a JSON list"),
        ([], "steps: give 1 to 200 steps (got 0)"),
        ([{"action": "press", "key": "Tab"}] * 201, "give 1 to 200 steps (got 201)"),
        ([{"action": "screenshot", "name": "a"}] * 2, "two screenshot steps are named 'a'"),
    ]:
        with pytest.raises(InvalidInput) as e:
            parse_steps(value)
        assert message in str(e.value)
    bad_second = [GOOD[0], {"action": "click"}]
    with pytest.raises(InvalidInput, match=r"^steps\[1\] \(click\): missing selector$"):
        parse_steps(bad_second)


def test_steps_files(tmp_path: Path) -> None:
    f = tmp_path / "steps.json"
    f.write_text(json.dumps(GOOD, ensure_ascii=False), "utf-8")
    assert len(load_steps(f)) == len(GOOD)
    f.write_bytes(b"[{")
    with pytest.raises(InvalidInput, match="is not UTF-8 JSON"):
        load_steps(f)
    f.write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidInput, match="is not UTF-8 JSON"):
        load_steps(f)
    with pytest.raises(InvalidInput, match="cannot read"):
        load_steps(tmp_path / "missing.json")
    f.write_bytes(b" " * (1 << 20) + b"[]")
    with pytest.raises(InvalidInput, match="larger than"):
        load_steps(f)


def test_recording_options_and_limits() -> None:
    with pytest.raises(InvalidInput, match="duration needs video"):
        CaptureOptions(duration=5)
    with pytest.raises(InvalidInput, match="duration must be 0 to 3600"):
        CaptureOptions(video=True, duration=3601)
    with pytest.raises(InvalidInput, match="step_timeout must be between 1 and 60"):
        CaptureOptions(step_timeout=0)
    steps = parse_steps(GOOD)
    options = CaptureOptions(video=True, duration=30, steps=steps, step_timeout=5)
    # Eight steps wait for their timeout at most, two for fixed times; 2 s each for screenshots.
    assert steps_seconds(steps, 5) == options.steps_seconds() == 8 * 5 + 0.5 + 5 + 2 * 10
    options.check_limits(CaptureConfig())
    with pytest.raises(
        InvalidInput, match=r"capture: 10 steps, the limit is 9 \(capture.max_steps\)"
    ):
        options.check_limits(CaptureConfig(max_steps=9))
    with pytest.raises(InvalidInput, match="the steps may take 66 s"):
        options.check_limits(CaptureConfig(max_steps_seconds=60))
    with pytest.raises(InvalidInput, match="duration 30 s, the limit is 20 s"):
        options.check_limits(CaptureConfig(max_duration=20))
    assert options.secrets == ("s3cret-pass",)


def test_options_json_keeps_no_secret_and_reads_back() -> None:
    options = CaptureOptions(video=True, steps=parse_steps(GOOD[:3]))
    data = options.to_json()
    assert data["steps"][2] == {
        "action": "type",
        "selector": "#q",
        "text": "运动鞋",
        "secret": False,
    }
    assert CaptureOptions.from_json(json.loads(json.dumps(data))) == options
    secret = CaptureOptions(steps=parse_steps(GOOD[3:4])).to_json()
    assert "s3cret-pass" not in json.dumps(secret)
    with pytest.raises(InvalidInput, match="text must be a string"):
        CaptureOptions.from_json(secret)  # the text must be given again
    with pytest.raises(InvalidInput, match="invalid options"):
        CaptureOptions.from_json({"colour": "red"})


def test_secrets_are_found_in_their_encodings_and_redacted() -> None:
    s = Secrets(["pa ss&word-秘"])
    for form in (
        "pa ss&word-秘",
        "pa+ss%26word-%E7%A7%98",
        "pa%20ss%26word-%e7%a7%98",
        "pa ss&amp;word-秘",
        "pa ss&word-\\u79d8",
    ):
        assert s.found_in(f"x={form};".encode()), form
        assert s.redact(f"?q={form}#") == f"?q={REDACTED}#"
    assert not s.found_in(b"pa ss word")
    manifest = {"url": "https://a.test/?pw=pa+ss%26word-%E7%A7%98", "sha256": "pa ss&word-秘"}
    assert s.redact_json(manifest) == {**manifest, "url": f"https://a.test/?pw={REDACTED}"}
    ex = Exchange("https://a.test/login", "POST", [], b"pw=pa+ss%26word-%E7%A7%98", time=None)  # type: ignore[arg-type]
    assert s.carried_by(ex)
    assert not Secrets([]).carried_by(ex) and not Secrets([])


def test_the_matroska_stream_keeps_each_frames_millisecond(tmp_path: Path) -> None:
    from PIL import Image

    from ledger.capture.recording import ENCODER_ARGS

    times = [0, 1, 205, 933, 1500, 1501, 4000]
    out = tmp_path / "v.mp4"
    args = ["-f", "matroska", "-i", "pipe:0", "-fps_mode", "passthrough", *ENCODER_ARGS]
    proc = subprocess.Popen(
        ["ffmpeg", "-v", "error", *args, str(out)],
        stdin=subprocess.PIPE,
    )
    assert proc.stdin is not None
    writer = MjpegStreamWriter(proc.stdin, 320, 240, "test")
    for i, t in enumerate(times):
        buf = io.BytesIO()
        Image.new("RGB", (320, 240), (i * 30, 80, 160)).save(buf, "JPEG")
        writer.frame(t, buf.getvalue())
    with pytest.raises(ValueError, match="not after"):
        writer.frame(4000, b"")
    proc.stdin.close()
    assert proc.wait(60) == 0
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "packet=pts_time", "-of", "csv=p=0", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [round(float(v) * 1000) for v in probe.stdout.split()] == times


# -- the verifier's view ---------------------------------------------------------

H1, H2, H3 = "1" * 64, "2" * 64, "3" * 64
T = "2026-01-02T03:04:05.000006Z"


def _manifest(**extra: Any) -> dict[str, Any]:
    artefacts = [
        {"name": "wacz", "path": "capture.wacz", "media_type": "application/wacz"},
        {"name": "video", "path": "recording.mp4", "media_type": "video/mp4"},
        {"name": "step_1", "path": "step-001.png", "media_type": "image/png"},
        {
            "name": "warc_secret",
            "path": "secret-records.warc.gz",
            "media_type": "x",
            "private": True,
        },
    ]
    for a, h in zip(artefacts, (H1, H2, H3, "4" * 64), strict=True):
        a.update({"size": 10, "sha256": h, "sm3": h})
    base: dict[str, Any] = {
        "format": "evidence-capture/v1",
        "capture_id": "c1",
        "requested_url": "https://a.test/",
        "final_url": "https://a.test/",
        "status": "complete",
        "limit_reached": None,
        "http_status": 200,
        "page_title": "t",
        "redirects": [],
        "started_at": T,
        "ended_at": T,
        "settings": {},
        "browser": {},
        "platform": {},
        "environment": {},
        "main_document": {},
        "requests": {},
        "artefacts": artefacts,
        "recording": {
            "artefact": "video",
            "container": "mp4",
            "codec": "h264",
            "width": 1280,
            "height": 858,
            "duration_ms": 30017,
            "frame_count": 301,
            "started_at": T,
            "ended_at": T,
            "encoder": "ffmpeg",
        },
        "actions": [
            {
                "index": 1,
                "action": "click",
                "selector": "#a",
                "outcome": "ok",
                "started_at": T,
                "ended_at": T,
                "screenshot": {"artefact": "step_1", "sha256": H3},
            }
        ],
        "secrets": {"typed": 1, "private_artefacts": ["warc_secret"]},
    }
    base.update(extra)
    return base


def _parse(obj: dict[str, Any]) -> CaptureManifest:
    return CaptureManifest.from_json(canonicalize(obj))


def test_the_verifier_reads_recorded_captures() -> None:
    m = _parse(_manifest())
    assert m.recording is not None and m.recording.artefact.name == "video"
    assert (m.recording.duration_ms, m.recording.frame_count) == (30017, 301)
    assert (m.actions, m.failed_actions) == (1, 0)
    assert m.members() == ["capture/capture.wacz", "capture/recording.mp4", "capture/step-001.png"]
    assert m.members(present={"capture/secret-records.warc.gz"})[-1].endswith(".warc.gz")
    assert [a.name for a in m.packaged()] == ["wacz", "video", "step_1"]
    assert len(m.packaged(include_private=True)) == 4
    files = {
        a.member: FileDigest(a.member, a.size, a.sha256, a.sm3, 0)
        for a in m.artefacts
        if not a.private
    }
    checks = verify_artefacts(m, files)
    assert [c.status for c in checks] == [PASSED, PASSED, PASSED, NOT_CHECKED]
    files["capture/recording.mp4"] = FileDigest("capture/recording.mp4", 10, H1, H1, 0)
    assert verify_artefacts(m, files)[1].status == FAILED


def test_older_manifests_without_recording_still_parse() -> None:
    old = _manifest()
    for key in ("recording", "actions", "secrets"):
        del old[key]
    old["artefacts"] = old["artefacts"][:1]
    m = _parse(old)
    assert (m.recording, m.actions) == (None, 0) and m.members() == ["capture/capture.wacz"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["recording"].update(artefact="nope"), "recording: artefact does not name"),
        (lambda m: m["recording"].pop("codec"), "recording: missing codec"),
        (lambda m: m["recording"].update(duration_ms=-1), "duration_ms must be a non-negative"),
        (lambda m: m["recording"].update(started_at="yesterday"), "not a UTC time"),
        (lambda m: m["actions"][0].update(index=2), "actions[0]: index must be 1"),
        (lambda m: m["actions"][0].update(action="hover"), "action must be one of"),
        (lambda m: m["actions"][0].pop("outcome"), "actions[0]: missing outcome"),
        (
            lambda m: m["actions"][0]["screenshot"].update(sha256=H1),
            "screenshot sha256 differs from the artefact's",
        ),
        (lambda m: m.update(actions={}), "actions must be a list"),
        (lambda m: m["artefacts"][3].update(private=False), "private must be true when present"),
        (lambda m: m.pop("secrets"), "private artefacts without a secrets member"),
        (
            lambda m: m["secrets"].update(private_artefacts=[]),
            "private_artefacts are not the artefacts marked private",
        ),
        (lambda m: m.update(video={}), "capture manifest: unexpected video"),
    ],
)
def test_inconsistent_recording_members_are_refused(edit: Any, message: str) -> None:
    obj = _manifest()
    edit(obj)
    with pytest.raises(MalformedError) as e:
        _parse(obj)
    assert message in str(e.value)
