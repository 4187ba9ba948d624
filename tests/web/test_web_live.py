"""Interactive capture from the console, with real chromium, ffmpeg and a real server.

A local site shows a counter that changes every 100 ms (so frames change) and
a large button at the top left whose click changes the DOM. The rights
holder starts a session at ``/console/live``, sees the frames, clicks the
button at its coordinates, turns the wheel, presses a key, types a text and
a secret, and finishes: the deposit's package verifies with
``evidence-verify``, its action log has every input with its times, its DOM
snapshot has the click's effect and the secret is nowhere in it. Abandoning,
or closing the page, leaves no blob, no log entry and no work directory; a
second session is refused (409) while the first lives; other roles are refused.
"""

from __future__ import annotations

import http.server
import io
import json
import re
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from .web_support import Pages, Server, World, run_axe

EV = Path(sys.executable).with_name("evidence-verify")
SECRET = "hunter2-live-secret"
SITE = b"""<!doctype html><html><head><meta charset="utf-8"><title>live test</title>
<style>body{margin:0;font:20px sans-serif;height:3000px}
#hit{position:absolute;left:0;top:0;width:400px;height:200px;background:#c33;color:#fff}
#field{position:absolute;left:0;top:260px;width:400px;height:40px}
#tick{position:absolute;left:500px;top:20px;font-size:60px}</style></head><body>
<button id="hit">press</button><input id="field"><div id="tick">0</div><p id="result">waiting</p>
<p style="position:absolute;top:320px" id="out">none</p>
<script>
var n = 0;
setInterval(function () { n += 1; document.getElementById('tick').textContent = n; }, 100);
document.getElementById('hit').addEventListener('click', function () {
  document.getElementById('result').textContent = 'clicked-at-coordinates';
});
document.addEventListener('keydown', function (e) {
  if (e.key === 'Tab') { document.getElementById('out').textContent = 'tab-pressed'; }
});
</script></body></html>"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(SITE)))
        self.end_headers()
        self.wfile.write(SITE)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/page"
    finally:
        srv.shutdown()
        srv.server_close()


def _start(page: Page, site: str) -> None:
    page.goto("/console/live")
    page.fill("#live-url", site)
    page.click("form[action='/console/live'] [type=submit]")
    expect(page.locator("#live-status")).to_have_attribute("data-status", "running", timeout=60_000)
    expect(page.locator("#live-frame")).to_have_attribute(
        "data-seq", re.compile(r"\d+"), timeout=30_000
    )


def _seq(page: Page) -> int:
    return int(page.get_attribute("#live-frame", "data-seq") or "0")


def _click_at(page: Page, x: int, y: int) -> None:
    """Click the frame where the remote viewport's point (x, y) is shown."""
    box = page.locator("#live-frame").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x * box["width"] / 1280, box["y"] + y * box["height"] / 800)


def _tree_size(server_url: str) -> int:
    text = httpx.get(server_url + "/checkpoint", timeout=10).text
    return int(text.splitlines()[1])


def _blobs(home: Path) -> set[Path]:
    root = home / "blobs"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _work(home: Path) -> list[Path]:
    root = home / "captures" / "work"
    return list(root.iterdir()) if root.exists() else []


def _nothing_left(pages: Pages, world: World, size: int, blobs: set[Path]) -> None:
    time.sleep(2.5)  # the sealer would have sealed an entry by now
    assert _tree_size(pages.server.url) == size
    assert _blobs(world.home) == blobs
    assert _work(world.home) == []


