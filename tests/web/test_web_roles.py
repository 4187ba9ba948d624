"""Each role's main path end to end in a real browser, in both languages."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ledger.core import Ledger
from ledger.services.sessions import session_digest
from verifier.digest import digest_file

from .web_support import Pages, World, run_axe


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_rights_holder_deposits_files_and_a_digest(
    pages: Pages, world: World, lang: str, tmp_path
) -> None:
    page = pages.new(lang)
    pages.login(page, world.tokens["alice"])
    assert page.url.endswith("/console")
    files = []
    for i in range(3):
        path = tmp_path / f"upload-{lang}-{i}.txt"
        path.write_bytes(f"web upload {lang} {i}\n".encode() * (i * 5000 + 1))
        files.append(path)
    page.fill("#upload-title", f"uploaded {lang}")
    page.set_input_files("#files", [str(p) for p in files])
    page.click("#upload-form [type=submit]")
    done = page.locator("#uploads .upload.done")
    expect(done).to_have_count(3, timeout=30_000)
    shown = set(page.locator("#uploads code.hash").all_inner_texts())
    for path in files:
        d = digest_file(path)
        assert d.sha256 in shown and d.sm3 in shown
    expect(page.locator("#uploads a").first).to_have_text(
        __import__("re").compile(r"EL-\d{8}-\d{10}")
    )

    # Hash-only: the digests are computed in the page, the file is not sent.
    secret = tmp_path / f"secret-{lang}.bin"
    secret.write_bytes(f"trade secret {lang} ".encode() * 10000)
    page.set_input_files("#hash-file", str(secret))
    expect(page.locator("#hash-sha256")).to_have_value(
        hashlib.sha256(secret.read_bytes()).hexdigest()
    )
    posted: list[bytes] = []
    page.on(
        "request",
        lambda r: posted.append(r.post_data_buffer or b"") if r.method == "POST" else None,
    )
    page.fill("#hash-title", "digest only")
    page.click("#hash-form [type=submit]")
    expect(page.locator("h1")).to_have_text("已存证" if lang == "zh" else "Deposited")
    expect(page.locator(".receipt code.hash").first).to_have_text(digest_file(secret).sha256)
    assert posted and all(b"trade secret" not in p for p in posted)

    # The list finds them by title, by digest and by deposit number.
    page.goto("/console?q=" + f"uploaded {lang}")
    expect(page.locator("#evidence-list tbody tr")).to_have_count(3)
    page.goto("/console?q=" + digest_file(secret).sha256)
    expect(page.locator("#evidence-list tbody tr")).to_have_count(1)
    number = page.locator("#evidence-list code").first.inner_text()
    page.goto("/console?q=" + number.lower())
    expect(page.locator("#evidence-list tbody tr")).to_have_count(1)
    expect(page.locator("#evidence-list code")).to_have_text(number)
    page.goto("/console?kind=hash")
    assert page.locator("#evidence-list tbody tr").count() >= 2
    assert not run_axe(page)


def test_evidence_page_timeline_and_downloads(pages: Pages, world: World) -> None:
    page = pages.new("en")
    pages.login(page, world.tokens["alice"])
    page.goto(f"/console/evidence/{world.evidence['contract']['evidence_id']}")
    expect(page.locator("[data-step=durable].done")).to_be_visible()
    expect(page.locator("[data-step=sealed].done")).to_be_visible()
    with page.expect_download() as dl:
        page.click("text=Download the inclusion proof")
    proof = Path(dl.value.path()).read_text(encoding="utf-8")
    assert proof.startswith("c2sp.org/tlog-proof@v1\n")
    with page.expect_download() as dl:
        page.click("text=Download the file")
    assert Path(dl.value.path()).read_bytes() == world.files["contract"].read_bytes()
    with page.expect_download() as dl:
        page.click("a:has-text('evidence package')")
    with zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes())) as z:
        assert "certificate.json" in z.namelist()
    assert not run_axe(page)


def test_rights_holder_captures_a_page(pages: Pages, world: World) -> None:
    page = pages.new("zh")
    pages.login(page, world.tokens["alice"])
    page.fill("#capture-url", pages.server.url + "/log")
    page.fill("#capture-title", "log page")
    page.click("form[action='/console/captures'] [type=submit]")
    expect(page.locator("h1")).to_have_text("网页取证")
    # The page refreshes itself until the job ends.
    expect(page.locator(".capture-state")).to_have_attribute(
        "data-status", "complete", timeout=90_000
    )
    expect(page.locator("img.shot")).to_be_visible()
    assert page.evaluate("document.querySelector('img.shot').naturalWidth") > 100
    page.click("text=查看存证")
    expect(page.locator("#artefacts")).to_be_visible()

    page.goto("/console")
    page.fill("#capture-url", "http://10.1.2.3/private")
    page.click("form[action='/console/captures'] [type=submit]")
    expect(page.locator("#capture-status")).to_have_text("取证失败", timeout=60_000)
    expect(page.locator(".capture-detail")).not_to_be_empty()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_notary_issues_and_revokes(pages: Pages, world: World, lang: str) -> None:
    page = pages.new(lang)
    pages.login(page, world.tokens["notary-1"])
    assert page.url.endswith("/notary")
    page.goto(f"/notary/evidence/{world.evidence['hash']['evidence_id']}")
    page.fill("#issue-statement", f"reviewed {lang}")
    page.click("#issue-form [type=submit]")
    notice = page.locator("#issued-notice a")
    expect(notice).to_be_visible()
    cid = notice.inner_text()
    assert not run_axe(page)
    page.goto("/notary")
    expect(page.locator(f"#issued-list a[href='/c/{cid}']")).to_be_visible()

    public = pages.new(lang)
    public.goto(f"/c/{cid}")
    expect(public.locator("#cert-status")).to_contain_text("有效" if lang == "zh" else "Valid")
    body = public.locator("main").inner_text()
    assert "hash only" not in body and world.evidence["hash"]["sha256"] not in body
    assert world.evidence["hash"]["deposit_no"] in body

    page.goto(f"/notary/evidence/{world.evidence['hash']['evidence_id']}")
    page.locator(".revoke-form input[name=reason]").last.fill(f"issued in error {lang}")
    page.locator(".revoke-form [type=submit]").last.click()
    expect(page.locator("#cert-status")).to_contain_text("已撤销" if lang == "zh" else "Revoked")
    public.goto(f"/c/{cid}")
    expect(public.locator("#revoked-reason")).to_have_text(f"issued in error {lang}")
    expect(public.locator("#revoked-index")).to_contain_text("序号" if lang == "zh" else "index")
    assert not run_axe(public)


def test_admin_creates_and_revokes_an_account(pages: Pages, world: World) -> None:
    admin = pages.new("en")
    pages.login(admin, world.tokens["admin-1"])
    assert admin.url.endswith("/admin")
    assert not run_axe(admin)
    admin.select_option("#new-role", "rights_holder")
    admin.fill("#new-name", "carol")
    admin.click("#create-account [type=submit]")
    token = admin.locator("#new-token").inner_text()
    assert token.startswith("elt_")
    assert token not in admin.url

    carol = pages.new("zh")
    pages.login(carol, token)
    assert carol.url.endswith("/console")
    expect(carol.locator(".who")).to_have_text("carol")

    admin.goto("/admin")
    admin.locator("tr[data-account=carol] [type=submit]").click()
    expect(admin.locator("tr[data-account=carol] .badge")).to_have_text("revoked")
    carol.goto("/console")
    assert "/login" in carol.url  # the revoked account's session ended
    pages.login(carol, token)
    expect(carol.locator("#login-error")).to_be_visible()


def test_expired_session_returns_to_login_and_back(pages: Pages, world: World) -> None:
    page = pages.new("zh")
    pages.login(page, world.tokens["bob"])
    cookie = next(c for c in page.context.cookies() if c["name"] == "el_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    with Ledger.open(world.home) as ledger:  # an hour passes without a request
        ledger.store.execute(
            "update sessions set seen = seen - 3600 where id_sha256 = ?",
            (session_digest(cookie["value"]),),
        )
    page.goto("/console?kind=file")
    assert "/login?next=/console" in page.url
    expect(page.locator(".notice")).to_be_visible()
    page.fill("input[name=token]", world.tokens["bob"])
    page.click("main [type=submit]")
    assert page.url.endswith("/console?kind=file")


def test_cross_role_pages_are_refused(pages: Pages, world: World) -> None:
    page = pages.new("en")
    pages.login(page, world.tokens["alice"])
    for path in ["/notary", "/admin"]:
        response = page.goto(path)
        assert response is not None and response.status == 403
        expect(page.locator("h1")).to_have_text("Not allowed")
    # Another rights holder's evidence does not exist for alice.
    other = pages.new("en")
    pages.login(other, world.tokens["bob"])
    response = other.goto(f"/console/evidence/{world.evidence['contract']['evidence_id']}")
    assert response is not None and response.status == 404
    other.goto("/console?q=" + world.evidence["contract"]["deposit_no"])
    expect(other.locator("#evidence-list")).to_have_count(0)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_certificate_request_rejected_then_issued(pages: Pages, world: World, lang: str) -> None:
    evidence_id = world.evidence["photo"]["evidence_id"]
    holder = pages.new(lang)
    pages.login(holder, world.tokens["alice"])
    holder.goto(f"/console/evidence/{evidence_id}")
    holder.fill("#statement", f"for the court {lang}")
    holder.click("form[action$='/request-certificate'] [type=submit]")
    expect(holder.locator("#requests li[data-status=requested]")).to_have_count(1)
    expect(holder.locator("form[action$='/request-certificate']")).to_have_count(0)

    notary = pages.new(lang)
    pages.login(notary, world.tokens["notary-1"])
    row = notary.locator("#request-queue tr", has_text=f"for the court {lang}")
    expect(row).to_have_count(1)
    row.locator("input[name=reason]").fill(f"the file is illegible {lang}")
    row.locator("[type=submit]").click()
    expect(notary.locator("#request-queue tr", has_text=f"for the court {lang}")).to_have_count(0)

    holder.reload()
    rejected = holder.locator("#requests li[data-status=rejected]")
    expect(rejected.last.locator(".reason")).to_have_text(f"the file is illegible {lang}")
    holder.fill("#statement", f"second try {lang}")
    holder.click("form[action$='/request-certificate'] [type=submit]")

    notary.goto("/notary")
    notary.locator("#request-queue tr", has_text=f"second try {lang}").locator("a.review").click()
    expect(notary.locator("#reviewing")).to_contain_text(f"second try {lang}")
    assert not run_axe(notary)
    notary.click("#issue-form [type=submit]")
    cid = notary.locator("#issued-notice a").inner_text()

    holder.reload()
    issued = holder.locator(f"#requests li[data-status=issued]:has(a[href='/c/{cid}'])")
    expect(issued).to_have_count(1)
    assert not run_axe(holder)
