"""Drive Debian's Chromium (through Playwright) to capture one page.

Isolation: each capture launches its own browser process with a new, empty
profile directory (checked empty before launch, deleted afterwards), no
extensions, service workers blocked, and *no network of its own*: Chromium
runs in its own network namespace as an unprivileged user with its sandbox
on (:mod:`ledger.capture.jail`), and is also started with a proxy on a closed
loopback port (no bypass, not even for loopback), a host resolver that
resolves nothing, WebRTC restricted to proxied connections and no network
prediction, so any request that escaped interception (a preconnect, a
WebSocket, a STUN packet) fails. Every request the
page makes is intercepted (``BrowserContext.route``) and fetched by
:class:`~ledger.capture.fetch.Fetcher`, which checks it against the SSRF
policy, counts it against the limits and records it in the WARC; the browser
renders exactly the bytes that were recorded.

Procedure of :func:`capture_page`:

(1) check the requested URL (scheme, host, addresses) before anything runs;
(2) fetch the main document, following and recording redirects: failures
    end here without launching a browser (unreachable, timeout, TLS error,
    HTTP error status, a download instead of a page);
(3) launch Chromium, jailed, in a fresh profile and navigate to the final
    URL, the main document served from step (2), everything else through
    the fetcher;
(4) wait (load, network idle or a delay); a limit reached ends the capture,
    as partial if the rights holder asked for partial results;
(5) for a process capture, run the steps (:mod:`ledger.capture.process`),
    then, for a recording with a duration, keep recording that long; the
    video (:mod:`ledger.capture.recording`) runs from before the navigation
    in (3) to the end of this step;
(6) take the artefacts: viewport and full-page screenshots, DOM, PDF
    (elements that received a secret masked);
(7) close the browser, then write the TLS chain and the WACZ.

Exchanges that carry a text typed as a secret (:mod:`ledger.capture.secrets`)
are written to a WARC of their own, kept out of the public package.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from playwright.async_api import BrowserContext, Page, Playwright, Route, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from ledger.capture.driver import Driver
from ledger.capture.env import chromium_version
from ledger.capture.errors import CaptureFailed
from ledger.capture.fetch import Budget, Exchange, Fetched, Fetcher, FetchError, LimitReached
from ledger.capture.guard import AddressPolicy, Refused, Resolver, navigation_key
from ledger.capture.jail import Jail, browser_dir, open_jail
from ledger.capture.live import LiveSession, run_live
from ledger.capture.options import CaptureOptions
from ledger.capture.process import StepContext, run_steps
from ledger.capture.recording import ScreenRecorder, Video
from ledger.capture.secrets import Secrets
from ledger.capture.wacz import WaczPage, write_wacz
from ledger.capture.warc import WarcRecorder, warc_date
from ledger.config import CaptureConfig
from ledger.errors import InvalidInput
from ledger.offload import in_thread

__all__ = ["BROWSER_FLAGS", "RECORDING_FLAGS", "PageCapture", "capture_page"]

BROWSER_FLAGS = (
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    "--no-pings",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
)
"""Chromium flags: headless, no background traffic, and no network of its own
(a proxy on the closed discard port, no bypass, every name unresolvable,
WebRTC only through the proxy: no UDP, no host candidates). Chromium's
sandbox is on unless the operator chose the unjailed mode as root
(Playwright then adds ``--no-sandbox``)."""

PREFERENCES = {"net": {"network_prediction_options": 2}}
"""Written into the new profile before launch: no DNS prefetching or
preconnecting (2 = never)."""

RECORDING_FLAGS = ("--autoplay-policy=no-user-gesture-required", "--mute-audio")
"""Added when the session is recorded: media plays by itself, muted."""
SECRET_WARC = "secret-records.warc.gz"  # noqa: S105 - a file name

ACCEPT_LANGUAGE = "zh-CN,zh;q=0.9,en;q=0.8"
NAVIGATION_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8"
)
_RENDERABLE = {
    "text/html",
    "application/xhtml+xml",
    "text/plain",
    "text/xml",
    "application/xml",
    "application/json",
}
ARTEFACT_TIMEOUT_MS = 30_000
MASK_COLOR = "#3c3c3c"
MAX_LISTED = 200


@dataclass
class PageCapture:
    """What one browser run produced (files in ``workdir``) and what it saw."""

    requested_url: str
    started: datetime
    preflight: Fetched
    interactive: dict[str, Any] | None = None
    """An interactive capture's bounds and inputs (the manifest's ``interactive``)."""
    jail: Jail | None = None
    status: str = "complete"
    limit: str | None = None
    final_url: str = ""
    page_title: str = ""
    ended: datetime | None = None
    files: dict[str, tuple[Path, str]] = field(default_factory=dict)
    """Artefact name -> (file, media type), in the order they were made."""
    browser: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    refused: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    aborted: int = 0
    requests: int = 0
    responses: int = 0
    bytes: int = 0
    resolved: dict[str, list[str]] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    secrets: Secrets = field(default_factory=lambda: Secrets(()))
    actions: list[dict[str, Any]] = field(default_factory=list)
    """The action log of a process capture, one entry per step run."""
    failed_step: int | None = None
    video: Video | None = None
    private: set[str] = field(default_factory=set)
    """Artefacts kept out of the public package (they hold secrets)."""
    withheld: list[dict[str, Any]] = field(default_factory=list)
    """Exchanges written to the secret WARC instead of the public one."""

    @property
    def main(self) -> Exchange:
        return self.preflight.final


def user_agent(version: str, note: str | None) -> str:
    """A desktop Chrome user agent for this Chromium (reduced form: major.0.0.0)."""
    major = version.split(".", 1)[0]
    ua = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Safari/537.36"
    )
    return f"{ua} ({note})" if note else ua


def _download_reason(ex: Exchange) -> str | None:
    disposition = (ex.header("content-disposition") or "").split(";", 1)[0].strip().lower()
    if disposition == "attachment":
        return "the server sent it as an attachment (Content-Disposition), a download"
    mime = (ex.header("content-type") or "").split(";", 1)[0].strip().lower()
    if mime and mime not in _RENDERABLE and not mime.startswith("image/"):
        return f"the server sent {mime}, a download rather than a page"
    return None


def _listed(items: list[dict[str, str]], entry: dict[str, str]) -> None:
    if len(items) < MAX_LISTED:
        items.append(entry)


class _Session:
    """Per-capture state shared by the route handler and the procedure."""

    def __init__(self, pc: PageCapture, fetcher: Fetcher, budget: Budget, ua: str) -> None:
        self.pc = pc
        self.ua = ua
        self.fetcher = fetcher
        self.budget = budget
        self.pending: Fetched | None = pc.preflight
        """A main document fetched ahead of its navigation, served when the browser asks."""
        self.closing = False
        self.limit_hit = asyncio.Event()
        self.context: BrowserContext | None = None
        self.page: Page | None = None
        self.navigating = 0
        self.follow: asyncio.Task[Any] | None = None
        self.blocked: list[dict[str, str]] = []

    def _main_navigation(self, route: Route) -> bool:
        req = route.request
        return (
            self.page is not None
            and req.is_navigation_request()
            and (req.frame == self.page.main_frame)
        )

    async def on_route(self, route: Route) -> None:
        main = self._main_navigation(route)
        if main:
            self.navigating += 1
        try:
            await self._handle(route, main)
        finally:
            if main:
                self.navigating -= 1

    async def _handle(self, route: Route, main_frame: bool) -> None:
        req = route.request
        url = req.url
        try:
            if self.closing or self.budget.reached is not None:
                self.pc.aborted += 1
                await route.abort("blockedbyclient")
                return
            pending = self.pending
            if (
                pending is not None
                and req.is_navigation_request()
                and navigation_key(url) == navigation_key(pending.final.url)
            ):
                self.pending = None
                final = pending.final
                await route.fulfill(
                    status=final.status, headers=pending.browser_headers(), body=pending.body
                )
                return
            headers = list((await req.all_headers()).items())
            if self.context is not None and not any(k.lower() == "cookie" for k, _ in headers):
                cookies = await self.context.cookies([url])
                if cookies:
                    headers.append(
                        ("Cookie", "; ".join(f"{c['name']}={c['value']}" for c in cookies))
                    )
            got = await self.fetcher.fetch(url, req.method, headers, req.post_data_buffer or b"")
        except Refused as e:
            reason = str(e).removeprefix("capture: ")
            _listed(self.pc.refused, {"url": url[:2000], "reason": reason})
            if main_frame:
                # Cancelled rather than blocked: the browser stays on the page it
                # shows instead of committing an error page.
                self.blocked.append({"url": url[:2000], "reason": reason})
                await _abort(route, "aborted")
                return
            await _abort(route, "blockedbyclient")
            return
        except LimitReached:
            self.pc.aborted += 1
            self.limit_hit.set()
            await _abort(route, "blockedbyclient")
            return
        except FetchError as e:
            _listed(self.pc.failed, {"url": url[:2000], "status": e.status, "error": str(e)[:500]})
            await _abort(route, "timedout" if e.status == "timeout" else "failed")
            return
        except PlaywrightError:
            return  # the page or browser went away meanwhile
        except Exception as e:  # a request must never stay unanswered
            _listed(self.pc.failed, {"url": url[:2000], "status": "error", "error": _first(e)})
            await _abort(route, "failed")
            return
        if main_frame and len(got.hops) > 1 and self.page is not None:
            # Chromium would show the final page under the URL it asked for (and
            # would not intercept a redirect handed to it): navigate to the final
            # URL instead, its document served from what was just fetched.
            self.pending = got
            await _abort(route, "aborted")
            self.follow = asyncio.ensure_future(self._follow(self.page, got.final.url))
            return
        try:
            await route.fulfill(
                status=got.final.status, headers=got.browser_headers(), body=got.body
            )
        except PlaywrightError:
            return

    async def _follow(self, page: Page, url: str) -> None:
        with contextlib.suppress(PlaywrightError):
            timeout = max(1.0, self.budget.remaining()) * 1000
            await page.goto(url, wait_until="load", timeout=timeout)

    async def navigations(self) -> None:
        """Wait until no main-frame navigation is being fetched or followed."""
        while True:
            while self.navigating > 0 and self.budget.reached is None and not self.closing:
                await asyncio.sleep(0.05)
            follow, self.follow = self.follow, None
            if follow is None:
                return
            await follow


async def _abort(route: Route, code: str) -> None:
    with contextlib.suppress(PlaywrightError):
        await route.abort(code)


def _fail_fetch(e: Exception) -> CaptureFailed:
    """The failure status of a main-document fetch error."""
    if isinstance(e, Refused):
        return CaptureFailed("refused", str(e))
    if isinstance(e, LimitReached) and e.kind == "time":
        return CaptureFailed("timeout", "the page never loaded within the time limit", limit="time")
    if isinstance(e, LimitReached):
        return CaptureFailed("limit_exceeded", str(e), limit=e.kind)
    if isinstance(e, FetchError):
        return CaptureFailed(e.status, f"the page never loaded: {e}")
    raise e


def _ssl_context(cfg: CaptureConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if cfg.ca_file:
        try:
            ctx.load_verify_locations(cafile=cfg.ca_file)
        except (OSError, ssl.SSLError) as e:
            raise InvalidInput(f"capture: cannot load CA file {cfg.ca_file!r} ({e})") from e
    return ctx


async def capture_page(
    url: str,
    options: CaptureOptions,
    cfg: CaptureConfig,
    workdir: Path,
    *,
    resolver: Resolver | None = None,
    extra_allow: Sequence[str] = (),
    driver: Driver | None = None,
    live: LiveSession | None = None,
) -> PageCapture:
    """Capture ``url`` into ``workdir``; raise :class:`CaptureFailed` when there is
    no evidence to deposit. See the module docstring for the procedure.

    ``driver``: a Playwright driver to reuse (its loop must be the running
    one); without it, one is started for this capture. ``live``: an
    interactive capture, whose inputs arrive from that session
    (:mod:`ledger.capture.live`) in place of scripted steps.
    """
    policy = AddressPolicy((*cfg.allow, *extra_allow), resolver)
    try:
        policy.check_url(url)  # (1)
    except Refused as e:
        raise CaptureFailed("refused", str(e)) from e
    jail = await in_thread(open_jail, cfg)  # refused at once when it cannot be isolated
    version = chromium_version(cfg.chromium)
    ua = user_agent(version, options.user_agent_note)
    options.check_limits(cfg)
    seconds = min(options.timeout, cfg.max_seconds)
    # Loading has its limit; steps and a recording's duration come on top of it.
    total = seconds + (options.steps_seconds() if options.steps else 0) + options.duration
    if live is not None:
        if not options.video:
            raise CaptureFailed("browser_error", "an interactive capture records a video")
        total += live.max_seconds
    budget = Budget(cfg.max_bytes, cfg.max_requests, total)
    secrets = Secrets(options.secrets)
    started = datetime.now(UTC)
    recorder = WarcRecorder(
        workdir / "data.warc.gz",
        {
            "software": "evidence-ledger capture (Chromium via Playwright; platform fetcher)",
            "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
            "isPartOf": url[:2000],
            "http-header-user-agent": ua,
        },
    )
    withheld: list[dict[str, Any]] = []
    secret_warc: list[WarcRecorder] = []

    def record(ex: Exchange) -> None:
        if not secrets.carried_by(ex):
            recorder.record(ex)
            return
        if not secret_warc:
            secret_warc.append(
                WarcRecorder(
                    workdir / SECRET_WARC,
                    {
                        "software": "evidence-ledger capture",
                        "format": "WARC File Format 1.1",
                        "description": "exchanges carrying a text typed as a secret",
                        "isPartOf": secrets.redact(url[:2000]),
                    },
                )
            )
        secret_warc[0].record(ex)
        withheld.append(
            {
                "url": secrets.redact(ex.url)[:2000],
                "method": ex.method,
                "status": ex.status,
                "time": warc_date(ex.time),
            }
        )

    fetcher = Fetcher(policy, budget, record, _ssl_context(cfg))
    try:
        nav_headers = [
            ("User-Agent", ua),
            ("Accept", NAVIGATION_ACCEPT),
            ("Accept-Language", ACCEPT_LANGUAGE),
            ("Upgrade-Insecure-Requests", "1"),
        ]
        try:
            pre = await fetcher.fetch(url, "GET", nav_headers)  # (2)
        except (Refused, LimitReached, FetchError) as e:
            raise _fail_fetch(e) from e
        final = pre.final
        if not 200 <= final.status < 300:
            raise CaptureFailed(
                "http_error",
                f"{final.url} answered {final.status} {final.reason}".rstrip()
                + " (no page to capture)",
            )
        why = _download_reason(final)
        if why is not None:
            raise CaptureFailed("download", f"{final.url}: {why}")
        pc = PageCapture(
            requested_url=url, started=started, preflight=pre, jail=jail, secrets=secrets
        )
        pc.limits = {
            "max_bytes": budget.max_bytes,
            "max_requests": budget.max_requests,
            "max_seconds": int(seconds),
        }
        if options.video or options.steps or live is not None:
            pc.limits |= {
                "max_total_seconds": int(total),
                "max_video_bytes": cfg.max_video_bytes,
                "max_steps": cfg.max_steps,
            }
        await _run_browser(  # (3)-(5)
            pc, fetcher, budget, options, cfg, version, ua, workdir, driver, live
        )
        pc.requests, pc.bytes, pc.responses = budget.requests, budget.bytes, len(recorder.entries)
        pc.resolved = dict(fetcher.resolved)
        pc.withheld = withheld
    finally:
        await fetcher.aclose()
        recorder.close()
        for w in secret_warc:
            w.close()
    _write_tls_chain(pc, workdir)  # (7)
    wacz = workdir / "capture.wacz"
    page_id = f"page-{started.strftime('%Y%m%d%H%M%S%f')}"
    final_url, title = secrets.redact(pc.final_url), secrets.redact(pc.page_title)
    write_wacz(
        wacz,
        recorder.path,
        recorder.cdxj("data.warc.gz"),
        WaczPage(page_id, final_url, warc_date(final.time), title or final_url),
        created=started,
        software="evidence-ledger capture",
        title=title or final_url,
    )
    pc.files = {"wacz": (wacz, "application/wacz"), **pc.files}
    if secret_warc:
        pc.files["warc_secret"] = (secret_warc[0].path, "application/warc")
        pc.private.add("warc_secret")
    return pc


async def _run_browser(
    pc: PageCapture,
    fetcher: Fetcher,
    budget: Budget,
    options: CaptureOptions,
    cfg: CaptureConfig,
    version: str,
    ua: str,
    workdir: Path,
    driver: Driver | None,
    live: LiveSession | None = None,
) -> None:
    jail = pc.jail
    assert jail is not None
    with browser_dir(jail) as root:
        profile, home = root / "profile", root / "home"
        pc.profile = {
            "user_data_dir_empty_before_launch": not any(profile.iterdir()),
            "user_data_dir_removed_after": True,
            "preferences_written_before_launch": PREFERENCES,
            "extensions": "none (--disable-extensions)",
            "service_workers": "blocked",
            "cache_and_cookies": "new empty profile, no state from earlier captures",
        }
        _write_preferences(profile, jail)
        executable = jail.launcher(cfg.chromium, workdir / "chromium-jail.sh")
        session = _Session(pc, fetcher, budget, ua)
        flags = [*BROWSER_FLAGS, *(RECORDING_FLAGS if options.video else ())]
        async with _playwright(driver) as pw:
            try:
                context = await pw.chromium.launch_persistent_context(
                    str(profile),
                    executable_path=executable,
                    headless=True,
                    args=flags,
                    env=jail.env(home),
                    chromium_sandbox=jail.sandbox,
                    viewport={"width": options.viewport_width, "height": options.viewport_height},
                    user_agent=ua,
                    locale="zh-CN",
                    service_workers="block",
                    accept_downloads=False,
                    timeout=30_000,
                )
            except PlaywrightError as e:
                raise CaptureFailed("browser_error", f"Chromium did not start: {_first(e)}") from e
            session.context = context
            try:
                await _drive(pc, session, context, budget, options, cfg, workdir, live)
                cdp_page = context.pages[0]
                cdp = await context.new_cdp_session(cdp_page)
                info = await cdp.send("Browser.getVersion")
                pc.browser = {
                    "product": str(info.get("product", "")),
                    "revision": str(info.get("revision", "")),
                    "user_agent": ua,
                    "executable": cfg.chromium,
                    "version_from_executable": version,
                    "flags": flags if jail.sandbox else [*flags, "--no-sandbox"],
                    "isolation": jail.facts(),
                    "automation": (
                        "Playwright (driver reused by one worker's captures; "
                        "a new browser process and empty profile for every capture)"
                    ),
                    "viewport": {
                        "width": options.viewport_width,
                        "height": options.viewport_height,
                    },
                }
            finally:
                session.closing = True
                await context.close()
    pc.ended = datetime.now(UTC)


def _write_preferences(profile: Path, jail: Jail) -> None:
    default = profile / "Default"
    default.mkdir(mode=0o700)
    prefs = default / "Preferences"
    prefs.write_text(json.dumps(PREFERENCES), "utf-8")
    if jail.mode == "namespace":
        os.chown(default, jail.uid, jail.gid)
        os.chown(prefs, jail.uid, jail.gid)


async def _drive(
    pc: PageCapture,
    session: _Session,
    context: BrowserContext,
    budget: Budget,
    options: CaptureOptions,
    cfg: CaptureConfig,
    workdir: Path,
    live: LiveSession | None = None,
) -> None:
    await context.route("**/*", session.on_route)
    page = context.pages[0] if context.pages else await context.new_page()
    session.page = page
    page.on(
        "websocket",
        lambda ws: _listed(
            pc.refused, {"url": ws.url[:2000], "reason": "WebSocket connections are not captured"}
        ),
    )
    recorder: ScreenRecorder | None = None
    stop = asyncio.Event()
    secret_selectors: list[str] = []
    try:
        if options.video:
            recorder = ScreenRecorder(
                workdir, cfg, options.viewport_width, options.viewport_height, pc.secrets
            )
            if live is not None:
                recorder.on_frame = live.put_frame
            await recorder.start(context, page)
            rec = recorder
            page.on(
                "framenavigated",
                lambda frame: rec.show(url=frame.url) if frame == page.main_frame else None,
            )
        await _load(pc, session, page, budget, options, recorder)  # (3)-(4)
        limits = [session.limit_hit, *([recorder.limit_hit] if recorder else [])]
        watch = asyncio.ensure_future(_first_of(limits, stop))
        try:
            if (options.steps or live is not None) and budget.reached is None:  # (5)
                ctx = StepContext(
                    pc=pc,
                    page=page,
                    options=options,
                    workdir=workdir,
                    recorder=recorder,
                    preflight=lambda url: _preflight(session, url),
                    navigations=session.navigations,
                    secret_selectors=secret_selectors,
                    blocked=session.blocked,
                    stop=stop,
                )
                if live is not None:
                    await run_live(ctx, live)
                    pc.interactive = {
                        "max_seconds": int(live.max_seconds),
                        "idle_seconds": int(live.idle_seconds),
                        "inputs": len(pc.actions),
                        "ended_by": "finish",
                    }
                else:
                    await run_steps(ctx)
            if options.duration and budget.reached is None and pc.failed_step is None:
                if recorder is not None:
                    recorder.show(step=f"recording {options.duration} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), options.duration)
            await session.navigations()
        finally:
            watch.cancel()
        if recorder is not None:
            rec, recorder = recorder, None
            pc.video = await rec.stop()
            pc.files["video"] = (pc.video.path, pc.video.media_type)
            if pc.video.truncated:
                budget.reach(
                    "video_bytes",
                    f"capture: the video reached {cfg.max_video_bytes} bytes (video size limit)",
                )
    finally:
        if recorder is not None:
            await recorder.abort()
    if budget.reached is not None:  # (4)
        if not options.partial:
            raise CaptureFailed(
                "limit_exceeded",
                f"{budget.reached} (ask for partial results to keep what was captured)",
                limit=budget.reached.kind,
            )
        pc.status, pc.limit = "partial", budget.reached.kind
    await _artefacts(pc, page, options, workdir, secret_selectors)  # (6)


async def _first_of(events: list[asyncio.Event], stop: asyncio.Event) -> None:
    """Set ``stop`` when the first of ``events`` is set (a limit was reached)."""
    tasks = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
    finally:
        for t in tasks:
            t.cancel()


async def _preflight(session: _Session, url: str) -> Fetched:
    """Fetch a ``goto`` step's page like the first one; the browser gets it when it navigates."""
    headers = [
        ("User-Agent", session.ua),
        ("Accept", NAVIGATION_ACCEPT),
        ("Accept-Language", ACCEPT_LANGUAGE),
        ("Upgrade-Insecure-Requests", "1"),
    ]
    if session.context is not None:
        cookies = await session.context.cookies([url])
        if cookies:
            headers.append(("Cookie", "; ".join(f"{c['name']}={c['value']}" for c in cookies)))
    got = await session.fetcher.fetch(url, "GET", headers)
    why = _download_reason(got.final)
    if why is not None:
        raise FetchError("download", f"{got.final.url}: {why}")
    session.pending = got
    return got


