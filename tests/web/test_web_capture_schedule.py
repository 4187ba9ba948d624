"""The console's capture form schedules captures: several addresses, a start time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from .web_support import Pages, World


def test_console_schedules_several_pages_at_a_local_time(pages: Pages, world: World) -> None:
    page = pages.new("en", timezone_id="Asia/Shanghai")
    pages.login(page, world.tokens["bob"])
    start = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    local = start.astimezone(ZoneInfo("Asia/Shanghai"))
    page.fill("#capture-url", pages.server.url + "/log")
    page.fill("#capture-more", f"{pages.server.url}/checkpoint\n\n{pages.server.url}/verify\n")
    page.fill("#capture-title", "scheduled batch")
    page.fill("#capture-start", local.strftime("%Y-%m-%dT%H:%M"))
    page.click("form[action='/console/captures'] [type=submit]")
    expect(page.locator("h1")).to_have_text("Scheduled captures")
    items = page.locator("ul.capture-jobs li")
    expect(items).to_have_count(3)
    # The browser's local time (UTC+8) became the same instant in UTC.
    expect(items.first).to_contain_text(start.strftime("%Y-%m-%dT%H:%M"))
    items.nth(1).locator("a").click()
    expect(page.locator(".capture-state")).to_have_attribute("data-status", "scheduled")
    expect(page.locator("dd code")).to_have_text(pages.server.url + "/checkpoint")


def test_console_schedules_one_page_and_refuses_a_past_time(pages: Pages, world: World) -> None:
    page = pages.new("zh")
    pages.login(page, world.tokens["bob"])
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    page.fill("#capture-url", pages.server.url + "/log")
    page.fill("#capture-start", start.strftime("%Y-%m-%dT%H:%M:%S"))
    page.evaluate("document.getElementById('capture-tz').remove()")  # as without script: UTC
    page.click("form[action='/console/captures'] [type=submit]")
    expect(page.locator(".capture-state")).to_have_attribute("data-status", "scheduled")
    expect(page.locator(".capture-state")).to_contain_text(start.strftime("%Y-%m-%dT%H:%M:%S"))

    page.goto("/console")
    page.fill("#capture-url", pages.server.url + "/log")
    page.fill("#capture-start", "2020-01-01T09:00")
    with page.expect_response(lambda r: r.url.endswith("/console/captures")) as answer:
        page.click("form[action='/console/captures'] [type=submit]")
    assert answer.value.status == 400
    expect(page.locator("main")).to_contain_text("start_at is in the past")
