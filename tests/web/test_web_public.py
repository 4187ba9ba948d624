"""Public pages in a real browser: both languages, verification, the log, the docs."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from verifier.digest import digest_file

from .web_support import Pages, World, run_axe

PUBLIC = ["/", "/login", "/verify", "/log", "/docs", "/logout", "/no-such-page"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_landing_in_the_negotiated_language(pages: Pages, lang: str) -> None:
    page = pages.new(lang)
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN" if lang == "zh" else "en")
    heading = "多年之后，证据依然可证" if lang == "zh" else "Evidence you can prove, years later"
    expect(page.locator("h1")).to_have_text(heading)
    expect(
        page.get_by_role(
            "link",
            name="核验存证证书或证据包" if lang == "zh" else "Verify a certificate or package",
        )
    ).to_be_visible()


def test_language_switch_is_remembered(pages: Pages) -> None:
    page = pages.new("zh")
    page.goto("/")
    page.click("a[hreflang=en]")
    expect(page.locator("h1")).to_have_text("Evidence you can prove, years later")
    page.goto("/verify")  # no ?lang= any more: the cookie decides
    expect(page.locator("h1")).to_have_text("Online verification")
    page.click("a[hreflang=zh-CN]")
    expect(page.locator("h1")).to_have_text("在线验真")


def test_dates_and_numbers_follow_the_locale(pages: Pages, world: World) -> None:
    zh = pages.new("zh")
    zh.goto("/log")
    published = zh.locator("dt:has-text('发布时间') + dd").inner_text()
    assert re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}:\d{2} \(UTC\+8\)", published)
    en = pages.new("en")
    en.goto("/log")
    published_en = en.locator("dt:has-text('Published') + dd").inner_text()
    assert re.fullmatch(r"\d{1,2} \w{3} \d{4}, \d{2}:\d{2}:\d{2} \(UTC\)", published_en)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_no_page_requests_another_origin(pages: Pages, lang: str) -> None:
    page = pages.new(lang)
    for path in PUBLIC:
        page.goto(path)
        page.wait_for_load_state("networkidle")
    page.goto("/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    own = pages.server.url + "/"
    foreign = [u for u in pages.requests if not (u.startswith(own) or u.startswith("data:"))]
    assert pages.requests and not foreign
    # The policy forbids inline scripts and other origins; nothing tried either.
    assert not [e for e in pages.console_errors if "Content Security Policy" in e]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_axe_finds_no_serious_violation(pages: Pages, lang: str) -> None:
    page = pages.new(lang)
    for path in ["/", "/login", "/verify", "/log?old=1&new=2", "/no-such-page", "/logout"]:
        page.goto(path)
        violations = run_axe(page)
        assert not violations, (path, [(v["id"], v["help"], len(v["nodes"])) for v in violations])


def test_docs_render_offline(pages: Pages) -> None:
    page = pages.new("en")
    page.goto("/docs")
    expect(page.locator(".opblock-summary-path", has_text="/v1/evidence").first).to_be_visible(
        timeout=30_000
    )


def test_error_page_in_the_user_language(pages: Pages) -> None:
    page = pages.new("zh")
    response = page.goto("/no-such-page")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("未找到")
    expect(page.locator("pre.json")).to_contain_text('"status": 404')
    api = httpx.get(pages.server.url + "/v1/no-such", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"


# -- 在线验真 ------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_verify_a_valid_package(pages: Pages, world: World, lang: str) -> None:
    page = pages.new(lang)
    page.goto("/verify")
    page.set_input_files("#package", str(world.files["package"]))
    page.click("#by-package ~ form [type=submit], form[action='/verify'] [type=submit]")
    verdict = "结论：有效" if lang == "zh" else "Verdict: valid"
    expect(page.locator("#verdict")).to_have_text(verdict)
    checks = page.locator("ol.checks > li")
    assert checks.count() >= 10
    expect(checks.first.locator(".status")).to_have_text("通过" if lang == "zh" else "Passed")
    # The downloadable report is the API's report for the same package.
    with page.expect_download() as dl:
        page.click("a[download='verification-report.json']")
    downloaded = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    with world.files["package"].open("rb") as f:
        api = httpx.post(
            pages.server.url + f"/v1/verify?lang={lang}", files={"package": f}, timeout=30
        )
    assert api.status_code == 200, api.text
    expected = api.json()
    assert downloaded.pop("subject") == "package.zip"
    expected.pop("subject")  # the API names its temporary file
    assert downloaded == expected
    with page.expect_download() as dl:
        page.click("a[download='verification-report.txt']")
    text = Path(dl.value.path()).read_text(encoding="utf-8")
    assert text.rstrip().endswith("结论：有效" if lang == "zh" else "VALID")


def test_verify_a_tampered_package(pages: Pages, world: World) -> None:
    page = pages.new("zh")
    page.goto("/verify")
    page.set_input_files("#package", str(world.files["tampered"]))
    page.click("form[action='/verify'] [type=submit]")
    expect(page.locator("#verdict")).to_have_text("结论：无效")
    failed = page.locator("ol.checks > li.failed")
    assert failed.count() >= 1
    expect(failed.first.locator(".status")).to_have_text("未通过")


def test_verify_a_certificate_with_its_file(pages: Pages, world: World, tmp_path) -> None:
    cert = httpx.get(
        pages.server.url + f"/v1/certificates/{world.certificates['contract']}",
        headers={"Authorization": f"Bearer {world.tokens['alice']}"},
    )
    assert cert.status_code == 200
    path = tmp_path / "certificate.json"
    path.write_bytes(cert.content)
    page = pages.new("en")
    page.goto("/verify")
    page.set_input_files("#certificate", str(path))
    page.set_input_files("#evidence", str(world.files["contract"]))
    page.click("form[action='/verify'] [type=submit]")
    expect(page.locator("#verdict")).to_have_text("Verdict: valid")
    # The other file is not the one certified.
    page.set_input_files("#certificate", str(path))
    page.set_input_files("#evidence", str(world.files["photo"]))
    page.click("form[action='/verify'] [type=submit]")
    expect(page.locator("#verdict")).to_have_text("Verdict: not valid")


def test_verify_without_a_file_is_a_page_not_a_crash(pages: Pages) -> None:
    page = pages.new("zh")
    page.goto("/verify")
    page.click("form[action='/verify'] [type=submit]")
    expect(page.locator("h1")).to_have_text("请求无法处理")
    expect(page.locator("code.detail")).to_contain_text("verify:")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_deposit_check_hashes_in_the_browser(pages: Pages, world: World, lang: str) -> None:
    page = pages.new(lang)
    page.goto("/verify")
    deposit_no = world.evidence["contract"]["deposit_no"]
    page.fill("#deposit_no", deposit_no)
    page.set_input_files("#check-file", str(world.files["contract"]))
    digests = digest_file(world.files["contract"])
    expect(page.locator("#check-sha256")).to_have_value(digests.sha256)
    expect(page.locator("#check-sm3")).to_have_value(digests.sm3 or "")
    # The file itself never left the browser: only the form with the digests was posted.
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.post_data or "") if r.method == "POST" else None)
    page.click("#deposit-check [type=submit]")
    expect(page.locator("#check-answer")).to_have_text(
        "核验通过：文件与存证内容一致" if lang == "zh" else "Verified: the file matches the deposit"
    )
    assert posted and all("contract v1" not in p for p in posted)
    assert f"sha256={digests.sha256}" in posted[0]

    page.fill("#deposit_no", deposit_no)
    page.set_input_files("#check-file", str(world.files["photo"]))
    expect(page.locator("#check-sha256")).to_have_value(digest_file(world.files["photo"]).sha256)
    page.click("#deposit-check [type=submit]")
    expect(page.locator("#check-answer")).to_contain_text(
        "比对不一致" if lang == "zh" else "Mismatch"
    )

    page.fill("#deposit_no", "EL-20200101-0000999999")
    page.fill("#check-sha256", hashlib.sha256(b"x").hexdigest())
    page.click("#deposit-check [type=submit]")
    expect(page.locator("#check-answer")).to_contain_text(
        "尚未存证" if lang == "zh" else "Not deposited"
    )


def test_consistency_check_on_the_log_page(pages: Pages) -> None:
    page = pages.new("en")
    page.goto("/log")
    size = int(page.locator("#tree-size").inner_text().replace(",", ""))
    sizes = [
        int(o.get_attribute("value") or "") for o in page.locator("#published-sizes option").all()
    ]
    assert size in sizes and len(sizes) >= 3
    page.fill("#old", str(sorted(sizes)[1]))
    page.fill("#new", str(size))
    page.click("form[action='/log'] [type=submit]")
    expect(page.locator("#consistency-result h3")).to_contain_text("Consistent")
    page.fill("#old", str(size + 5))
    page.fill("#new", str(size + 9))
    page.click("form[action='/log'] [type=submit]")
    expect(page.locator("#consistency-result")).to_contain_text("No consistency proof")
