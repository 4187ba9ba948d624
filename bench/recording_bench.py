"""Recorded capture benchmark (issue 16): a 30 s recording, end to end.

    python bench/recording_bench.py                    # 30 s of each page, once
    python bench/recording_bench.py --seconds 60 --runs 3 --pages clock

Each run is a real recorded capture (``capture_evidence`` with ``video`` and
``duration``) of a page of the local test site of ``tests/capture``: fresh
Chromium, screencast, the clock and URL drawn on every frame, ffmpeg
(H.264), WARC, WACZ, screenshots, DOM, PDF, blobs and the deposit.

Pages: ``clock`` changes every 100 ms (a counter and a bar: the screencast
sends about ten frames a second); ``still`` does not change after it loads
(the recorder repeats the last frame twice a second).

Figures per run:

1. wall time of the whole capture, and what it adds to the recording itself
   (before the first frame: browser start and first load; after the last:
   the encoder finishing, screenshots, PDF, WACZ; the rest: blobs, deposit);
2. CPU seconds: this Python process (fetcher, recorder drawing the frames;
   the sampler's own CPU time taken off), every Chromium process, ffmpeg
   (sampled from ``/proc/<pid>/stat`` every 50 ms for every process
   descended from this one: a process that ends between two samples loses at
   most 50 ms);
3. peak memory: the summed PSS of the Chromium processes, of ffmpeg, and of
   both together at the same instant, plus this process's peak RSS growth;
4. video: bytes, bytes per minute, frames (from the browser / repeated).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "capture"))

from capture_support import serve  # noqa: E402

from bench.common import OUT, fresh_home, pss_kib  # noqa: E402
from ledger.capture import CaptureOptions  # noqa: E402
from ledger.capture.service import capture_evidence  # noqa: E402
from ledger.core import Ledger  # noqa: E402

PAGES = {"clock": "/clock.html", "still": "/page.html"}
TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


class Sampler:
    """CPU seconds and peak PSS of Chromium and ffmpeg processes under this one."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.me = os.getpid()
        self.cpu: dict[int, tuple[str, float]] = {}
        self.peak = {"chromium": 0, "ffmpeg": 0, "together": 0}
        self.own_cpu = 0.0
        """CPU seconds of the sampling itself (taken off this process's figure)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _kind(self, pid: int) -> str | None:
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return None
        if "chromium" in exe:
            return "chromium"
        if exe.endswith("/ffmpeg"):
            return "ffmpeg"
        return None

    def _descends(self, pid: int, parents: dict[int, int]) -> bool:
        for _ in range(64):
            if pid == self.me:
                return True
            parent = parents.get(pid)
            if parent is None or parent <= 1:
                return False
            pid = parent
        return False

    def _run(self) -> None:
        start = time.thread_time()
        try:
            self._sample()
        finally:
            self.own_cpu = time.thread_time() - start

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            stats: dict[int, tuple[int, float]] = {}
            for entry in os.scandir("/proc"):
                if entry.name.isdigit() and (s := _stat(int(entry.name))) is not None:
                    stats[int(entry.name)] = s
            parents = {pid: s[0] for pid, s in stats.items()}
            mem = {"chromium": 0, "ffmpeg": 0}
            for pid, (_, cpu) in stats.items():
                kind = self._kind(pid)
                if kind is None or not self._descends(pid, parents):
                    continue
                self.cpu[pid] = (kind, max(cpu, self.cpu.get(pid, (kind, 0.0))[1]))
                mem[kind] += pss_kib(pid)
            for kind, kib in mem.items():
                self.peak[kind] = max(self.peak[kind], kib)
            self.peak["together"] = max(self.peak["together"], sum(mem.values()))

    def cpu_of(self, kind: str) -> float:
        return sum(cpu for k, cpu in self.cpu.values() if k == kind)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_once(led: Ledger, url: str, seconds: int) -> dict[str, object]:
    options = CaptureOptions(video=True, duration=seconds)
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    rss_before = self_before.ru_maxrss
    with Sampler() as s:
        t = time.perf_counter()
        result = capture_evidence(led, url, options)
        wall = time.perf_counter() - t
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    m = result.manifest
    assert m.status == "complete"
    assert m.recording is not None
    rec = m.data["recording"]
    video = m.recording.artefact.size
    python_cpu = (
        (self_after.ru_utime + self_after.ru_stime)
        - (self_before.ru_utime + self_before.ru_stime)
        - s.own_cpu
    )
    chromium, ffmpeg = s.cpu_of("chromium"), s.cpu_of("ffmpeg")
    minutes = m.recording.duration_ms / 60_000
    return {
        "wall_s": round(wall, 2),
        "video_s": round(m.recording.duration_ms / 1000, 2),
        "overhead_s": round(wall - seconds, 2),
        # From the manifest's times: browser start and page load before the video's
        # first frame; after its last, encoding ends, screenshots, PDF, packaging.
        "before_video_s": round(_span(m.started_at, rec["started_at"]), 2),
        "after_video_s": round(_span(rec["ended_at"], m.ended_at), 2),
        "cpu_s": {
            "python": round(python_cpu, 2),
            "chromium": round(chromium, 2),
            "ffmpeg": round(ffmpeg, 2),
            "total": round(python_cpu + chromium + ffmpeg, 2),
        },
        "peak_pss_mib": {k: round(v / 1024, 1) for k, v in s.peak.items()},
        "python_peak_rss_growth_mib": round(max(0, self_after.ru_maxrss - rss_before) / 1024, 1),
        "video_bytes": video,
        "video_bytes_per_minute": round(video / minutes),
        "frames": m.recording.frame_count,
        "frames_from_browser": rec["frames_from_browser"],
        "frames_repeated": rec["frames_repeated"],
        "size": f"{m.recording.width}x{m.recording.height}",
    }


def _span(start: str, end: str) -> float:
    from datetime import datetime

    f = "%Y-%m-%dT%H:%M:%S.%fZ"
    return (datetime.strptime(end, f) - datetime.strptime(start, f)).total_seconds()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=30, help="recording duration")
    ap.add_argument("--runs", type=int, default=1, help="runs per page")
    ap.add_argument("--pages", default="clock,still", help="comma-separated: clock, still")
    a = ap.parse_args()
    pages = [p.strip() for p in a.pages.split(",") if p.strip()]
    work = fresh_home("recording-bench")
    led = Ledger.init(work / "home", "bench.recording/log")
    led.config = replace(led.config, capture=replace(led.config.capture, allow=("127.0.0.0/8",)))
    results: dict[str, object] = {"seconds": a.seconds, "runs": {}}
    with serve() as site:
        capture_evidence(led, site.base + "/page.html", CaptureOptions())  # warm-up
        for page in pages:
            runs = [run_once(led, site.base + PAGES[page], a.seconds) for _ in range(a.runs)]
            results["runs"][page] = runs  # type: ignore[index]
            for r in runs:
                print(f"{page}: {json.dumps(r)}")
    led.close()
    results["machine"] = {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)}
    (OUT / "recording-bench.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