async def _load(
    pc: PageCapture,
    session: _Session,
    page: Page,
    budget: Budget,
    options: CaptureOptions,
    recorder: ScreenRecorder | None,
) -> None:
    """(3)-(4) Navigate to the first page and wait as asked (or until a limit)."""
    wait_until: Literal["load", "networkidle"] = (
        "networkidle" if options.wait == "networkidle" else "load"
    )
    load = asyncio.ensure_future(
        page.goto(pc.main.url, wait_until=wait_until, timeout=budget.remaining() * 1000 + 1)
    )
    limit = asyncio.ensure_future(session.limit_hit.wait())
    try:
        done, _ = await asyncio.wait({load, limit}, return_when=asyncio.FIRST_COMPLETED)
        if load in done:
            try:
                load.result()
            except PlaywrightTimeout:
                budget.expire()
            except PlaywrightError as e:
                text = _first(e)
                if "Download is starting" in text:
                    raise CaptureFailed(
                        "download", f"{pc.main.url}: the browser started a download"
                    ) from e
                raise CaptureFailed("browser_error", f"navigation failed: {text}") from e
            if options.wait == "delay" and budget.reached is None:
                delay = min(options.delay_ms / 1000, budget.remaining())
                await asyncio.wait({limit}, timeout=delay)
    finally:
        limit.cancel()
        if not load.done():
            load.cancel()