def test_a_session_is_driven_and_deposited(
    pages: Pages, world: World, site: str, tmp_path: Path
) -> None:
    page = pages.new("en")
    pages.login(page, world.tokens["alice"])
    _start(page, site)
    # Frames reach the page and change (the counter moves every 100 ms).
    seen = _seq(page)
    expect(page.locator("#live-frame")).not_to_have_attribute("data-seq", str(seen), timeout=10_000)
    first = page.request.get(f"/console/live/frame?after={_seq(page) - 1}")
    time.sleep(0.5)
    second = page.request.get(f"/console/live/frame?after={int(first.headers['x-frame-seq'])}")
    assert first.status == second.status == 200
    assert first.headers["content-type"] == "image/jpeg"
    assert first.body()[:2] == b"\xff\xd8" and first.body() != second.body()
    assert page.evaluate("document.getElementById('live-frame').naturalWidth") > 100
    assert not run_axe(page)
    clock = page.inner_text("#live-clock")
    datetime.fromisoformat(clock.replace("Z", "+00:00"))  # a visible UTC clock
    # Inputs: a click at the button's coordinates, a wheel turn, a key, a text, a secret.
    _click_at(page, 100, 100)
    expect(page.locator("#live-inputs")).to_have_text("1", timeout=15_000)
    page.locator("#live-frame").hover()
    page.mouse.wheel(0, 240)
    expect(page.locator("#live-inputs")).to_have_text("2", timeout=15_000)
    page.mouse.wheel(0, -240)
    expect(page.locator("#live-inputs")).to_have_text("3", timeout=15_000)
    _click_at(page, 200, 280)  # the text field
    expect(page.locator("#live-inputs")).to_have_text("4", timeout=15_000)
    page.fill("#live-text", "visible words")
    page.click("#live-text-form [type=submit]")
    expect(page.locator("#live-inputs")).to_have_text("5", timeout=15_000)
    page.fill("#live-text", SECRET)
    page.check("#live-secret")
    page.click("#live-text-form [type=submit]")
    expect(page.locator("#live-inputs")).to_have_text("6", timeout=15_000)
    page.locator("#live-frame").focus()
    page.keyboard.press("Tab")
    expect(page.locator("#live-inputs")).to_have_text("7", timeout=15_000)
    # A malformed input and a point outside the viewport are refused.
    bad = page.request.post(
        "/console/live/input",
        data=json.dumps({"events": [{"action": "pointer", "type": "click", "x": 5000, "y": 1}]}),
        headers={"Content-Type": "application/json", "X-CSRF-Token": _csrf(page)},
    )
    assert bad.status == 400
    no_token = page.request.post(
        "/console/live/input",
        data=json.dumps({"events": [{"action": "key", "key": "Enter"}]}),
        headers={"Content-Type": "application/json"},
    )
    assert no_token.status == 403

    with page.expect_navigation(timeout=120_000):
        page.click("#live-finish [type=submit]")
    assert "/console/evidence/" in page.url
    evidence_id = page.url.rstrip("/").rsplit("/", 1)[-1]

    package = _package(pages.server.url, world, evidence_id, tmp_path)
    trust = world.home.parent / "trust.json"
    proc = subprocess.run(
        [str(EV), "package", str(package), "--trust", str(trust)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with zipfile.ZipFile(package) as z:
        names = z.namelist()
        raw = z.read(next(n for n in names if n.endswith("capture-manifest.json")))
        manifest = json.loads(raw)
        everything = b"".join(z.read(n) for n in names)
        doms = [n for n in names if n.startswith("capture/") and n.endswith(".html")]
        dom = b"".join(z.read(n) for n in doms)
    actions = manifest["actions"]
    assert [a["action"] for a in actions] == [
        "pointer",
        "wheel",
        "wheel",
        "pointer",
        "text",
        "text",
        "key",
    ]
    # The page maps its scaled image back to viewport pixels (within a pixel).
    assert abs(actions[0]["x"] - 100) <= 1 and abs(actions[0]["y"] - 100) <= 1
    assert actions[0]["type"] == "click" and actions[0]["button"] == "left"
    assert actions[1]["dy"] == 240 and actions[2]["dy"] == -240
    assert actions[4]["text"] == "visible words" and actions[4]["secret"] is False
    assert actions[5]["text"] is None and actions[5]["secret"] is True
    assert actions[6]["key"] == "Tab"
    for i, a in enumerate(actions, 1):
        assert a["index"] == i and a["outcome"] == "ok", a
        start = datetime.fromisoformat(a["started_at"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(a["ended_at"].replace("Z", "+00:00"))
        assert start <= end
    assert all("screenshot" in a for a in actions if a["action"] in ("pointer", "key"))
    # The click at coordinates changed the DOM snapshot; so did the key.
    assert b"clicked-at-coordinates" in dom and b"tab-pressed" in dom
    assert SECRET.encode() not in everything and SECRET.encode() not in raw
    assert manifest["secrets"]["typed"] == 1
    assert any(a["name"] == "video" for a in manifest["artefacts"])
    # The session is over: a new one may start.
    page.goto("/console/live")
    expect(page.locator("#live-url")).to_be_visible()
    assert not run_axe(page)


def _csrf(page: Page) -> str:
    return str(page.get_attribute("#live", "data-csrf"))


def _package(server_url: str, world: World, evidence_id: str, tmp_path: Path) -> Path:
    """A notary certifies the deposit once sealed; its evidence package."""
    notary = {"Authorization": f"Bearer {world.tokens['notary-1']}"}
    deadline = time.monotonic() + 30
    while True:
        r = httpx.post(
            server_url + "/v1/certificates",
            json={"evidence_id": evidence_id},
            headers=notary,
            timeout=30,
        )
        if r.status_code == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.status_code == 201, r.text
    certificate_id = r.json()["certificate_id"]
    got = httpx.get(
        f"{server_url}/v1/certificates/{certificate_id}/package", headers=notary, timeout=60
    )
    assert got.status_code == 200, got.text
    out = tmp_path / "live-package.zip"
    out.write_bytes(got.content)
    with zipfile.ZipFile(io.BytesIO(got.content)) as z:
        assert z.testzip() is None
    return out


def test_abandon_and_a_closed_page_leave_nothing(pages: Pages, world: World, site: str) -> None:
    page = pages.new("zh")
    pages.login(page, world.tokens["bob"])
    time.sleep(2.5)
    size, blobs = _tree_size(pages.server.url), _blobs(world.home)
    assert blobs  # the world's deposits: the store is on disk
    _start(page, site)
    _click_at(page, 100, 100)
    expect(page.locator("#live-inputs")).to_have_text("1", timeout=15_000)
    with page.expect_navigation(timeout=60_000):
        page.click("#live-abandon [type=submit]")
    assert page.url.endswith("/console?abandoned=1")
    _nothing_left(pages, world, size, blobs)

    # Closing the page abandons the session after a grace period.
    _start(page, site)
    _click_at(page, 100, 100)
    expect(page.locator("#live-inputs")).to_have_text("1", timeout=15_000)
    context = page.context
    page.close()
    deadline = time.monotonic() + 40
    while True:
        html = context.request.get("/console/live").text()  # the page itself polls nothing
        if 'id="live-url"' in html or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert 'id="live-url"' in html
    _nothing_left(pages, world, size, blobs)


def test_one_session_per_rights_holder_and_only_theirs(
    pages: Pages, world: World, site: str
) -> None:
    page = pages.new("en")
    pages.login(page, world.tokens["alice"])
    _start(page, site)
    second = pages.new("en")
    pages.login(second, world.tokens["alice"])
    second.goto("/console")
    csrf = second.get_attribute("input[name=csrf]", "value")
    refused = second.request.post("/console/live", form={"url": site, "csrf": str(csrf)})
    assert refused.status == 409
    # Another rights holder has no session of theirs to reach.
    other = pages.new("en")
    pages.login(other, world.tokens["bob"])
    assert other.request.get("/console/live/state").status == 404
    assert other.request.get("/console/live/frame").status == 404
    # Other roles are refused.
    for name in ("notary-1", "admin-1", "auditor-1"):
        staff = pages.new("en")
        pages.login(staff, world.tokens[name])
        assert staff.request.get("/console/live").status == 403
        assert staff.request.get("/console/live/state").status == 403
    with page.expect_navigation(timeout=60_000):
        page.click("#live-abandon [type=submit]")


def test_a_session_held_by_one_server_is_driven_and_finished_from_another(
    pages: Pages, world: World, site: str, tmp_path: Path
) -> None:
    """Two ``serve`` processes on one home (as two workers or two hosts are):
    the session's browser runs on A; B serves its state and frames, takes
    its input and finishes it, through the database."""
    other = Server(world.home, tmp_path / "serve-b.log")
    try:
        page = pages.new("en")
        pages.login(page, world.tokens["alice"])
        _start(page, site)
        b = other.url
        state = page.request.get(f"{b}/console/live/state")
        assert state.status == 200
        held = page.request.get("/console/live/state").json()
        assert state.json()["session_id"] == held["session_id"]
        assert state.json()["status"] == "running"
        # Frames reach B once it asks for them, and they change.
        first = page.request.get(f"{b}/console/live/frame?after=0")
        for _ in range(10):
            if first.status == 200:
                break
            first = page.request.get(f"{b}/console/live/frame?after=0")
        assert first.status == 200 and first.headers["content-type"] == "image/jpeg"
        assert first.body()[:2] == b"\xff\xd8"
        seq = int(first.headers["x-frame-seq"])
        second = page.request.get(f"{b}/console/live/frame?after={seq}")
        assert second.status == 200 and int(second.headers["x-frame-seq"]) > seq
        assert second.body() != first.body()
        # Another session of the same rights holder is refused on B as on A.
        page.goto(f"{b}/console")
        csrf = str(page.get_attribute("input[name=csrf]", "value"))
        refused = page.request.post(f"{b}/console/live", form={"url": site, "csrf": csrf})
        assert refused.status == 409
        # Input sent to B is performed by A's browser.
        headers = {"Content-Type": "application/json", "X-CSRF-Token": csrf}
        click = {"action": "pointer", "type": "click", "x": 100, "y": 100}
        sent = page.request.post(
            f"{b}/console/live/input", data=json.dumps({"events": [click]}), headers=headers
        )
        assert sent.status == 200 and sent.json() == {"queued": 1}
        outside = {"action": "pointer", "type": "click", "x": 5000, "y": 1}
        bad = page.request.post(
            f"{b}/console/live/input", data=json.dumps({"events": [outside]}), headers=headers
        )
        assert bad.status == 400
        deadline = time.monotonic() + 20
        while page.request.get(f"{b}/console/live/state").json()["inputs"] < 1:
            assert time.monotonic() < deadline, "the input was not performed"
            time.sleep(0.2)
        # Finish on B: A deposits, B answers with the deposit.
        done = page.request.post(
            f"{b}/console/live/finish", form={"csrf": csrf}, max_redirects=0, timeout=120_000
        )
        assert done.status == 303, done.text()
        evidence_id = done.headers["location"].rstrip("/").rsplit("/", 1)[-1]
        package = _package(pages.server.url, world, evidence_id, tmp_path)
        with zipfile.ZipFile(package) as z:
            names = z.namelist()
            member = next(n for n in names if n.endswith("capture-manifest.json"))
            manifest = json.loads(z.read(member))
            dom = b"".join(
                z.read(n) for n in names if n.startswith("capture/") and n.endswith(".html")
            )
        assert [a["action"] for a in manifest["actions"]] == ["pointer"]
        assert b"clicked-at-coordinates" in dom
        # The session is over on both.
        assert page.request.get(f"{b}/console/live/state").status == 404
        assert page.request.get("/console/live/state").status == 404
    finally:
        other.stop()
