"""Fixtures of the web console tests: one populated ledger and one real server per
session, one chromium per session, a fresh browser context per test."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from web_support import (
    ARTIFACTS,
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    Server,
    World,
    build_world,
)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("web")
    return build_world(root / "home")


@pytest.fixture(scope="session")
def server(world: World) -> Iterator[Server]:
    srv = Server(world.home, world.home.parent / "serve.log")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


class Pages:
    """Opens browser contexts against the server and screenshots them on failure."""

    def __init__(self, browser: Browser, server: Server) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[BrowserContext] = []
        self.requests: list[str] = []
        self.console_errors: list[str] = []

    def new(self, lang: str = "zh", **options: Any) -> Page:
        """A page in a fresh context whose browser prefers ``lang``."""
        ctx = self.browser.new_context(
            base_url=self.server.url,
            locale="zh-CN" if lang == "zh" else "en-US",
            extra_http_headers={
                "Accept-Language": "zh-CN,zh;q=0.9" if lang == "zh" else "en-US,en;q=0.9"
            },
            accept_downloads=True,
            **options,
        )
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        page.on("request", lambda r: self.requests.append(r.url))
        page.on(
            "console",
            lambda m: self.console_errors.append(m.text) if m.type == "error" else None,
        )
        return page

    def login(self, page: Page, token: str, next_path: str | None = None) -> None:
        """Log in through the form, as a user would."""
        page.goto("/login" + (f"?next={next_path}" if next_path else ""))
        page.fill("input[name=token]", token)
        page.click("[type=submit] >> nth=-1")
        page.wait_for_load_state()

    def screenshot_all(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        for i, ctx in enumerate(self.contexts):
            for j, page in enumerate(ctx.pages):
                safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
                page.screenshot(path=str(ARTIFACTS / f"{safe}-{i}-{j}.png"), full_page=True)

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


@pytest.fixture
def pages(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[Pages]:
    p = Pages(browser, server)
    try:
        yield p
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            with contextlib.suppress(Exception):  # a closed page: nothing to show
                p.screenshot_all(request.node.nodeid)
        p.close()


def run_axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the current page.

    The script is evaluated through the debugging protocol, which the page's
    Content-Security-Policy does not govern (the pages allow no inline script).
    """
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