async def _artefacts(
    pc: PageCapture,
    page: Page,
    options: CaptureOptions,
    workdir: Path,
    secret_selectors: list[str],
) -> None:
    t = ARTEFACT_TIMEOUT_MS
    masks = [page.locator(s) for s in secret_selectors]
    try:
        view = workdir / "screenshot-viewport.png"
        await page.screenshot(
            path=str(view),
            type="png",
            timeout=t,
            animations="disabled",
            mask=masks,
            mask_color=MASK_COLOR,
        )
        pc.files["screenshot_viewport"] = (view, "image/png")
        if options.full_page:
            full = workdir / "screenshot-full.png"
            await page.screenshot(
                path=str(full),
                type="png",
                full_page=True,
                timeout=t,
                animations="disabled",
                mask=masks,
                mask_color=MASK_COLOR,
            )
            pc.files["screenshot_full"] = (full, "image/png")
        dom = workdir / "dom.html"
        dom.write_text(await page.content(), "utf-8")
        pc.files["dom"] = (dom, "text/html; charset=utf-8")
        pc.page_title = (await page.title())[:1000]
        pc.final_url = page.url
        for mask in masks:
            # The print must not show what was typed as a secret either (after the
            # DOM was serialised: this style is not part of the page's evidence).
            await mask.evaluate_all(
                "els => els.forEach(e => "
                "e.style.setProperty('-webkit-text-security', 'disc', 'important'))"
            )
        pdf = workdir / "page.pdf"
        await page.pdf(path=str(pdf), print_background=True)
        pc.files["pdf"] = (pdf, "application/pdf")
    except PlaywrightError as e:
        raise CaptureFailed("browser_error", f"could not record the page: {_first(e)}") from e
    if pc.secrets:
        for name, (path, media) in pc.files.items():
            if media.startswith("text/") and pc.secrets.found_in(path.read_bytes()):
                pc.private.add(name)  # the page itself shows the secret


@asynccontextmanager
async def _playwright(driver: Driver | None) -> AsyncIterator[Playwright]:
    """The driver's Playwright, or one started for this capture only."""
    try:
        if driver is not None:
            pw = await driver.playwright()
        else:
            manager = async_playwright()
            pw = await manager.start()
    except (PlaywrightError, OSError) as e:
        raise CaptureFailed("browser_error", f"Playwright did not start: {_first(e)}") from e
    try:
        yield pw
    finally:
        if driver is None:
            await pw.stop()


def _write_tls_chain(pc: PageCapture, workdir: Path) -> None:
    tls = pc.main.tls
    if tls is None or not tls.chain:
        return
    pem = "".join(ssl.DER_cert_to_PEM_cert(der) for der in tls.chain)
    path = workdir / "tls-chain.pem"
    path.write_text(pem, "ascii")
    pc.files["tls_chain"] = (path, "application/x-pem-file")


def _first(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
