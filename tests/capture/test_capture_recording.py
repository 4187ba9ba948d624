"""Recorded capture (录屏取证 / 过程取证) in the real Chromium, encoded by the real ffmpeg.

One process capture of the local clock page (its content changes every
100 ms) runs nine steps while recording: wait, click a button that changes
the DOM, wait for its effect, type a name, type a code as a secret, take a
named screenshot, submit the form (POST, answered 303), wait, scroll; then
records two seconds more. It is certified and packaged, and checked from
every side: ffprobe reads the video at the duration the manifest states,
every frame keeps its own time, frames differ over time, the clock burned
into the frames says the frame's time, the action log has every step, the
click's effect is in the DOM snapshot, the secret is nowhere in the manifest
or the public package (bytes, with every WARC decompressed) but is in the
withheld WARC, it is masked in the screenshots and the video, the package
verifies with ``evidence-verify`` and a tampered video is refused.

A second recording of a page that does not change checks ``duration`` (the
last frame repeated, the video as long as asked); the others check the
limits and that a step navigating to a refused address is blocked and logged.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from capture_support import Site, serve
from PIL import Image, ImageChops, ImageDraw, ImageStat

from ledger.accounts import create_account
from ledger.capture import CaptureFailed, CaptureOptions
from ledger.capture.recording import _font
from ledger.capture.service import CaptureResult, capture_evidence
from ledger.capture.steps import parse_steps
from ledger.certificates import issue_certificate, package_certificate, trust_export
from ledger.core import Ledger
from ledger.errors import Forbidden
from ledger.services import OPERATOR, Services
from ledger.services.policy import Actor
from verifier.package import verify_package
from verifier.report import FAILED, NOT_CHECKED, PASSED
from verifier.trust import load_trust

EV = Path(sys.executable).with_name("evidence-verify")
NOTARY = "Notary Zhang 张公证员"
SECRET = "hunter2-秘密口令"
STEPS: list[dict[str, Any]] = [
    {"action": "wait", "seconds": 1},
    {"action": "click", "selector": "#buy"},
    {"action": "wait", "selector": "#bought"},
    {"action": "type", "selector": "#user", "text": "张三"},
    {"action": "type", "selector": "#code", "text": SECRET, "secret": True},
    {"action": "screenshot", "name": "filled"},
    {"action": "press", "key": "Enter"},
    {"action": "wait", "seconds": 1},
    {"action": "scroll", "y": 400},
]
CODE_BOX = (20, 300, 268, 336)
"""Where ``#code`` is on the clock page (CSS pixels: left, top, right, bottom)."""


def _ledger(home: Path, **capture: Any) -> Ledger:
    led = Ledger.init(home, "recording.test/log")
    settings: dict[str, Any] = {"allow": ("127.0.0.0/8",), **capture}
    led.config = replace(led.config, capture=replace(led.config.capture, **settings))
    return led


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ffprobe(path: Path, *entries: str) -> dict[str, Any]:
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *entries, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def frame_at(video: Path, seconds: float, tmp: Path) -> Image.Image:
    """The frame shown at ``seconds`` (ffmpeg decodes it to PNG)."""
    out = tmp / f"frame-{seconds:.3f}.png"
    args = ["-ss", f"{seconds:.3f}", "-i", str(video), "-frames:v", "1", str(out)]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *args],
        check=True,
        timeout=120,
    )
    return Image.open(out).convert("RGB")


def packet_times(video: Path) -> list[float]:
    info = ffprobe(video, "-select_streams", "v:0", "-show_entries", "packet=pts_time")
    return [float(p["pts_time"]) for p in info["packets"]]


def secret_forms() -> list[bytes]:
    return [f.encode() for f in {SECRET, quote(SECRET, safe=""), quote_plus(SECRET)}]


