"""Online capture benchmark (issue 6): wall time, throughput, browser memory.

    python bench/capture_bench.py                  # 10 serial, 12 at concurrency 2
    python bench/capture_bench.py --serial 20 --parallel 20
    python bench/capture_bench.py --jail-cost 10 --baseline before.json

The test page of ``tests/capture`` (HTML, CSS, a script changing the DOM
after load, two images one of them through a 301, a redirect of the page
itself) served over HTTPS by a local server with a test-made CA; every
capture is real and complete: fresh Chromium, WARC, WACZ, screenshots, DOM,
PDF, TLS chain, manifest, blobs and the deposit in the log.

1. Capture wall time: ``capture_evidence`` called serially, end to end
   (browser start included): p50, p90, min, max.
2. Throughput: ``--parallel`` captures through the API's worker pool
   (``CapturePool``) with concurrency 2: captures per minute of wall time.
3. Browser memory per capture: during the serial runs, every 50 ms, the sum
   of PSS (proportional set size, so shared pages are not counted twice) of
   every Chromium process descended from this process; the peak of each
   capture, and the same for the Playwright driver (node).
4. With ``--jail-cost N``: N captures jailed and N in the weaker mode
   (``capture.isolation = none``: root, no sandbox, no namespace, as
   before the jail existed), alternated so both see the same load.

``--baseline FILE`` prints every figure beside those of an earlier run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "capture"))

from capture_support import make_pki, serve  # noqa: E402

from bench.common import OUT, fresh_home, pct, pss_kib  # noqa: E402
from ledger.capture import CaptureOptions  # noqa: E402
from ledger.capture.jobs import CapturePool, JobStore  # noqa: E402
from ledger.capture.service import capture_evidence  # noqa: E402
from ledger.core import Ledger  # noqa: E402


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _descends_from(pid: int, root: int) -> bool:
    seen = 0
    while pid > 1 and seen < 64:
        if pid == root:
            return True
        parent = _ppid(pid)
        if parent is None:
            return False
        pid, seen = parent, seen + 1
    return False


class MemorySampler:
    """Peak summed PSS of our Chromium and Playwright-driver processes."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.me = os.getpid()
        self.peak_browser = 0
        self.peak_driver = 0
        self.max_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            browser = driver = procs = 0
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                pid = int(entry.name)
                try:
                    exe = os.readlink(f"/proc/{pid}/exe")
                except OSError:
                    continue
                is_browser = "chromium" in exe
                is_driver = exe.endswith("/node") and "playwright" in _cmdline(pid)
                if not (is_browser or is_driver) or not _descends_from(pid, self.me):
                    continue
                if is_browser:
                    browser += pss_kib(pid)
                    procs += 1
                else:
                    driver += pss_kib(pid)
            self.peak_browser = max(self.peak_browser, browser)
            self.peak_driver = max(self.peak_driver, driver)
            self.max_processes = max(self.max_processes, procs)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serial", type=int, default=10, help="captures for wall time and memory")
    ap.add_argument("--parallel", type=int, default=12, help="captures at concurrency 2")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument(
        "--baseline",
        type=Path,
        help="a capture-bench.json from an earlier run, printed side by side",
    )
    ap.add_argument(
        "--jail-cost",
        type=int,
        default=0,
        metavar="N",
        help="also N captures in each isolation mode, alternated (what the jail costs)",
    )
    a = ap.parse_args()

    work = fresh_home("capture-bench")
    pki = make_pki(work / "pki")
    led = Ledger.init(work / "home", "bench.capture/log")
    led.config = replace(
        led.config,
        capture=replace(led.config.capture, allow=("127.0.0.0/8",), ca_file=str(pki.ca_pem)),
    )
    opts = CaptureOptions()
    results: dict[str, object] = {}
    with serve(pki) as site:
        url = site.base + "/"
        capture_evidence(led, url, opts)  # warm-up: page cache, fonts, imports

        walls: list[float] = []
        browser_peaks: list[int] = []
        driver_peaks: list[int] = []
        procs = 0
        for _ in range(a.serial):
            with MemorySampler() as mem:
                t = time.perf_counter()
                r = capture_evidence(led, url, opts)
                walls.append(time.perf_counter() - t)
            assert r.manifest.status == "complete"
            browser_peaks.append(mem.peak_browser)
            driver_peaks.append(mem.peak_driver)
            procs = max(procs, mem.max_processes)
        results["serial"] = {
            "n": a.serial,
            "wall_s_p50": round(pct(walls, 50), 3),
            "wall_s_p90": round(pct(walls, 90), 3),
            "wall_s_min": round(min(walls), 3),
            "wall_s_max": round(max(walls), 3),
            "browser_pss_mib_p50": round(pct(browser_peaks, 50) / 1024, 1),
            "browser_pss_mib_max": round(max(browser_peaks) / 1024, 1),
            "driver_pss_mib_p50": round(pct(driver_peaks, 50) / 1024, 1),
            "chromium_processes": procs,
        }

        if a.jail_cost:
            results["jail"] = _jail_cost(led, url, opts, a.jail_cost)

        pool = CapturePool(
            JobStore(led.store),
            lambda job, o: capture_evidence(led, job.url, o, capture_id=job.job_id).to_json(),
            concurrency=a.concurrency,
            queue_max=a.parallel,
        )
        t = time.perf_counter()
        jobs = [pool.submit(url, opts, None, None) for _ in range(a.parallel)]
        while True:
            ended = [pool.get(j.job_id) for j in jobs]
            if all(j is not None and j.status not in ("queued", "running") for j in ended):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - t
        pool.shutdown()
        statuses = sorted({j.status for j in ended if j is not None})
        assert statuses == ["complete"], statuses
        results["pool"] = {
            "n": a.parallel,
            "concurrency": a.concurrency,
            "wall_s": round(elapsed, 2),
            "captures_per_minute": round(a.parallel / elapsed * 60, 1),
            "mean_s_per_capture_in_pool": round(
                statistics.fmean(
                    _span(j.started_at, j.finished_at) for j in ended if j is not None
                ),
                3,
            ),
        }
    led.close()
    results["machine"] = {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)}
    (OUT / "capture-bench.json").write_text(json.dumps(results, indent=2))
    s, p = results["serial"], results["pool"]
    print(f"capture wall time: {s}")
    print(f"concurrency {a.concurrency}: {p}")
    print(json.dumps(results))
    if a.baseline is not None:
        _side_by_side(json.loads(a.baseline.read_text()), results)


