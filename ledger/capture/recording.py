"""Screen recording of a capture (录屏取证): Chromium's screencast, a burned-in
clock and URL on every frame, encoded by Debian's ffmpeg.

Procedure of :class:`ScreenRecorder`:

(1) start ffmpeg, reading a Matroska stream on its standard input
    (:mod:`ledger.capture.matroska`) and writing MP4 (H.264, yuv420p,
    millisecond track timescale, ``-fps_mode passthrough`` so every frame
    keeps its own time, ``-fs`` the operator's video byte limit);
(2) start the DevTools screencast (``Page.startScreencast``, JPEG frames of
    the viewport): each frame is acknowledged once it is queued, so a slow
    encoder makes Chromium send fewer frames instead of filling memory;
(3) give each frame its time: the browser's frame timestamp (the host's
    real-time clock, the one the manifest's times come from) when it is
    within two seconds of the time it arrived, else the arrival time; the
    first frame is time 0, and each later frame is placed at its own time or
    one millisecond after the frame before it, whichever is later;
(4) draw each frame on a canvas under a band holding the UTC time of that
    frame (the recording's start plus the frame's presentation time, to the
    millisecond), the current step and the page's URL (secrets replaced);
    elements that received a secret text are painted over;
(5) frames are drawn in the order of their times, a second after they
    arrive (they may come late and out of order); when nothing changes on
    the page the screencast sends nothing, so the last frame is repeated
    every half second: the clock keeps running and the video lasts as long
    as the recording;
(6) on stop, end the screencast, repeat the last frame at the stop time,
    close the stream and wait for ffmpeg; then ``ffprobe`` measures the
    file (duration, frames, codec, size) for the manifest.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from playwright.async_api import BrowserContext, CDPSession, ElementHandle, Page
from playwright.async_api import Error as PlaywrightError

from ledger.capture.errors import CaptureFailed
from ledger.capture.matroska import MjpegStreamWriter
from ledger.capture.secrets import Secrets
from ledger.config import CaptureConfig
from ledger.events import format_time

__all__ = ["VIDEO_FILE", "ScreenRecorder", "Video", "ffmpeg_version"]

VIDEO_FILE = "recording.mp4"
VIDEO_MEDIA_TYPE = "video/mp4"
REPEAT_AFTER = 0.5
"""Seconds without a new frame after which the last one is repeated (clock keeps running)."""
CLOCK_TRUST = 2.0
"""A browser frame timestamp further than this from the arrival time is not used."""
REORDER = 1.0
"""Seconds a frame waits before it is drawn: frames may arrive late and out of
order; drawn in the order of their times, each keeps its own time."""
MAX_PENDING = 120
"""Frames waiting beyond which the next acknowledgement waits (Chromium then
sends no new frame): memory stays bounded when the host is slow."""
PIPE_BUFFER = 150
"""Drawn frames (about 50 KiB each) held for ffmpeg while it is busy: the
encoder may fall behind for a few seconds (the host is busy with a navigation
or a screenshot) without holding up the screencast."""
JPEG_QUALITY = 92
ENCODER_ARGS = (
    "-c:v",
    "libx264",
    # No B-frames: each frame is stored at its own millisecond (with B-frames
    # the muxer shifts timestamps that are 1 ms apart); a key frame every 2 s
    # so that players seek quickly.
    "-bf",
    "0",
    "-force_key_frames",
    "expr:gte(t,n_forced*2)",
    "-preset",
    "veryfast",
    # No look-ahead buffer: frames leave the encoder as they come, so the file
    # stops close to the byte limit and a stopped recording loses nothing.
    "-tune",
    "zerolatency",
    "-crf",
    "26",
    "-pix_fmt",
    "yuv420p",
    # Millisecond time base in the encoder and in the file: without the first,
    # ffmpeg rounds times to a guessed frame rate (205 ms becomes 200 ms).
    "-enc_time_base",
    "1/1000",
    "-video_track_timescale",
    "1000",
    "-movflags",
    "+faststart",
)
_MONO_FACE = "Noto Sans Mono CJK SC"
_BOX_JS = (
    "e => { const r = e.getBoundingClientRect();"
    " return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; }"
)


@dataclass(frozen=True, slots=True)
class Video:
    """The encoded recording and what ffprobe and the recorder measured."""

    path: Path
    media_type: str
    started: datetime
    ended: datetime
    duration_ms: int
    frame_count: int
    codec: str
    width: int
    height: int
    frames_received: int
    frames_repeated: int
    max_clock_lag_ms: int
    encoder: str
    font: str
    truncated: bool

    def facts(self, artefact: str) -> dict[str, Any]:
        """The manifest's ``recording`` member."""
        return {
            "artefact": artefact,
            "container": "mp4",
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "duration_ms": self.duration_ms,
            "frame_count": self.frame_count,
            "started_at": format_time(self.started),
            "ended_at": format_time(self.ended),
            "frames_from_browser": self.frames_received,
            "frames_repeated": self.frames_repeated,
            "truncated_at_byte_limit": self.truncated,
            "source": "Chromium DevTools screencast (Page.startScreencast), JPEG frames",
            "timing": (
                "each frame at its own time (variable frame rate, millisecond timescale): "
                "the browser's frame timestamp, or the arrival time when they differ by more "
                f"than {CLOCK_TRUST:.0f} s; the last frame repeated every {REPEAT_AFTER} s "
                "while the page does not change"
            ),
            "clock": {
                "source": "system real-time clock (CLOCK_REALTIME), UTC, as the manifest's times",
                "overlay": "started_at plus the frame's presentation time, to the millisecond",
                "max_frame_delay_ms": self.max_clock_lag_ms,
            },
            "overlay": f"a band above the page: UTC time, current step, page URL ({self.font})",
            "encoder": self.encoder,
        }


