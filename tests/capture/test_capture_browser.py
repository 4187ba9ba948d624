"""Captures in the real Chromium of real local HTTP and HTTPS sites.

One capture per site (module fixtures) is checked from every side: the WACZ
validates with ``wacz validate``; every resource is in the WARC with its
server address and verified digests; the index is the reference indexer's;
the screenshots show the page (pixels); the DOM carries the script's change;
the TLS chain is recorded; every digest in the manifest, the receipt and the
log matches the files.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from capture_support import BLUE, GREEN, RED, Pki, Site, decode_png, make_pki, pixel, serve
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from warcio.archiveiterator import ArchiveIterator

from ledger.capture import CaptureFailed, CaptureOptions
from ledger.capture.service import CaptureResult, capture_evidence
from ledger.core import Ledger
from ledger.services import OPERATOR, Services
from verifier.capture import MANIFEST_FILE_NAME, CaptureManifest

PAGE_RESOURCES = [
    "/",
    "/page.html",
    "/static/style.css",
    "/static/app.js",
    "/img/red.png",
    "/img/moved.png",
    "/img/blue.png",
]


@dataclass
class Run:
    ledger: Ledger
    site: Site
    result: CaptureResult
    out: Path

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(self.result.manifest.data)

    def file(self, name: str) -> bytes:
        (a,) = [a for a in self.result.manifest.artefacts if a.name == name]
        return (self.out / a.path).read_bytes()


def capture_ledger(home: Path, pki: Pki | None, **capture: Any) -> Ledger:
    """A new ledger whose capture settings allow loopback and trust the test CA."""
    led = Ledger.init(home, "capture.test/log")
    settings = {"allow": ("127.0.0.0/8",), "ca_file": str(pki.ca_pem) if pki else None}
    settings.update(capture)
    led.config = replace(led.config, capture=replace(led.config.capture, **settings))
    return led


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _run(base: Path, pki: Pki, tls: bool) -> Iterator[Run]:
    with serve(pki if tls else None) as site:
        led = capture_ledger(base / "home", pki)
        try:
            result = capture_evidence(led, site.base + "/", title="测试页面", out_dir=base / "out")
            yield Run(led, site, result, base / "out")
        finally:
            led.close()


@pytest.fixture(scope="module")
def http_run(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Run]:
    yield from _run(tmp_path_factory.mktemp("http"), pki, tls=False)


@pytest.fixture(scope="module")
def https_run(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Run]:
    yield from _run(tmp_path_factory.mktemp("https"), pki, tls=True)


@pytest.fixture(params=["http", "https"])
def run(request: pytest.FixtureRequest) -> Run:
    return request.getfixturevalue(f"{request.param}_run")  # type: ignore[no-any-return]


def warc_records(wacz: Path, tmp: Path) -> list[Any]:
    import zipfile

    with zipfile.ZipFile(wacz) as z:
        data = z.read("archive/data.warc.gz")
    path = tmp / "data.warc.gz"
    path.write_bytes(data)
    out = []
    with path.open("rb") as f:
        for rec in ArchiveIterator(f, check_digests=True):
            rec.content_stream().read()
            out.append(rec)
    return out


# -- the WACZ and the WARC ---------------------------------------------------------


def test_wacz_validates_with_wacz_validate(run: Run) -> None:
    wacz = run.out / "capture.wacz"
    proc = subprocess.run(
        [sys.executable, "-m", "wacz", "validate", "-f", str(wacz)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation succeeded" in proc.stdout


def test_every_resource_is_in_the_warc_with_server_address(run: Run, tmp_path: Path) -> None:
    records = warc_records(run.out / "capture.wacz", tmp_path)
    assert records[0].rec_type == "warcinfo"
    responses = {
        r.rec_headers.get_header("WARC-Target-URI"): r
        for r in records[1:]
        if r.rec_type == "response"
    }
    requests = [r for r in records if r.rec_type == "request"]
    assert sorted(responses) == sorted(run.site.base + p for p in PAGE_RESOURCES)
    # One request per response, bound to it; the server was hit exactly once per resource.
    assert len(requests) == len(responses)
    ids = {r.rec_headers.get_header("WARC-Record-ID") for r in responses.values()}
    assert {r.rec_headers.get_header("WARC-Concurrent-To") for r in requests} == ids
    assert sorted(run.site.hits) == sorted(PAGE_RESOURCES)
    for url, rec in responses.items():
        assert rec.rec_headers.get_header("WARC-IP-Address") == "127.0.0.1", url
        assert rec.rec_headers.get_header("WARC-Payload-Digest").startswith("sha256:")
        assert rec.rec_headers.protocol == "WARC/1.1"
    assert responses[run.site.base + "/"].http_headers.get_statuscode() == "302"
    assert (
        responses[run.site.base + "/img/moved.png"].http_headers.get_header("Location")
        == "/img/blue.png"
    )


def test_warc_digests_check_with_warcio(run: Run, tmp_path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(run.out / "capture.wacz") as z:
        (tmp_path / "data.warc.gz").write_bytes(z.read("archive/data.warc.gz"))
    proc = subprocess.run(
        [sys.executable, "-m", "warcio.cli", "check", "-v", str(tmp_path / "data.warc.gz")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("digest pass") >= 2 * len(PAGE_RESOURCES)
    assert "fail" not in proc.stdout


def test_index_matches_the_reference_cdxj_indexer(run: Run, tmp_path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(run.out / "capture.wacz") as z:
        ours = z.read("indexes/index.cdx").decode().splitlines()
        (tmp_path / "data.warc.gz").write_bytes(z.read("archive/data.warc.gz"))
        pages = z.read("pages/pages.jsonl").decode().splitlines()
        package = json.loads(z.read("datapackage.json"))
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    proc = subprocess.run(
        [sys.executable, "-m", "cdxj_indexer.main", "data.warc.gz"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    )
    theirs = sorted(line for line in proc.stdout.splitlines() if line)
    assert len(ours) == len(theirs) == len(PAGE_RESOURCES)
    for a, b in zip(ours, theirs, strict=True):
        key_a, ts_a, json_a = a.split(" ", 2)
        key_b, ts_b, json_b = b.split(" ", 2)
        assert (key_a, ts_a) == (key_b, ts_b)
        fa, fb = json.loads(json_a), json.loads(json_b)
        for field in ("url", "status", "digest", "length", "offset", "mime"):
            assert fa.get(field) == fb.get(field), (field, fa, fb)
    assert json.loads(pages[0])["format"] == "json-pages-1.0"
    page = json.loads(pages[1])
    assert page["url"] == run.site.base + "/page.html" and page["title"] == "Capture test page"
    assert package["wacz_version"] == "1.1.1"
    assert {r["path"] for r in package["resources"]} == {
        "archive/data.warc.gz",
        "indexes/index.cdx",
        "pages/pages.jsonl",
    }


# -- what the browser saw ------------------------------------------------------------


def test_screenshots_show_the_page(run: Run) -> None:
    w, h, rows = decode_png(run.file("screenshot_viewport"))
    assert (w, h) == (1280, 800)
    # CSS layout: 40 px heading, the red image, the blue one (through a 301), a green band.
    assert pixel(rows, 100, 90) == RED
    assert pixel(rows, 100, 190) == BLUE
    assert pixel(rows, 250, 270) == GREEN
    assert pixel(rows, 900, 400) == (250, 250, 250)  # the stylesheet's background
    fw, fh, full = decode_png(run.file("screenshot_full"))
    assert fw == 1280 and fh > 1600  # the whole tall page, not the viewport
    assert pixel(full, 100, 90) == RED
    # The heading text (dark pixels) was rendered in the first 40 rows.
    assert any(sum(pixel(rows, x, 20)) < 200 for x in range(0, 300))


def test_dom_carries_the_scripts_change(run: Run) -> None:
    dom = run.file("dom").decode("utf-8")
    assert '<h1 id="status">changed-by-script</h1>' in dom
    assert '<p id="added">added after load</p>' in dom
    assert run.manifest["page_title"] == "Capture test page"


def test_pdf_print(run: Run) -> None:
    pdf = run.file("pdf")
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/Type /Page" in pdf or b"/Type/Page" in pdf


def test_redirects_final_url_and_status(run: Run) -> None:
    m = run.manifest
    assert m["requested_url"] == run.site.base + "/"
    assert m["final_url"] == run.site.base + "/page.html"
    assert m["redirects"] == [{"url": run.site.base + "/", "status": 302, "location": "/page.html"}]
    assert m["http_status"] == 200 and m["status"] == "complete" and m["limit_reached"] is None
    main = m["main_document"]
    assert (main["server_ip"], main["status"]) == ("127.0.0.1", 200)
    assert main["server_port"] == int(run.site.base.rsplit(":", 1)[1])
    assert m["requests"]["refused"] == [] and m["requests"]["failed"] == []
    assert m["requests"]["sent"] == m["requests"]["responses_recorded"] == len(PAGE_RESOURCES)


def test_environment_checks_are_recorded(run: Run) -> None:
    m = run.manifest
    env = m["environment"]
    assert env["fresh_profile"]["user_data_dir_empty_before_launch"] is True
    assert env["proxy"]["used"] is False
    assert env["resolved_addresses"] == {"127.0.0.1": ["127.0.0.1"]}
    assert isinstance(env["clock"]["kernel_synchronized"], bool)
    assert m["browser"]["product"] == "Chrome/" + m["browser"]["version_from_executable"]
    assert m["browser"]["executable"] == "/usr/bin/chromium"
    assert "--host-resolver-rules=MAP * ~NOTFOUND" in m["browser"]["flags"]
    assert m["platform"]["playwright"] != "unknown"
    assert m["settings"]["allowed_networks"] == ["127.0.0.0/8"]
    assert m["started_at"] < m["ended_at"]


# -- digests ------------------------------------------------------------------------


def test_every_digest_matches(run: Run) -> None:
    r = run.result
    raw = (run.out / MANIFEST_FILE_NAME).read_bytes()
    assert raw == r.manifest.raw
    # The receipt and the log's private body commit to the manifest.
    assert r.receipt.sha256 == hashlib.sha256(raw).hexdigest()
    assert r.receipt.sm3 == hashlib.new("sm3", raw).hexdigest()
    assert r.receipt.size == len(raw)
    row = Services(run.ledger).evidence.get(OPERATOR, r.receipt.evidence_id)
    assert (row.kind, row.sha256, row.file_name) == (
        "capture",
        r.receipt.sha256,
        MANIFEST_FILE_NAME,
    )
    assert row.title == "测试页面"
    _, _, private = run.ledger.store.privates(r.receipt.index, r.receipt.index + 1)[0]
    extra = json.loads(private)["extra"]
    assert extra["capture_id"] == r.capture_id and extra["capture_status"] == "complete"
    # The manifest commits to every artefact; each is in the blob store too.
    names = [a.name for a in r.manifest.artefacts]
    expected = ["wacz", "screenshot_viewport", "screenshot_full", "dom", "pdf"]
    assert names == expected + (["tls_chain"] if run.site.base.startswith("https") else [])
    for a in r.manifest.artefacts:
        data = (run.out / a.path).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (a.size, a.sha256)
        assert hashlib.new("sm3", data).hexdigest() == a.sm3
        with run.ledger.blobs.open(a.sha256) as f:
            assert f.read() == data
    with run.ledger.blobs.open(r.receipt.sha256) as f:
        assert CaptureManifest.from_json(f.read()).capture_id == r.capture_id


# -- TLS ----------------------------------------------------------------------------


def test_tls_chain_is_recorded(https_run: Run, pki: Pki) -> None:
    pem = https_run.file("tls_chain")
    chain = x509.load_pem_x509_certificates(pem)
    assert [c.fingerprint(hashes.SHA256()) for c in chain] == [
        pki.leaf_cert.fingerprint(hashes.SHA256()),
        pki.ca_cert.fingerprint(hashes.SHA256()),
    ]
    tls = https_run.manifest["main_document"]["tls"]
    assert tls["protocol"] in ("TLSv1.2", "TLSv1.3") and tls["cipher"]
    assert tls["chain_verified"] is True and tls["leaf_valid_at_capture"] is True
    leaf, root = tls["certificates"]
    assert leaf["subject"] == "CN=capture-test-site" and leaf["issuer"] == "CN=Capture Test Root CA"
    assert root["sha256_fingerprint"] == pki.ca_cert.fingerprint(hashes.SHA256()).hex()
    assert leaf["not_before"] <= https_run.manifest["started_at"] <= leaf["not_after"]


def test_http_capture_has_no_tls(http_run: Run) -> None:
    assert http_run.manifest["main_document"]["tls"] is None
    assert "tls_chain" not in [a.name for a in http_run.result.manifest.artefacts]


def test_untrusted_certificate_is_a_tls_error_with_no_evidence(tmp_path: Path, pki: Pki) -> None:
    other = make_pki(tmp_path / "other", cn="Unknown CA")
    with serve(other) as site:
        led = capture_ledger(tmp_path / "home", pki)  # trusts the test CA, not "Unknown CA"
        try:
            before = led.store.size()
            with pytest.raises(CaptureFailed) as e:
                capture_evidence(led, site.base + "/page.html")
            assert e.value.status == "tls_error"
            assert "CERTIFICATE_VERIFY_FAILED" in str(e.value)
            assert led.store.size() == before
            assert not _blobs(led)
        finally:
            led.close()


def _blobs(led: Ledger) -> list[Path]:
    root = led.config.blob_dir
    return list(root.glob("??/*")) if root.exists() else []


def test_gzip_page_is_recorded_encoded_and_rendered_decoded(tmp_path: Path, pki: Pki) -> None:
    with serve() as site:
        led = capture_ledger(tmp_path / "home", pki)
        try:
            r = capture_evidence(
                led,
                site.base + "/gzip.html",
                CaptureOptions(full_page=False),
                out_dir=tmp_path / "o",
            )
        finally:
            led.close()
    dom = (tmp_path / "o" / "dom.html").read_text()
    assert '<p id="gz">compressed page</p>' in dom
    (rec,) = [
        x
        for x in warc_records(tmp_path / "o" / "capture.wacz", tmp_path)
        if x.rec_type == "response"
    ]
    assert rec.http_headers.get_header("Content-Encoding") == "gzip"
    assert rec.raw_stream is not None
    assert [a.name for a in r.manifest.artefacts] == ["wacz", "screenshot_viewport", "dom", "pdf"]


def test_each_capture_starts_from_an_empty_profile(tmp_path: Path, pki: Pki) -> None:
    """Captures on one thread share the Playwright driver, never browser state:
    a cookie set during one capture reaches that capture's sub-resources, and
    not the next capture."""
    from ledger.capture.driver import thread_driver

    with serve() as site:
        led = capture_ledger(tmp_path / "home", pki)
        try:
            opts = CaptureOptions(full_page=False)
            first = capture_evidence(led, site.base + "/cookie.html", opts)
            driver = thread_driver()
            second = capture_evidence(led, site.base + "/cookie.html", opts)
            assert thread_driver() is driver
        finally:
            led.close()
    assert site.cookies == [
        ("/cookie.html", ""),
        ("/img/red.png", "session=s1"),
        ("/cookie.html", ""),
        ("/img/red.png", "session=s1"),
    ]
    for r in (first, second):
        profile = r.manifest.data["environment"]["fresh_profile"]
        assert profile["user_data_dir_empty_before_launch"] is True
    assert first.manifest.data["browser"]["product"] == second.manifest.data["browser"]["product"]


def test_a_cookie_set_by_a_script_is_sent_as_utf8(tmp_path: Path, pki: Pki) -> None:
    with serve() as site:
        led = capture_ledger(tmp_path / "home", pki)
        try:
            r = capture_evidence(
                led, site.base + "/js-cookie.html", CaptureOptions(full_page=False)
            )
        finally:
            led.close()
    sent = dict(site.cookies)["/img/red.png"]
    assert sent.encode("latin-1").decode("utf-8") == "who=张三"  # http.server reads latin-1
    assert r.manifest.data["requests"]["failed"] == []
