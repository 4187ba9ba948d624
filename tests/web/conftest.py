"""Fixtures of the web console tests: one populated ledger and one real server per
session, one chromium per session, a fresh browser context per test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from .web_support import CHROMIUM, CHROMIUM_ARGS, Pages, Server, World, build_world


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


@pytest.fixture(scope="module")
def playwright(server: Server) -> Iterator[Playwright]:
    # Playwright's sync API keeps an event loop running on this thread while
    # it is open: start it after the world is built (PDF signing runs its own
    # loop) and stop it with each module, so later tests can run theirs.
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
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