Box = tuple[float, float, float, float]
"""An element's box in document coordinates: x, y, width, height (CSS pixels)."""


@dataclass(slots=True)
class _Item:
    jpeg: bytes | None
    """None: repeat the last frame."""
    time: float
    url: str
    step: str
    meta: dict[str, Any] | None = None
    boxes: asyncio.Future[list[Box]] | None = None
    """Where the secret elements were when the frame arrived (being measured)."""
    masks: list[Box] = field(default_factory=list)


def fs_limit(max_bytes: int) -> int:
    """Where ffmpeg stops writing (``-fs``): below the limit by what it writes
    after stopping (the last frame and the index), so the file stays within it."""
    return max(1, max_bytes - max(max_bytes // 16, 16 << 10))


@functools.lru_cache(maxsize=4)
def ffmpeg_version(executable: str) -> str:
    """The first line of ``ffmpeg -version`` (cached per executable)."""
    try:
        proc = subprocess.run(  # noqa: S603 - the operator's configured encoder
            [executable, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CaptureFailed(
            "recording_error", f"cannot run {executable} ({e}); install Debian's ffmpeg package"
        ) from e
    line = (proc.stdout.splitlines() or [""])[0].strip()
    if proc.returncode != 0 or not line.startswith("ffmpeg version"):
        raise CaptureFailed("recording_error", f"{executable} -version failed: {line[:100]!r}")
    return line[:200]


@functools.lru_cache(maxsize=8)
def _font(path: str, size: int) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, str]:
    """The monospaced CJK face of the Noto collection (any face of another file)."""
    first: ImageFont.FreeTypeFont | None = None
    for index in range(16):
        try:
            face = ImageFont.truetype(path, size, index=index)
        except OSError:
            break
        first = first or face
        if face.getname()[0] == _MONO_FACE:
            return face, f"{_MONO_FACE}, {Path(path).name}"
    if first is not None:
        return first, f"{first.getname()[0]}, {Path(path).name}"
    return ImageFont.load_default(size), "Pillow's default font"


def _even(n: int) -> int:
    return n + (n & 1)


class _Overlay:
    """Draws a frame under the band with its clock, step and URL."""

    def __init__(self, font_path: str, width: int, height: int) -> None:
        self.size = max(12, min(24, width // 70))
        self.font, self.font_name = _font(font_path, self.size)
        self.band = _even(int(self.size * 3.2))
        self.width = _even(width)
        self.height = _even(height)
        self.page = (width, height)

    @property
    def canvas_size(self) -> tuple[int, int]:
        return self.width, self.height + self.band

    def compose(
        self,
        img: Image.Image,
        meta: dict[str, Any] | None,
        clock: str,
        step: str,
        url: str,
        boxes: list[Box],
    ) -> Image.Image:
        canvas = Image.new("RGB", self.canvas_size, (0, 0, 0))
        if img.size != self.page:
            img = img.resize(self.page)
        canvas.paste(img, (0, self.band))
        draw = ImageDraw.Draw(canvas)
        self._mask(draw, img.size, meta, boxes)
        pad = self.size // 2
        top = f"{clock}   {step}" if step else clock
        draw.text((pad, pad // 2), top, font=self.font, fill=(255, 255, 80))
        draw.text(
            (pad, pad // 2 + int(self.size * 1.4)),
            self._fit(draw, url, self.width - 2 * pad),
            font=self.font,
            fill=(255, 255, 255),
        )
        return canvas

    def _fit(self, draw: ImageDraw.ImageDraw, text: str, room: int) -> str:
        if draw.textlength(text, font=self.font) <= room:
            return text
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if draw.textlength(text[:mid] + "…", font=self.font) <= room:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo] + "…"

    def _mask(
        self,
        draw: ImageDraw.ImageDraw,
        size: tuple[int, int],
        meta: dict[str, Any] | None,
        boxes: list[Box],
    ) -> None:
        if not boxes:
            return
        meta = meta or {}
        # The frame was scaled to the page's size: across and down separately, as
        # a frame of another shape (the browser resizing its view for a full-page
        # screenshot) is stretched, not cropped.
        device_width = float(meta.get("deviceWidth") or size[0])
        device_height = float(meta.get("deviceHeight") or 0.0)
        scale_x = size[0] / device_width if device_width > 0 else 1.0
        scale_y = size[1] / device_height if device_height > 0 else scale_x
        page_scale = float(meta.get("pageScaleFactor") or 1.0)
        zoom_x, zoom_y = page_scale * scale_x, page_scale * scale_y
        sx = float(meta.get("scrollOffsetX") or 0.0)
        sy = float(meta.get("scrollOffsetY") or 0.0)
        top = self.band + float(meta.get("offsetTop") or 0.0) * scale_y
        for x, y, w, h in boxes:
            left = (x - sx) * zoom_x - 4
            upper = top + (y - sy) * zoom_y - 4
            draw.rectangle(
                (left, max(upper, self.band), left + w * zoom_x + 8, upper + h * zoom_y + 8),
                fill=(60, 60, 60),
            )


_EVERYWHERE = (-1e7, -1e7, 2e7, 2e7)
"""A mask box covering the whole page (document coordinates)."""


class ScreenRecorder:
    """Records one page of a capture into ``workdir/recording.mp4``."""

    def __init__(
        self, workdir: Path, cfg: CaptureConfig, width: int, height: int, secrets: Secrets
    ) -> None:
        self.path = workdir / VIDEO_FILE
        self._log = workdir / "ffmpeg.log"
        self._cfg = cfg
        self._secrets = secrets
        self._overlay = _Overlay(cfg.font, width, height)
        self._encoder = ffmpeg_version(cfg.ffmpeg)
        self.limit_hit = asyncio.Event()
        """Set when the video reached the operator's byte limit (ffmpeg stopped)."""
        self._pending: list[_Item] = []
        self._handles: list[ElementHandle] = []
        self._known: dict[int, tuple[float, float, float, float]] = {}
        """The last box read of each secret element (by handle id)."""
        self._unacked: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="recorder")
        self._pipe: queue.Queue[tuple[int, bytes] | None] = queue.Queue(PIPE_BUFFER)
        self._piper: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._writer: MjpegStreamWriter | None = None
        self._cdp: CDPSession | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._stop_at: float | None = None
        self._url = ""
        self._step = ""
        self._received = 0
        self._repeated = 0
        self._lag = 0.0
        self._t0: float | None = None
        self._emitted: _Item | None = None
        self._last_ms = -1
        self._last_img: Image.Image | None = None
        self._gone = False
        self.on_frame: Callable[[bytes], None] | None = None
        """Also given every screencast frame as it arrives (an interactive capture
        shows it to the user)."""

    # -- control --------------------------------------------------------------

    async def start(self, context: BrowserContext, page: Page) -> None:
        """Start ffmpeg (1) and the screencast (2)."""
        w, h = self._overlay.canvas_size
        with self._log.open("wb") as log:
            try:
                self._proc = subprocess.Popen(  # noqa: S603 - the operator's configured encoder
                    [
                        self._cfg.ffmpeg,
                        *("-hide_banner", "-nostats", "-loglevel", "error"),
                        *("-f", "matroska", "-i", "pipe:0", "-map", "0:v:0"),
                        *("-fps_mode", "passthrough", *ENCODER_ARGS),
                        *("-fs", str(fs_limit(self._cfg.max_video_bytes))),
                        *("-y", str(self.path)),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            except OSError as e:
                raise CaptureFailed("recording_error", f"ffmpeg did not start ({e})") from e
        assert self._proc.stdin is not None
        self._writer = MjpegStreamWriter(self._proc.stdin, w, h, "evidence-ledger recorder")
        self._piper = threading.Thread(target=self._feed, name="recorder-pipe", daemon=True)
        self._piper.start()
        self._url = self._secrets.redact(page.url)
        self._cdp = await context.new_cdp_session(page)
        self._cdp.on("Page.screencastFrame", self._on_frame)
        self._consumer = asyncio.ensure_future(self._consume())
        await self._cdp.send(
            "Page.startScreencast",
            {
                "format": "jpeg",
                "quality": 90,
                "maxWidth": self._overlay.page[0],
                "maxHeight": self._overlay.page[1],
                "everyNthFrame": 1,
            },
        )

    def show(self, *, url: str | None = None, step: str | None = None) -> None:
        """Change what the band shows from the next frame on (secrets redacted)."""
        if url is not None:
            self._url = self._secrets.redact(url)
        if step is not None:
            self._step = self._secrets.redact(step)

    async def mask(self, handle: ElementHandle) -> None:
        """Paint over this element in every frame that arrives from now on (it is
        about to receive a secret)."""
        self._handles.append(handle)

    async def stop(self) -> Video:
        """(6) End the recording; the encoded video and its measured facts."""
        if self._cdp is not None:
            with contextlib.suppress(PlaywrightError):
                await self._cdp.send("Page.stopScreencast")
        self._stop_at = time.time()
        if self._consumer is not None:
            await self._consumer
        await self._close_encoder()
        if self._t0 is None:
            raise CaptureFailed("recording_error", "the browser sent no screencast frame")
        size = self.path.stat().st_size
        if size > self._cfg.max_video_bytes:  # ffmpeg wrote more after stopping than reserved
            raise CaptureFailed(
                "limit_exceeded",
                f"the video has {size} bytes, more than {self._cfg.max_video_bytes} "
                "(video size limit)",
                limit="video_bytes",
            )
        return await asyncio.to_thread(self._probe)

    async def abort(self) -> None:
        """Stop everything without a video (the capture failed)."""
        self._stop_at = time.time()
        for task in (self._consumer, *self._tasks):
            if task is not None:
                task.cancel()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            await asyncio.to_thread(self._proc.wait)
        self._gone = True
        while self._piper is not None and self._piper.is_alive():
            try:  # end the feeding thread, making room for the end mark if need be
                self._pipe.put_nowait(None)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._pipe.get_nowait()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- frames ---------------------------------------------------------------

    def _on_frame(self, params: dict[str, Any]) -> None:
        """(2)-(3) Keep a screencast frame with its time (and where the secret
        elements are as it arrives); acknowledge it unless too many wait."""
        arrived = time.time()
        meta = dict(params.get("metadata") or {})
        stamp = meta.get("timestamp")
        t = arrived
        if isinstance(stamp, int | float) and abs(arrived - stamp) <= CLOCK_TRUST:
            t = float(stamp)
            self._lag = max(self._lag, arrived - t)
        if self._stop_at is None:
            self._received += 1
            jpeg = base64.b64decode(params["data"])
            if self.on_frame is not None:
                self.on_frame(jpeg)
            item = _Item(jpeg, t, self._url, self._step, meta)
            if self._handles:
                item.boxes = task = asyncio.ensure_future(self._sample_boxes())
                self._tasks.add(task)
                task.add_done_callback(self._done)
            self._pending.append(item)
        session = int(params["sessionId"])
        if len(self._pending) > MAX_PENDING:
            self._unacked = session
        else:
            self._ack(session)

    def _ack(self, session: int) -> None:
        if self._cdp is None or self._stop_at is not None:
            return
        task = asyncio.ensure_future(
            self._cdp.send("Page.screencastFrameAck", {"sessionId": session})
        )
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # a closed session: nothing to acknowledge any more

    async def _consume(self) -> None:
        """(3)-(5) Every tenth of a second, draw the frames older than the reorder
        delay in time order, with repeats filling the gaps; at the stop, all."""
        loop = asyncio.get_running_loop()
        while True:
            stop = self._stop_at
            if stop is None:
                await asyncio.sleep(0.1)
            horizon = stop if stop is not None else time.time() - REORDER
            ready = sorted((i for i in self._pending if i.time <= horizon), key=lambda i: i.time)
            self._pending = [i for i in self._pending if i.time > horizon]
            if stop is not None:
                ready += sorted(self._pending, key=lambda i: i.time)
                self._pending = []
            for item in ready:
                if self._t0 is None:
                    self._t0 = item.time  # the first frame drawn is time 0
                await self._gaps(loop, item.time)
                if item.boxes is not None:
                    item.masks = await item.boxes
                await loop.run_in_executor(self._executor, self._write, item)
                self._emitted = item
            await self._gaps(loop, horizon)
            if self._gone and not self.limit_hit.is_set():
                self.limit_hit.set()
            if self._unacked is not None and len(self._pending) <= MAX_PENDING:
                session, self._unacked = self._unacked, None
                self._ack(session)
            if stop is not None:
                last = self._emitted
                if last is not None and stop > last.time:
                    await self._repeat(loop, last, stop)
                return

    async def _gaps(self, loop: asyncio.AbstractEventLoop, until: float) -> None:
        """(5) Repeat the last frame drawn every REPEAT_AFTER seconds up to ``until``."""
        last = self._emitted
        while last is not None and last.time + REPEAT_AFTER <= until:
            last = await self._repeat(loop, last, last.time + REPEAT_AFTER)

    async def _repeat(self, loop: asyncio.AbstractEventLoop, last: _Item, t: float) -> _Item:
        item = _Item(None, t, self._url, self._step, last.meta)
        item.masks = last.masks
        if self._handles:
            # A gap in the browser's frames while a secret is being typed: paint
            # the elements as they are now over the repeat as well (never fewer).
            fresh = [b for b in await self._sample_boxes() if b not in item.masks]
            item.masks = [*last.masks, *fresh]
        await loop.run_in_executor(self._executor, self._write, item)
        self._emitted = item
        return item

    async def _sample_boxes(self) -> list[tuple[float, float, float, float]]:
        """Where the secret elements are now, in document coordinates."""
        boxes: list[tuple[float, float, float, float]] = []
        for handle in list(self._handles):
            try:
                box = await asyncio.wait_for(handle.evaluate(_BOX_JS), 2.0)
            except TimeoutError:
                # A slow browser, not a gone element: fail closed, with where the
                # element was last seen, or over the whole page if never read.
                boxes.append(self._known.get(id(handle), _EVERYWHERE))
                continue
            except PlaywrightError:
                # The element (or its page) is gone: nothing of it is drawn any more.
                with contextlib.suppress(ValueError):
                    self._handles.remove(handle)
                self._known.pop(id(handle), None)
                continue
            x, y, w, h = (float(v) for v in box)
            if w > 0 and h > 0:  # a detached or hidden element shows nothing
                boxes.append((x, y, w, h))
                self._known[id(handle)] = (x, y, w, h)
        return boxes

    def _write(self, item: _Item) -> None:
        """(3)-(4) In the drawing thread: place, draw and queue one frame for ffmpeg."""
        assert self._t0 is not None
        if item.jpeg is not None:
            try:
                img = Image.open(io.BytesIO(item.jpeg))
                img.load()
            except OSError:
                return  # a damaged frame is skipped; the next one follows
            self._last_img = img.convert("RGB")
        elif self._last_img is None:
            return
        else:
            self._repeated += 1
        ms = max(round((item.time - self._t0) * 1000), self._last_ms + 1)
        clock = datetime.fromtimestamp(self._t0, UTC) + timedelta(milliseconds=ms)
        text = clock.strftime("%Y-%m-%d %H:%M:%S.") + f"{clock.microsecond // 1000:03d} UTC"
        previous = self._emitted.masks if self._emitted is not None else []
        frame = self._overlay.compose(
            self._last_img, item.meta, text, item.step, item.url, [*item.masks, *previous]
        )
        buf = io.BytesIO()
        frame.save(buf, "JPEG", quality=JPEG_QUALITY)
        self._last_ms = ms
        self._pipe.put((ms, buf.getvalue()))

    def _feed(self) -> None:
        """In its own thread: hand the drawn frames to ffmpeg, in order."""
        assert self._writer is not None
        while (item := self._pipe.get()) is not None:
            if self._gone:
                continue  # drain, so that the drawing thread never blocks
            try:
                self._writer.frame(*item)
            except (BrokenPipeError, ValueError, OSError):
                self._gone = True  # ffmpeg stopped: the byte limit, or it failed

    # -- the file -------------------------------------------------------------

    async def _close_encoder(self) -> None:
        proc = self._proc
        if proc is None:
            return
        assert proc.stdin is not None
        if self._piper is not None:
            await asyncio.to_thread(self._pipe.put, None)
            await asyncio.to_thread(self._piper.join)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(proc.stdin.close)
        try:
            code = await asyncio.to_thread(proc.wait, 300)
        except subprocess.TimeoutExpired as e:
            proc.kill()
            raise CaptureFailed("recording_error", "ffmpeg did not finish the video") from e
        finally:
            self._executor.shutdown(wait=False)
        if code != 0:
            tail = self._log.read_text("utf-8", "replace").strip().splitlines()[-1:]
            raise CaptureFailed(
                "recording_error", f"ffmpeg failed ({code}): {' '.join(tail)[:300]}"
            )

    def _probe(self) -> Video:
        """(6) Measure the file with ffprobe."""
        try:
            proc = subprocess.run(  # noqa: S603 - the operator's configured prober
                [
                    self._cfg.ffprobe,
                    *("-v", "error", "-count_packets", "-select_streams", "v:0"),
                    *("-show_entries", "stream=codec_name,width,height,nb_read_packets"),
                    *("-show_entries", "format=duration", "-of", "json", str(self.path)),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            info = json.loads(proc.stdout)
            stream = info["streams"][0]
            duration_ms = round(float(info["format"]["duration"]) * 1000)
            frames = int(stream["nb_read_packets"])
        except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError) as e:
            raise CaptureFailed("recording_error", f"ffprobe cannot read the video ({e})") from e
        assert self._t0 is not None
        started = datetime.fromtimestamp(self._t0, UTC)
        return Video(
            path=self.path,
            media_type=VIDEO_MEDIA_TYPE,
            started=started,
            ended=started + timedelta(milliseconds=max(self._last_ms, 0)),
            duration_ms=duration_ms,
            frame_count=frames,
            codec=str(stream["codec_name"]),
            width=int(stream["width"]),
            height=int(stream["height"]),
            frames_received=self._received,
            frames_repeated=self._repeated,
            max_clock_lag_ms=round(self._lag * 1000),
            encoder=self._encoder,
            font=self._overlay.font_name,
            truncated=self._gone,
        )
