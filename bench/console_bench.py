"""Web console figures: page server time with 100,000 deposits, browser hashing, upload.

    python bench/console_bench.py [--items 100000] [--database sqlite|postgresql]
        [--gib 1] [--skip-browser] [--skip-hashing] [--save FILE] [--baseline FILE]

(1) Server time of ``/console`` and of the evidence list (first page, a page
deep in the list, search by title (a rare phrase, a common word, two Chinese
characters, no match), by digest and deposit number, kind and date filters,
the next page of a search) for a rights holder with ``--items`` deposits: the
application is called in process (no network), signed in through a real
session, p50/p99 printed. Target: p99 <= 50 ms. ``--save`` writes the
figures as JSON; ``--baseline`` prints a saved run's figures beside them.
(2) Hashing of a ``--gib`` GiB file in headless chromium with the console's
own script and vendored hash-wasm: SHA-256 alone, SM3 alone (one worker
each) and both together as the pages compute them (two workers), MB/s.
(3) Upload of the same file through ``/console`` (the page's script, one
streamed request) to a real ``serve`` process on loopback, MB/s until the
receipt is shown. Target: >= 100 MB/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, drop_pg, fresh_home, pct, pg_url
from ledger.accounts import create_account
from ledger.core import Ledger
from ledger.events import evidence_deposited
from ledger.services import Services

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MB = 1_000_000


def populate(home: Path, items: int, database_url: str | None) -> tuple[str, str, str]:
    """A ledger whose one rights holder has ``items`` hash deposits (one in a
    thousand titled 发票, the others 合同); its token, a digest and a deposit
    number from the middle of the list."""
    led = Ledger.init(home, origin="bench.console/log", database_url=database_url)
    acct = create_account(led, "rights_holder", "bench-holder")
    t0 = time.perf_counter()
    drafts = (
        evidence_deposited(
            kind="hash",
            sha256=f"{i:064x}",
            title=f"invoice {i} 发票" if i % 1000 == 7 else f"contract {i} 合同",
            owner=acct.account_id,
        )
        for i in range(items)
    )
    middle = None
    for r in Services(led).deposits.bulk(drafts):
        if r.index == items // 2:
            middle = r
    led.seal()
    led.close()
    if database_url is not None:
        # What autovacuum does within a minute of a bulk load: the planner's
        # statistics, as a running service has them.
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("analyze")
    print(f"populated {items:,} deposits in {time.perf_counter() - t0:.1f} s")
    assert middle is not None
    return acct.token, str(middle.sha256), middle.deposit_no


def server_times(
    home: Path, token: str, sha256: str, deposit_no: str, rounds: int
) -> dict[str, tuple[float, float, int]]:
    """p50, p99 (ms) and rows shown for each case."""
    from api.app import create_app

    led = Ledger.open(home)
    app = create_app(led)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
    figures: dict[str, tuple[float, float, int]] = {}

    async def go() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
            page = await c.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf
            r = await c.post(
                "/login",
                data={"token": token, "csrf": csrf[1]},
                headers={"Origin": "http://bench"},
            )
            assert r.status_code == 303, r.text
            index = int(deposit_no.rsplit("-", 1)[1])
            day = f"{deposit_no[3:7]}-{deposit_no[7:9]}-{deposit_no[9:11]}"
            cases = {
                "/console (first page)": "/console",
                "list, page at the middle": f"/console?cursor={index}",
                "list, search by title": "/console?q=contract+99999",
                "title, common word": "/console?q=contract",
                "title, common word, deep page": f"/console?q=contract&cursor={index}",
                "title, 2 Chinese chars (1 in 1000)": "/console?q=%E5%8F%91%E7%A5%A8",
                "title, no match": "/console?q=nothing+like+this",
                "list, search by SHA-256": f"/console?q={sha256}",
                "list, search by deposit number": f"/console?q={deposit_no}",
                "list, kind=hash": "/console?kind=hash",
                "kind=capture (none)": "/console?kind=capture",
                "date range (all that day)": f"/console?since={day}&until={day}",
                "date range (no deposit)": "/console?since=2001-01-01&until=2001-01-02",
                "title + kind + date": f"/console?q=contract&kind=hash&since={day}",
            }
            print(f"\n(1) server time, {rounds} requests each (in process, signed in)")
            for name, path in cases.items():
                times = []
                for _ in range(rounds):
                    t = time.perf_counter()
                    r = await c.get(path)
                    times.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, (path, r.status_code)
                rows = r.text.count("<tr>") - 1
                figures[name] = (pct(times, 50), pct(times, 99), rows)

    asyncio.run(go())
    led.close()
    return figures


def show_times(
    figures: dict[str, tuple[float, float, int]],
    baseline: dict[str, tuple[float, float, int]] | None,
) -> None:
    head = f"  {'case':36} {'p50 ms':>7} {'p99 ms':>7} {'rows':>5}"
    if baseline is not None:
        head += f"   | before: {'p50 ms':>7} {'p99 ms':>7} {'rows':>5}"
    print(head)
    for name, (p50, p99, rows) in figures.items():
        line = f"  {name:36} {p50:7.1f} {p99:7.1f} {rows:5d}"
        if baseline is not None:
            if name in baseline:
                b50, b99, brows = baseline[name]
                line += f"   |         {b50:7.1f} {b99:7.1f} {brows:5d}"
            else:
                line += "   |         (not measured)"
        print(line)


def big_file(gib: float) -> Path:
    path = OUT / f"console-{gib:g}GiB.bin"
    size = int(gib * 1024**3)
    if not path.exists() or path.stat().st_size != size:
        block = os.urandom(1 << 20)
        with path.open("wb") as f:
            for i in range(size >> 20):
                f.write(block[i % 251 :] + block[: i % 251])
    return path


def browser(home: Path, token: str, path: Path, hashing: bool) -> float:
    """Hashing figures (printed) and the upload's MB/s."""
    from playwright.sync_api import sync_playwright

    port = 8790
    exe = Path(sys.executable).parent / "evidence-ledger"
    log = (OUT / "console-serve.log").open("wb")
    serve = subprocess.Popen(
        [str(exe), "--home", str(home), "serve", "--port", str(port), "--no-access-log"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/checkpoint", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        size = path.stat().st_size
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = b.new_context(base_url=base).new_page()
            page.set_default_timeout(600_000)
            page.goto("/login")
            page.fill("input[name=token]", token)
            page.click("main [type=submit]")
            page.wait_for_url("**/console")
            if hashing:
                hash_figures(page, path)

            print(f"\n(3) upload of {size / 1024**3:g} GiB through /console (loopback)")
            page.goto("/console")
            page.set_input_files("#files", str(path))
            t = time.perf_counter()
            page.click("#upload-form [type=submit]")
            page.wait_for_selector("#uploads .upload.done, #uploads .upload.failed")
            seconds = time.perf_counter() - t
            state = page.locator("#uploads .upload").first.get_attribute("class")
            rate = size / MB / seconds
            print(f"  {rate:7.1f} MB/s ({seconds:.1f} s until the receipt; {state})")
            b.close()
            return rate
    finally:
        serve.terminate()
        serve.wait(30)
        log.close()


def hash_figures(page: Any, path: Path) -> None:
    """SHA-256 alone, SM3 alone and both, as the pages compute them."""
    size = path.stat().st_size
    print(f"\n(2) hashing {size / 1024**3:g} GiB in headless chromium (hash-wasm)")
    page.set_input_files("#hash-file", str(path))  # hashes both, as the page does
    # (the pages' policy forbids eval, so no wait_for_function: poll the field)
    while len(page.input_value("#hash-sha256")) != 64:
        time.sleep(0.2)
    for algorithm in ("sha256", "sm3"):
        seconds = page.evaluate(
            """async (algorithm) => {
                const file = document.getElementById('hash-file').files[0];
                const url = document.querySelector('script[src*="hashing.js"]').src
                    .replace(/hashing\\.js.*$/, 'hash-worker.js');
                const t = performance.now();
                await new Promise((resolve, reject) => {
                    const w = new Worker(url);
                    w.onmessage = (e) => {
                        if (e.data.digest) { w.terminate(); resolve(); }
                        if (e.data.error) { reject(new Error(e.data.error)); }
                    };
                    w.postMessage({file, algorithm});
                });
                return (performance.now() - t) / 1000;
            }""",
            algorithm,
        )
        print(f"  {algorithm:8} {size / MB / seconds:7.1f} MB/s ({seconds:.1f} s)")
    seconds = page.evaluate(
        """async () => {
            const file = document.getElementById('hash-file').files[0];
            const t = performance.now();
            await window.evidenceHash.hashFile(file);
            return (performance.now() - t) / 1000;
        }"""
    )
    print(f"  both     {size / MB / seconds:7.1f} MB/s ({seconds:.1f} s, two workers)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument("--skip-hashing", action="store_true", help="upload only, in the browser")
    ap.add_argument("--skip-server", action="store_true", help="no page server times")
    ap.add_argument("--save", type=Path, help="write the figures to this JSON file")
    ap.add_argument("--baseline", type=Path, help="a --save file to print side by side")
    args = ap.parse_args()
    home = fresh_home("console")
    url = pg_url("console") if args.database == "postgresql" else None
    baseline = json.loads(args.baseline.read_text()) if args.baseline else {}
    results: dict[str, Any] = {"database": args.database, "items": args.items}
    try:
        token, sha256, deposit_no = populate(home, args.items, url)
        if not args.skip_server:
            figures = server_times(home, token, sha256, deposit_no, args.rounds)
            results["server"] = figures
            before = baseline.get("server")
            show_times(figures, {k: tuple(v) for k, v in before.items()} if before else None)
        if not args.skip_browser:
            rate = browser(home, token, big_file(args.gib), not args.skip_hashing)
            results["upload_mb_s"] = rate
            if "upload_mb_s" in baseline:
                print(f"  before: {baseline['upload_mb_s']:7.1f} MB/s")
    finally:
        if url is not None:
            drop_pg(url)
    if args.save:
        args.save.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
