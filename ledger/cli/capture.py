"""``evidence-ledger capture URL``: online capture (在线取证) from the command line.

Registered into the main group at the end of :mod:`ledger.cli`; a thin
wrapper over :func:`ledger.capture.capture_evidence` (imported when the
command runs, so other commands start without Playwright).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from pathlib import Path

import click

from ledger.capture import WAITS, CaptureOptions
from ledger.cli.common import cli, emit, friendly, open_ledger, open_services
from ledger.errors import InvalidInput
from ledger.services import OPERATOR
from ledger.services.captures import parse_start_at

__all__ = ["capture"]

_VIEWPORT = re.compile(r"([0-9]{3,4})x([0-9]{3,4})")


def _cidrs(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for v in value:
        try:
            out.append(str(ipaddress.ip_network(v, strict=False)))
        except ValueError:
            raise click.BadParameter(f"{v!r} is not a CIDR range (e.g. 10.0.0.0/8)") from None
    return tuple(out)


def _viewport(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    m = _VIEWPORT.fullmatch(value)
    if m is None:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT (e.g. 1280x800)")
    return int(m.group(1)), int(m.group(2))


@cli.command()
@click.argument("urls", metavar="URL...", nargs=-1, required=True)
@click.option(
    "--start-at",
    metavar="TIME",
    help="Schedule instead of capturing now: an RFC 3339 time with its offset "
    "(2026-03-01T09:00:00+08:00), at most 30 days ahead. The jobs wait in the database "
    "and a running 'serve' captures them then; their ids are printed.",
)
@click.option(
    "--allow",
    multiple=True,
    metavar="CIDR",
    callback=_cidrs,
    help="Allow this otherwise refused range (loopback, private...) for this capture; "
    "the operator's explicit permission. Repeatable.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the WACZ, screenshots, DOM, PDF, TLS chain and manifest here.",
)
@click.option("--title", help="Title recorded (privately) with the evidence (default: the page's).")
@click.option(
    "--viewport", default="1280x800", show_default=True, callback=_viewport, help="WIDTHxHEIGHT."
)
@click.option(
    "--wait",
    type=click.Choice(WAITS),
    default="load",
    show_default=True,
    help="Capture after the load event, after the network is idle, or after a delay.",
)
@click.option(
    "--delay-ms", type=click.IntRange(0, 60_000), default=0, help="With --wait delay: how long."
)
@click.option("--no-full-page", is_flag=True, help="Viewport screenshot only.")
@click.option("--user-agent-note", help="Printable ASCII appended to the user agent.")
@click.option(
    "--timeout",
    type=click.IntRange(1, 600),
    default=30,
    show_default=True,
    help="Seconds for loading the page (capped by the configured limit).",
)
@click.option(
    "--partial", is_flag=True, help="If a limit is reached, deposit what was captured anyway."
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM file of extra root certificates to trust (e.g. an internal CA).",
)
@click.option(
    "--video",
    is_flag=True,
    help="Record the browser session as a video (UTC clock and URL on every frame).",
)
@click.option(
    "--steps",
    "steps_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file of steps to run after the page loads (goto, click, type, press, "
    "scroll, wait, screenshot); each is logged with its time and a screenshot.",
)
@click.option(
    "--duration",
    type=click.IntRange(0),
    default=0,
    help="With --video: keep recording this many seconds after the page loads and the "
    "steps ran (media muted, autoplay allowed); capped by capture.max_duration.",
)
@click.option(
    "--step-timeout",
    type=click.IntRange(1, 60),
    default=10,
    show_default=True,
    help="Seconds each step may take.",
)
@click.pass_context
@friendly
def capture(
    ctx: click.Context,
    urls: tuple[str, ...],
    start_at: str | None,
    allow: tuple[str, ...],
    out: Path | None,
    title: str | None,
    viewport: tuple[int, int],
    wait: str,
    delay_ms: int,
    no_full_page: bool,
    user_agent_note: str | None,
    timeout: int,
    partial: bool,
    ca_file: str | None,
    video: bool,
    steps_file: Path | None,
    duration: int,
    step_timeout: int,
) -> None:
    """Capture a web page in headless Chromium and deposit it (在线取证); print the
    receipt JSON (evidence_id, capture_id, digests of the manifest and artefacts).

    A capture that does not produce a page (refused address, unreachable, TLS
    error, HTTP error, download, limit, a failed step) prints one line and exits 1;
    bad options or a malformed steps file exit 2.

    Recorded capture (录屏取证 / 过程取证): --video records the session,
    --steps FILE runs scripted steps (a step typed with "secret": true stays out
    of the manifest and the public artefacts), --duration S records S seconds more.

    Example: evidence-ledger capture https://example.com/item/42 --out ./capture-42

    Example: evidence-ledger capture https://example.com/shop --video --steps buy.json

    Several URLs are captured in turn (stopping at the first that fails); with
    --start-at they are scheduled instead (up to 20; no secret steps, --allow,
    --ca-file or --out, which belong to a capture run here and now).

    Example: evidence-ledger capture https://a.test/ https://b.test/ --start-at 2026-03-01T09:00:00Z
    """
    from ledger.capture.service import capture_evidence
    from ledger.capture.steps import load_steps

    steps = load_steps(steps_file) if steps_file is not None else ()
    options = CaptureOptions(
        viewport_width=viewport[0],
        viewport_height=viewport[1],
        wait=wait,
        delay_ms=delay_ms,
        full_page=not no_full_page,
        user_agent_note=user_agent_note,
        timeout=timeout,
        partial=partial,
        video=video,
        duration=duration,
        steps=steps,
        step_timeout=step_timeout,
    )
    if start_at is not None:
        if allow or ca_file or out:
            raise InvalidInput(
                "capture: --allow, --ca-file and --out apply to a capture run now, "
                "not to a scheduled one"
            )
        when = parse_start_at(start_at)
        with open_services(ctx) as services:
            jobs = services.captures.create_batch(OPERATOR, list(urls), options, title, when)
        for job in jobs:
            emit(
                {
                    "job_id": job.job_id,
                    "url": job.url,
                    "status": job.status,
                    "start_at": job.start_at,
                }
            )
        return
    with open_ledger(ctx) as ledger:
        if ca_file:
            ledger.config = replace(
                ledger.config, capture=replace(ledger.config.capture, ca_file=ca_file)
            )
        for url in urls:
            result = capture_evidence(ledger, url, options, title=title, allow=allow, out_dir=out)
            emit(result.to_json())