def unpacked(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """A file and everything inside it: zip members (WACZ, package), gzip members (WARC)."""
    yield name, data
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                yield from unpacked(f"{name}!{info.filename}", z.read(info))
    elif data[:2] == b"\x1f\x8b":
        yield from unpacked(f"{name}!gunzip", gzip.decompress(data))


@dataclass
class Recorded:
    ledger: Ledger
    site: Site
    result: CaptureResult
    out: Path
    package: Path
    full_package: Path
    trust: Path
    tmp: Path

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(self.result.manifest.data)

    @property
    def video(self) -> Path:
        return self.out / "recording.mp4"

    def artefact(self, name: str) -> Path:
        (a,) = [a for a in self.result.manifest.artefacts if a.name == name]
        return self.out / a.path

    def at(self, t: str) -> float:
        """Seconds into the video of a manifest time."""
        start = _time(self.manifest["recording"]["started_at"])
        return (_time(t) - start).total_seconds()


def _certify(led: Ledger, result: CaptureResult, base: Path) -> tuple[Path, Path, Path]:
    led.seal()
    create_account(led, "notary", NOTARY)
    issued = issue_certificate(led, result.to_json()["evidence_id"], NOTARY)
    pkg = package_certificate(led, issued.certificate_id, base / "package.zip")
    full = package_certificate(
        led, issued.certificate_id, base / "package-private.zip", include_private=True
    )
    trust = base / "trust.json"
    trust.write_text(json.dumps(trust_export(led)))
    return pkg, full, trust


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    base = tmp_path_factory.mktemp("recorded")
    with serve() as site:
        led = _ledger(base / "home")
        try:
            options = CaptureOptions(video=True, duration=2, steps=parse_steps(STEPS))
            result = capture_evidence(
                led, site.base + "/clock.html", options, title="录屏取证", out_dir=base / "out"
            )
            pkg, full, trust = _certify(led, result, base)
            yield Recorded(led, site, result, base / "out", pkg, full, trust, base)
        finally:
            led.close()


# -- the video -----------------------------------------------------------------


def test_ffprobe_reads_the_video_at_the_stated_duration(recorded: Recorded) -> None:
    rec = recorded.manifest["recording"]
    info = ffprobe(
        recorded.video,
        "-count_packets",
        "-show_entries",
        "stream=codec_name,width,height,nb_read_packets:format=duration,format_name",
    )
    (stream,) = info["streams"]
    duration = float(info["format"]["duration"])
    assert stream["codec_name"] == rec["codec"] == "h264"
    assert "mp4" in info["format"]["format_name"] and rec["container"] == "mp4"
    assert (stream["width"], stream["height"]) == (rec["width"], rec["height"])
    assert stream["width"] == 1280 and stream["height"] > 800  # the band above the page
    assert int(stream["nb_read_packets"]) == rec["frame_count"]
    assert abs(duration * 1000 - rec["duration_ms"]) <= 1
    # As long as the recording, within half a second ...
    wall = (_time(rec["ended_at"]) - _time(rec["started_at"])).total_seconds()
    assert abs(duration - wall) <= 0.5, (duration, wall)
    # ... which ran from before the first page loaded to two seconds after the last step.
    last = recorded.manifest["actions"][-1]
    assert _time(rec["started_at"]) <= _time(recorded.manifest["actions"][0]["started_at"])
    assert _time(rec["ended_at"]) >= _time(last["ended_at"]) + timedelta(seconds=2)
    artefact = next(a for a in recorded.result.manifest.artefacts if a.name == "video")
    assert (artefact.media_type, artefact.size) == ("video/mp4", recorded.video.stat().st_size)


def test_every_frame_keeps_its_own_time(recorded: Recorded) -> None:
    times = packet_times(recorded.video)
    assert times[0] == 0.0
    assert all(b > a for a, b in itertools.pairwise(times)), "strictly increasing"
    assert all(abs(t * 1000 - round(t * 1000)) < 1e-6 for t in times), "millisecond times"
    gaps = {round(b - a, 3) for a, b in itertools.pairwise(times)}
    assert len(gaps) > 5, "variable frame rate: frames come when the page changes"
    # The page changes every 100 ms: frames from the browser, not only repeats.
    rec = recorded.manifest["recording"]
    assert rec["frames_from_browser"] >= 3 * (rec["duration_ms"] // 1000)
    assert max(gaps) <= 0.6, "the last frame is repeated while nothing changes"


def test_frames_differ_over_time_and_the_clock_advances(recorded: Recorded) -> None:
    rec = recorded.manifest["recording"]
    band = rec["height"] - 800
    first = recorded.at(recorded.manifest["actions"][0]["started_at"])
    a = frame_at(recorded.video, first + 0.1, recorded.tmp)
    b = frame_at(recorded.video, first + 0.8, recorded.tmp)
    page = (0, band, 1280, band + 200)  # the counter and the bar
    assert ImageChops.difference(a.crop(page), b.crop(page)).getbbox() is not None
    clock = (0, 0, 400, band // 2)
    assert ImageChops.difference(a.crop(clock), b.crop(clock)).getbbox() is not None


def _clock_text(start: datetime, seconds: float) -> str:
    t = start + timedelta(milliseconds=round(seconds * 1000))
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d} UTC"


def test_the_burned_in_clock_is_the_frame_time(recorded: Recorded, tmp_path: Path) -> None:
    """The band shows started_at + the frame's presentation time: the frame matches
    that text drawn in the same font far better than a clock 1.111 s off."""
    rec = recorded.manifest["recording"]
    start = _time(rec["started_at"])
    times = packet_times(recorded.video)
    size = max(12, min(24, 1280 // 70))
    font, _ = _font(recorded.ledger.config.capture.font, size)
    checked = 0
    for t in (times[len(times) // 3], times[2 * len(times) // 3]):
        frame = frame_at(recorded.video, t, tmp_path)
        text = _clock_text(start, t)
        width = int(ImageDraw.Draw(frame).textlength(text, font=font)) + size
        box = (0, 0, width, int(size * 1.6))
        region = frame.crop(box).convert("L")

        def render(text: str) -> Image.Image:
            img = Image.new("RGB", frame.size, (0, 0, 0))
            ImageDraw.Draw(img).text((size // 2, size // 4), text, font=font, fill=(255, 255, 80))
            return img.crop(box).convert("L")

        right, wrong = render(text), render(_clock_text(start, t + 1.111))
        # Only where the two clocks differ (the seconds and milliseconds).
        where = ImageChops.difference(right, wrong).point(lambda v: 255 if v > 40 else 0)
        near = ImageStat.Stat(ImageChops.difference(right, region), where).mean[0]
        far = ImageStat.Stat(ImageChops.difference(wrong, region), where).mean[0]
        assert near * 3 < far, (t, text, near, far)
        checked += 1
    assert checked == 2


# -- the steps -----------------------------------------------------------------


def test_the_action_log_has_every_step(recorded: Recorded) -> None:
    actions = recorded.manifest["actions"]
    assert [a["index"] for a in actions] == list(range(1, len(STEPS) + 1))
    by_name = {a.name: a for a in recorded.result.manifest.artefacts}
    previous_end = _time(recorded.manifest["started_at"])
    for given, logged in zip(STEPS, actions, strict=True):
        expected = {**given, "text": None} if given.get("secret") else given
        assert {k: logged[k] for k in expected} == expected
        if given["action"] == "type":
            assert logged["secret"] is bool(given.get("secret"))
        assert logged["outcome"] == "ok" and logged["error"] is None
        started, ended = _time(logged["started_at"]), _time(logged["ended_at"])
        assert previous_end <= started <= ended
        previous_end = ended
        shot = logged["screenshot"]
        assert by_name[shot["artefact"]].sha256 == shot["sha256"]
        assert by_name[shot["artefact"]].media_type == "image/png"
    assert actions[0]["target"] == "1 s" and actions[1]["target"] == "#buy"
    assert actions[5]["url_after"].endswith("/clock.html")
    # The form was posted (303) and the browser followed to the page it named.
    assert actions[6]["url_after"] == recorded.site.base + "/welcome.html"
    assert recorded.manifest["final_url"] == recorded.site.base + "/welcome.html"
    assert recorded.manifest["page_title"] == "欢迎 welcome"
    assert recorded.result.manifest.actions == len(STEPS)


def test_the_click_changed_the_dom_snapshot(recorded: Recorded) -> None:
    dom = recorded.artefact("step_6_dom").read_text("utf-8")
    assert 'id="bought"' in dom and "已购买 bought" in dom
    assert recorded.artefact("step_6").name == "step-006-filled.png"
    assert recorded.artefact("step_6_full").name == "step-006-filled-full.png"
    # Before the click the button's effect is absent; the final DOM is the next page.
    assert "welcome" in recorded.artefact("dom").read_text("utf-8")


def test_the_secret_reached_the_site_and_the_withheld_warc_only(recorded: Recorded) -> None:
    (_, body), *_ = [p for p in recorded.site.posts if p[0] == "/login"]
    assert quote_plus(SECRET).encode() in body
    secrets = recorded.manifest["secrets"]
    assert secrets["typed"] == 1 and secrets["private_artefacts"] == ["warc_secret"]
    (withheld,) = secrets["withheld_records"]
    assert (withheld["method"], withheld["status"]) == ("POST", 303)
    assert withheld["url"] == recorded.site.base + "/login"
    # The package asked for with private artefacts carries the exchange.
    with zipfile.ZipFile(recorded.full_package) as z:
        warc = gzip.decompress(z.read("capture/secret-records.warc.gz"))
    assert quote_plus(SECRET).encode() in warc and b"POST /login" in warc


def test_the_package_service_gives_private_artefacts_to_the_operator_only(
    recorded: Recorded,
) -> None:
    """The capture was made by the operator (no owning rights holder): no
    account, whatever its role, may ask for its private artefacts."""
    services = Services(recorded.ledger)
    (cert,) = services.certificates.issued(OPERATOR)
    full = services.certificates.package_to(
        OPERATOR, cert.certificate_id, recorded.tmp / "svc-private.zip", include_private=True
    )
    with zipfile.ZipFile(full) as z:
        assert "capture/secret-records.warc.gz" in z.namelist()
    notary = services.reads.active_accounts_by_name(NOTARY)[0]
    actor = Actor(notary.account_id, notary.role, notary.name)
    with pytest.raises(Forbidden):
        services.certificates.package_to(
            actor, cert.certificate_id, recorded.tmp / "x.zip", include_private=True
        )


def test_the_secret_appears_nowhere_public(recorded: Recorded) -> None:
    forms = secret_forms()
    files = [(p.name, p.read_bytes()) for p in sorted(recorded.out.iterdir())]
    files.append(("package.zip", recorded.package.read_bytes()))
    files.append(("options", json.dumps(recorded.result.manifest.data["settings"]).encode()))
    files.append(("receipt", json.dumps(recorded.result.to_json()).encode()))
    seen = 0
    for name, data in files:
        for inner, content in unpacked(name, data):
            seen += 1
            assert not any(f in content for f in forms), f"the secret is in {inner}"
    assert seen > 30  # the WACZ's and the package's members, the WARC decompressed
    with zipfile.ZipFile(recorded.package) as z:
        names = z.namelist()
    assert "capture/secret-records.warc.gz" not in names
    assert "capture/recording.mp4" in names and "capture/step-006-filled.html" in names
    assert not (recorded.out / "secret-records.warc.gz").exists()


def _grey(img: Image.Image, box: tuple[int, int, int, int]) -> bool:
    """Whether ``box`` is the mask's flat grey (60, 60, 60), give or take compression."""
    stat = ImageStat.Stat(img.crop(box))
    return all(abs(m - 60) < 12 for m in stat.mean) and max(stat.stddev) < 12


def test_the_secret_field_is_masked_in_screenshots_and_video(recorded: Recorded) -> None:
    inner = (CODE_BOX[0] + 4, CODE_BOX[1] + 4, CODE_BOX[2] - 4, CODE_BOX[3] - 4)
    for name in ("step_5", "step_6", "step_6_full"):
        shot = Image.open(recorded.artefact(name)).convert("RGB")
        assert _grey(shot, inner), name
    user = (20 + 4, 240 + 4, 268 - 4, 276 - 4)  # the name typed openly is not masked
    assert not _grey(Image.open(recorded.artefact("step_6")).convert("RGB"), user)
    band = recorded.manifest["recording"]["height"] - 800
    box = (inner[0], inner[1] + band, inner[2], inner[3] + band)
    actions = recorded.manifest["actions"]
    typing, enter = actions[4], actions[6]
    assert (typing["action"], enter["action"]) == ("type", "press")
    # Every frame from the start of the secret's typing to the Enter that leaves
    # the page, twenty a second: the field is masked, or still empty (the last
    # frame the browser drew before the first key); and masked once typed.
    start, typed = recorded.at(typing["started_at"]), recorded.at(typing["ended_at"])
    end = recorded.at(enter["started_at"])
    frames = frames_between(recorded.video, start, end, recorded.tmp)
    assert len(frames) >= int((end - start) * 20) - 1
    for t, frame in frames:
        assert _grey(frame, box) or _blank(frame, box), f"not masked at {t:.3f} s"
    assert any(_grey(f, box) for t, f in frames if t >= typed), f"typed at {typed:.3f} s"


def frames_between(video: Path, start: float, end: float, tmp: Path) -> list[tuple[float, Any]]:
    """The frames shown from ``start`` to ``end`` seconds, twenty a second, with their times."""
    out = tmp / f"frames-{start:.3f}"
    out.mkdir(exist_ok=True)
    args = ["-ss", f"{start:.3f}", "-i", str(video), "-t", f"{end - start:.3f}"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *args, "-vf", "fps=20", str(out / "f%04d.png")],
        check=True,
        timeout=120,
    )
    paths = sorted(out.glob("f*.png"))
    return [(start + i / 20, Image.open(p).convert("RGB")) for i, p in enumerate(paths)]


def _blank(img: Image.Image, box: tuple[int, int, int, int]) -> bool:
    """Whether ``box`` is an empty white field (nothing typed in it)."""
    stat = ImageStat.Stat(img.crop(box))
    return all(m > 235 for m in stat.mean) and max(stat.stddev) < 12


def test_the_package_verifies_with_evidence_verify(recorded: Recorded) -> None:
    trust = load_trust(recorded.trust.read_bytes())
    report = verify_package(recorded.package, trust)
    assert report.valid, [(c.key, c.reason) for c in report.failed]
    by_subject = {c.subject: c for c in report.checks if c.key == "capture_artefact"}
    assert by_subject["capture/recording.mp4"].status == PASSED
    assert by_subject["capture/secret-records.warc.gz"].status == NOT_CHECKED
    assert "withheld" in by_subject["capture/secret-records.warc.gz"].reason
    summary = report.check("capture_manifest").reason
    assert "video" in summary and f"{len(STEPS)} steps logged" in summary
    full = verify_package(recorded.full_package, trust)
    assert full.valid and all(
        c.status == PASSED for c in full.checks if c.key == "capture_artefact"
    )
    proc = subprocess.run(
        [str(EV), "package", str(recorded.package), "--trust", str(recorded.trust)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _rezip(src: Path, dst: Path, name: str, edit: Any) -> None:
    """A copy of a package with one member's bytes changed (CRC-32 recomputed)."""
    from verifier.package import _dos_time, _end_records, _Member

    with zipfile.ZipFile(src) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
        issued = json.loads(z.read("certificate.json"))["issued_at"]
    t, d = _dos_time(issued)
    out = bytearray()
    entries = []
    import zlib

    for n, data in members:
        data = edit(data) if n == name else data
        m = _Member(n, len(data), zlib.crc32(data), len(out), t, d)
        out += m.local_header() + data
        entries.append(m)
    central = b"".join(m.central_header() for m in entries)
    offset = len(out)
    dst.write_bytes(bytes(out + central + _end_records(len(entries), offset, len(central))))


def test_a_tampered_video_is_refused(recorded: Recorded, tmp_path: Path) -> None:
    def flip(data: bytes) -> bytes:
        i = len(data) // 2
        return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]

    bad = tmp_path / "tampered.zip"
    _rezip(recorded.package, bad, "capture/recording.mp4", flip)
    report = verify_package(bad, load_trust(recorded.trust.read_bytes()))
    assert not report.valid
    (failed,) = report.failed
    assert (failed.key, failed.subject) == ("capture_artefact", "capture/recording.mp4")
    assert "the manifest says" in failed.reason
    proc = subprocess.run(
        [str(EV), "package", str(bad), "--trust", str(recorded.trust)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0 and FAILED.upper() in proc.stdout.upper()


# -- duration ------------------------------------------------------------------


def test_duration_records_a_still_page_for_as_long_as_asked(tmp_path: Path) -> None:
    with serve() as site:
        led = _ledger(tmp_path / "home")
        try:
            result = capture_evidence(
                led,
                site.base + "/page.html",
                CaptureOptions(video=True, duration=4),
                out_dir=tmp_path / "out",
            )
        finally:
            led.close()
    m = result.manifest.data
    rec = m["recording"]
    video = tmp_path / "out" / "recording.mp4"
    duration = float(ffprobe(video, "-show_entries", "format=duration")["format"]["duration"])
    wall = (_time(rec["ended_at"]) - _time(rec["started_at"])).total_seconds()
    assert abs(duration - wall) <= 0.5 and duration >= 4.0, (duration, wall)
    # Nothing moves on this page after load: the last frame is repeated, so the
    # clock keeps running to the end.
    assert rec["frames_repeated"] >= 6
    times = packet_times(video)
    assert times[-1] >= 4.0 and max(b - a for a, b in itertools.pairwise(times)) <= 0.6
    assert "actions" not in m and "secrets" not in m
    assert "--autoplay-policy=no-user-gesture-required" in m["browser"]["flags"]
    assert "--mute-audio" in m["browser"]["flags"]
    assert m["settings"]["options"]["duration"] == 4
    end = frame_at(video, times[-1], tmp_path)
    late = frame_at(video, times[-3], tmp_path)
    clock = (0, 0, 330, 20)
    assert ImageChops.difference(end.crop(clock), late.crop(clock)).getbbox() is not None


# -- failures, limits and the address policy -----------------------------------


def test_a_step_navigating_to_a_refused_address_ends_the_capture(tmp_path: Path) -> None:
    steps = parse_steps(
        [
            {"action": "click", "selector": "#buy"},
            {"action": "goto", "url": "http://10.0.0.1/secret"},
        ]
    )
    with serve() as site:
        led = _ledger(tmp_path / "home")
        try:
            before = led.store.size()
            with pytest.raises(CaptureFailed) as e:
                capture_evidence(led, site.base + "/clock.html", CaptureOptions(steps=steps))
            assert led.store.size() == before  # nothing stored
            root = led.config.blob_dir
            assert not (list(root.glob("??/*")) if root.exists() else [])
        finally:
            led.close()
    assert e.value.status == "refused"
    assert str(e.value).startswith("capture: refused: step 2 (goto http://10.0.0.1/secret): ")
    assert "10.0.0.1" in e.value.detail and "/secret" not in site.hits


def test_refused_steps_are_blocked_and_logged_with_partial_results(tmp_path: Path) -> None:
    steps = parse_steps(
        [
            {"action": "click", "selector": "#private"},  # a link to 10.0.0.1
            {"action": "click", "selector": "#buy"},
        ]
    )
    with serve() as site:
        led = _ledger(tmp_path / "home")
        try:
            result = capture_evidence(
                led, site.base + "/clock.html", CaptureOptions(steps=steps, partial=True)
            )
        finally:
            led.close()
    m = result.manifest.data
    assert m["status"] == "partial"
    (logged,) = m["actions"]  # the capture ended at the refused step
    assert (logged["action"], logged["outcome"]) == ("click", "refused")
    assert "http://10.0.0.1/secret" in logged["error"] and "refused" in logged["error"]
    assert logged["url_after"] == site.base + "/clock.html"
    assert {"url": "http://10.0.0.1/secret"}.items() <= m["requests"]["refused"][0].items()
    assert result.manifest.failed_actions == 1


def test_a_failing_step_names_itself(tmp_path: Path) -> None:
    steps = parse_steps(
        [{"action": "wait", "seconds": 0.2}, {"action": "click", "selector": "#nothing-here"}]
    )
    with serve() as site:
        led = _ledger(tmp_path / "home")
        try:
            with pytest.raises(CaptureFailed) as e:
                capture_evidence(
                    led, site.base + "/page.html", CaptureOptions(steps=steps, step_timeout=1)
                )
        finally:
            led.close()
    assert e.value.status == "step_failed"
    assert str(e.value) == (
        "capture: step_failed: step 2 (click #nothing-here): no visible element matches "
        "the selector within 1 s (ask for partial results to keep the rest)"
    )


def test_the_video_byte_limit(tmp_path: Path) -> None:
    with serve() as site:
        led = _ledger(tmp_path / "home", max_video_bytes=40_000)
        try:
            options = CaptureOptions(video=True, duration=8)
            with pytest.raises(CaptureFailed) as e:
                capture_evidence(led, site.base + "/clock.html", options)
            assert (e.value.status, e.value.limit) == ("limit_exceeded", "video_bytes")
            assert "40000 bytes" in str(e.value)
            result = capture_evidence(
                led,
                site.base + "/clock.html",
                replace(options, partial=True),
                out_dir=tmp_path / "out",
            )
        finally:
            led.close()
    m = result.manifest.data
    assert (m["status"], m["limit_reached"]) == ("partial", "video_bytes")
    assert m["recording"]["truncated_at_byte_limit"] is True
    video = tmp_path / "out" / "recording.mp4"
    assert video.stat().st_size <= 40_000
    duration = float(ffprobe(video, "-show_entries", "format=duration")["format"]["duration"])
    assert 0 < duration < 8


def test_limits_are_checked_before_anything_runs(tmp_path: Path) -> None:
    led = _ledger(tmp_path / "home", max_duration=5, max_steps=2, max_steps_seconds=20)
    try:
        cases = [
            (CaptureOptions(video=True, duration=6), "duration 6 s, the limit is 5 s"),
            (
                CaptureOptions(steps=parse_steps([{"action": "press", "key": "Tab"}] * 3)),
                "3 steps, the limit is 2",
            ),
            (
                CaptureOptions(steps=parse_steps([{"action": "wait", "seconds": 19}])),
                "the steps may take 21 s",
            ),
        ]
        for options, message in cases:
            with pytest.raises(Exception) as e:  # noqa: PT011 - the message is checked
                capture_evidence(led, "http://127.0.0.1:9/", options)
            assert type(e.value).__name__ == "InvalidInput" and message in str(e.value)
    finally:
        led.close()