def _jail_cost(led: Ledger, url: str, opts: CaptureOptions, n: int) -> dict[str, float]:
    """Captures alternated between the jailed browser and the weaker mode (no
    namespace, root, no sandbox), so that both see the same machine load."""
    walls: dict[str, list[float]] = {"namespace": [], "none": []}
    cfg = led.config
    try:
        for _ in range(n):
            for mode, times in walls.items():
                led.config = replace(cfg, capture=replace(cfg.capture, isolation=mode))
                t = time.perf_counter()
                r = capture_evidence(led, url, opts)
                times.append(time.perf_counter() - t)
                assert r.manifest.data["browser"]["isolation"]["mode"] == mode
    finally:
        led.config = cfg
    jailed, weak = walls["namespace"], walls["none"]
    return {
        "n_each": n,
        "jailed_wall_s_p50": round(pct(jailed, 50), 3),
        "unjailed_wall_s_p50": round(pct(weak, 50), 3),
        "jailed_wall_s_mean": round(statistics.fmean(jailed), 3),
        "unjailed_wall_s_mean": round(statistics.fmean(weak), 3),
        "pairwise_difference_s_p50": round(
            pct([j - w for j, w in zip(jailed, weak, strict=True)], 50), 3
        ),
    }


def _side_by_side(before: dict[str, Any], now: dict[str, Any]) -> None:
    """Every figure of both runs, baseline first."""
    print(f"{'figure':<36} {'baseline':>12} {'now':>12}")
    for part in ("serial", "pool", "jail", "machine"):
        for key, value in now.get(part, {}).items():
            old = before.get(part, {}).get(key, "-")
            print(f"{part + '.' + key:<36} {old!s:>12} {value!s:>12}")


def _span(start: str | None, end: str | None) -> float:
    from datetime import datetime

    assert start is not None
    assert end is not None
    f = "%Y-%m-%dT%H:%M:%S.%fZ"
    return (datetime.strptime(end, f) - datetime.strptime(start, f)).total_seconds()


if __name__ == "__main__":
    main()
