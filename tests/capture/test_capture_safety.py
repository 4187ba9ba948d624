"""Safety of captures: SSRF refusals, failures that leave no evidence, limits.

The sub-resource refusals run in the real browser: a page on an allowed host
loads images and a script from refused ranges and through a redirect to a
private address; each is blocked, listed in the manifest, never reaches any
server, and the capture still completes. Failures of the main document end
before a browser starts and leave nothing in the log or the blob store.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from capture_support import RED, Pki, decode_png, free_port, make_pki, pixel, serve
from test_capture_browser import capture_ledger

from ledger.capture import CaptureFailed, CaptureOptions
from ledger.capture.service import capture_evidence
from ledger.core import Ledger


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _nothing_stored(led: Ledger, size_before: int) -> None:
    assert led.store.size() == size_before
    root = led.config.blob_dir
    assert not (list(root.glob("??/*")) if root.exists() else [])
    assert not list((led.config.home / "captures" / "work").iterdir())


# -- SSRF ---------------------------------------------------------------------------


def test_refused_subresources_are_blocked_and_listed(tmp_path: Path, pki: Pki) -> None:
    with serve() as site:
        port = site.base.rsplit(":", 1)[1]
        site.extra["/ssrf.html"] = (
            200,
            {"Content-Type": "text/html"},
            (
                "<!doctype html><body style='margin:0'>"
                '<img id="ok" src="/img/red.png" width=200 height=100>'
                '<img src="http://10.255.255.1/internal.png" width=200 height=100>'
                '<img src="http://169.254.169.254/latest/meta-data/" width=10 height=10>'
                f'<img src="http://[::1]:{port}/img/red.png" width=10 height=10>'
                f'<img src="http://rebind.test:{port}/img/red.png" width=10 height=10>'
                '<img src="/to-private" width=10 height=10>'
                f'<script src="http://[::ffff:10.0.0.9]:{port}/static/app.js"></script>'
                "</body>"
            ).encode(),
        )
        # rebind.test resolves (through the capture's own resolver) to a private address.
        resolver = {"rebind.test": ["10.1.2.3"]}
        led = capture_ledger(tmp_path / "home", pki)
        try:
            r = capture_evidence(
                led,
                site.base + "/ssrf.html",
                CaptureOptions(full_page=False),
                resolver=lambda host, port: resolver[host],
                out_dir=tmp_path / "out",
            )
        finally:
            led.close()
    m = r.manifest.data
    refused = {e["url"]: e["reason"] for e in m["requests"]["refused"]}
    assert set(refused) == {
        "http://10.255.255.1/internal.png",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::1]:{port}/img/red.png",
        f"http://rebind.test:{port}/img/red.png",
        site.base + "/to-private",
        f"http://[::ffff:a00:9]:{port}/static/app.js",
    }
    assert "(private)" in refused["http://10.255.255.1/internal.png"]
    assert "(link-local)" in refused["http://169.254.169.254/latest/meta-data/"]
    assert "(loopback)" in refused[f"http://[::1]:{port}/img/red.png"]
    assert "rebind.test resolves to 10.1.2.3" in refused[f"http://rebind.test:{port}/img/red.png"]
    assert "10.0.0.1" in refused[site.base + "/to-private"]  # refused at the redirect hop
    assert "embedded in" in refused[f"http://[::ffff:a00:9]:{port}/static/app.js"]
    # Only the allowed requests reached the (only) server; the redirect hop is recorded.
    assert sorted(site.hits) == ["/img/red.png", "/ssrf.html", "/to-private"]
    assert m["status"] == "complete" and m["requests"]["failed"] == []
    assert m["environment"]["resolved_addresses"] == {"127.0.0.1": ["127.0.0.1"]}
    _, _, rows = decode_png((tmp_path / "out" / "screenshot-viewport.png").read_bytes())
    assert pixel(rows, 100, 50) == RED  # the allowed image rendered
    assert pixel(rows, 300, 50) != RED  # the refused one did not


def test_default_config_refuses_loopback(tmp_path: Path) -> None:
    with serve() as site:
        led = Ledger.init(tmp_path / "home", "capture.test/log")  # default capture settings
        try:
            before = led.store.size()
            start = time.monotonic()
            for url in ("http://127.0.0.1/", site.base + "/page.html", "http://localhost:1/"):
                with pytest.raises(CaptureFailed) as e:
                    capture_evidence(led, url)
                assert e.value.status == "refused"
                assert "not a public address (loopback)" in str(e.value)
            assert time.monotonic() - start < 10  # refused before any browser starts
            assert site.hits == []
            _nothing_stored(led, before)
        finally:
            led.close()


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/x",
        "javascript:alert(1)",
        "data:text/html,<p>x</p>",
        "chrome://settings",
        "http://user:pw@example.com/",
        "http:///nohost",
    ],
)
def test_non_http_urls_are_refused(tmp_path: Path, url: str) -> None:
    led = Ledger.init(tmp_path / "home", "capture.test/log")
    try:
        with pytest.raises(CaptureFailed) as e:
            capture_evidence(led, url)
        assert e.value.status == "refused"
        _nothing_stored(led, led.store.size())
    finally:
        led.close()


# -- failures: clear status, no evidence --------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/missing", "http_error", "answered 404 Not Found"),
        ("/download", "download", "attachment"),
        ("/octets", "download", "application/octet-stream"),
        ("/loop", "too_many_redirects", "more than 10 redirects"),
        ("/to-private", "refused", "10.0.0.1 is not a public address (private)"),
    ],
)
def test_main_document_failures_leave_no_evidence(
    tmp_path: Path, pki: Pki, path: str, status: str, text: str
) -> None:
    with serve() as site:
        led = capture_ledger(tmp_path / "home", pki)
        try:
            before = led.store.size()
            with pytest.raises(CaptureFailed) as e:
                capture_evidence(led, site.base + path)
            assert (e.value.status, text in str(e.value)) == (status, True), str(e.value)
            assert str(e.value).startswith(f"capture: {status}: ")
            _nothing_stored(led, before)
        finally:
            led.close()


def test_page_that_never_loads(tmp_path: Path, pki: Pki) -> None:
    led = capture_ledger(tmp_path / "home", pki)
    try:
        before = led.store.size()
        with pytest.raises(CaptureFailed) as e:  # nothing listens there
            capture_evidence(led, f"http://127.0.0.1:{free_port()}/")
        assert e.value.status == "unreachable"
        with serve() as site:  # accepts, never answers
            start = time.monotonic()
            with pytest.raises(CaptureFailed) as e:
                capture_evidence(led, site.base + "/hang", CaptureOptions(timeout=2))
            assert e.value.status == "timeout" and "never loaded" in str(e.value)
            assert time.monotonic() - start < 8
        # A name that does not resolve (the capture's resolver knows nothing).
        with pytest.raises(CaptureFailed) as e:
            capture_evidence(led, "http://nowhere.invalid/", resolver=_no_names)
        assert e.value.status == "unreachable" and "does not resolve" in str(e.value)
        _nothing_stored(led, before)
    finally:
        led.close()


def _no_names(host: str, port: int) -> list[str]:
    raise LookupError(f"{host}: no such name")


# -- limits -------------------------------------------------------------------------


def test_request_limit_ends_the_capture_without_evidence(tmp_path: Path, pki: Pki) -> None:
    with serve() as site:
        led = capture_ledger(tmp_path / "home", pki, max_requests=5)
        try:
            before = led.store.size()
            with pytest.raises(CaptureFailed) as e:
                capture_evidence(led, site.base + "/many.html")
            assert (e.value.status, e.value.limit) == ("limit_exceeded", "requests")
            assert "more than 5 requests" in str(e.value)
            assert "partial" in str(e.value)
            _nothing_stored(led, before)
        finally:
            led.close()
        assert len(site.hits) <= 5


def test_byte_limit_with_partial_results_deposits_what_was_captured(
    tmp_path: Path, pki: Pki
) -> None:
    with serve() as site:
        led = capture_ledger(tmp_path / "home", pki, max_bytes=1024 * 1024)
        try:
            with pytest.raises(CaptureFailed) as e:
                capture_evidence(led, site.base + "/big.html")
            assert (e.value.status, e.value.limit) == ("limit_exceeded", "bytes")
            r = capture_evidence(led, site.base + "/big.html", CaptureOptions(partial=True))
        finally:
            led.close()
    m = r.manifest.data
    assert (m["status"], m["limit_reached"]) == ("partial", "bytes")
    assert r.to_json()["capture_status"] == "partial"
    assert m["requests"]["bytes_received"] > 1024 * 1024
    assert m["settings"]["limits"]["max_bytes"] == 1024 * 1024
    assert m["settings"]["options"]["partial"] is True


def test_time_limit_with_partial_results(tmp_path: Path, pki: Pki) -> None:
    with serve() as site:
        led = capture_ledger(tmp_path / "home", pki)
        try:
            start = time.monotonic()
            r = capture_evidence(
                led,
                site.base + "/hang-img.html",
                CaptureOptions(timeout=3, partial=True, full_page=False),
                out_dir=tmp_path / "out",
            )
            assert time.monotonic() - start < 20
        finally:
            led.close()
    m = r.manifest.data
    assert (m["status"], m["limit_reached"]) == ("partial", "time")
    assert m["settings"]["limits"]["max_seconds"] == 3
    assert (tmp_path / "out" / "screenshot-viewport.png").exists()


def test_operator_time_limit_caps_the_rights_holders_timeout(tmp_path: Path, pki: Pki) -> None:
    with serve() as site:
        led = capture_ledger(tmp_path / "home", pki, max_seconds=2)
        try:
            start = time.monotonic()
            with pytest.raises(CaptureFailed) as e:
                capture_evidence(led, site.base + "/hang", CaptureOptions(timeout=60))
            assert e.value.status == "timeout"
            assert time.monotonic() - start < 8
        finally:
            led.close()


def test_allow_list_argument_is_per_capture(tmp_path: Path) -> None:
    with serve() as site:
        led = Ledger.init(tmp_path / "home", "capture.test/log")
        led.config = replace(led.config, capture=replace(led.config.capture, max_seconds=5))
        try:
            with pytest.raises(CaptureFailed) as e:
                capture_evidence(led, site.base + "/missing", allow=["127.0.0.1/32"])
            assert e.value.status == "http_error"  # reached: loopback allowed for this capture
            with pytest.raises(CaptureFailed) as e:
                capture_evidence(led, site.base + "/missing")
            assert e.value.status == "refused"  # not remembered
        finally:
            led.close()


def test_missing_browser_is_a_clear_status(tmp_path: Path) -> None:
    with serve() as site:
        led = capture_ledger(tmp_path / "home", None, chromium=str(tmp_path / "no-chromium"))
        try:
            before = led.store.size()
            with pytest.raises(CaptureFailed) as e:
                capture_evidence(led, site.base + "/page.html")
            assert e.value.status == "browser_error"
            assert "install Debian's chromium package" in str(e.value)
            _nothing_stored(led, before)
        finally:
            led.close()
        assert site.hits == []  # nothing fetched before the browser is known to exist


def test_work_directories_of_crashed_captures_are_swept(tmp_path: Path) -> None:
    import os

    led = Ledger.init(tmp_path / "home", "capture.test/log")
    try:
        root = led.config.home / "captures" / "work"
        old, fresh = root / "crashed-capture", root / "running-capture"
        for d in (old, fresh):
            (d / "profile").mkdir(parents=True)
        os.utime(old, (time.time() - 7 * 3600,) * 2)
        with pytest.raises(CaptureFailed):
            capture_evidence(led, "http://127.0.0.1/")
        assert not old.exists() and fresh.exists()
    finally:
        led.close()
