"""Interactive captures (交互式取证): a rights holder drives the capture browser.

A session is a recorded capture (:func:`ledger.capture.service.capture_evidence`
with a :class:`~ledger.capture.live.LiveSession`) running on a thread of its
own; the page sends input actions and asks for frames through this service.
Only rights holders start one, at most one each at a time (a second answers
:class:`~ledger.errors.Conflict`), and each reaches only its own. *Finish*
deposits the recording like any capture; *abandon* (or the session's time
bound, its idle timeout, a closed page) leaves nothing: no blob, no log
entry, no work directory.

A session's browser runs in the process that started it (the *holder*);
the database relays it to every other worker and host (tables
``live_sessions``, ``live_frames``, ``live_inputs``), so the page may be
served by any of them, as load balancers and ``serve --workers N`` do:

- the ``live_sessions`` row is the rights holder's lease: taken atomically
  (one live session per rights holder across every process), renewed by the
  holder every :data:`BEAT` seconds with the state the page shows, and lost
  when the holder has not renewed it for :data:`TTL` seconds (its process
  died: another session may start, and the holder, should it come back,
  abandons);
- every input, whoever received it, is counted there (at most
  :data:`~ledger.capture.steps.MAX_STEPS`, :data:`~ledger.capture.live.RATE`
  a second) and queued in ``live_inputs`` for the holder, which performs them
  in that order;
- the holder copies its latest frame to ``live_frames`` while another
  process is asked for frames; *finish* and *abandon* from any process are
  written to the row, and the outcome (the receipt, or why nothing was kept)
  stays there for :data:`KEEP` seconds for the process that waits on it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ledger.capture.errors import CaptureFailed
from ledger.capture.live import RATE, LiveFrame, LiveSession, check_inputs
from ledger.capture.options import CaptureOptions
from ledger.capture.steps import MAX_STEPS, parse_step
from ledger.errors import Conflict, InvalidInput, LedgerError, NotFound
from ledger.events import format_time, new_id
from ledger.services.policy import Actor, authorize

if TYPE_CHECKING:
    from ledger.core import Ledger
    from ledger.storage.base import LiveRow

__all__ = [
    "BEAT",
    "FINISH_TIMEOUT",
    "KEEP",
    "TTL",
    "Interactive",
    "InteractiveService",
    "RelayedInteractive",
]

log = logging.getLogger(__name__)

FINISH_TIMEOUT = 300.0
"""Seconds *finish* waits for the deposit (artefacts, video, manifest)."""
TTL = 15.0
"""Seconds a session's row outlives its holder's last renewal."""
BEAT = 0.5
"""Seconds between the holder's renewals (with the state the page shows)."""
KEEP = 120.0
"""Seconds an ended session's outcome is kept for a process waiting on it."""
WATCH = 5.0
"""The holder copies frames to the database while another process asked for
one within this many seconds."""
PUMP = 0.05
"""Seconds between the holder's looks for inputs relayed to it."""
POLL = 0.1
"""Seconds between a relaying process's looks for a frame or an outcome."""
_URL = re.compile(r"[hH][tT][tT][pP][sS]?://\S{1,8185}")


@dataclass(slots=True)
class Interactive:
    """One interactive capture session."""

    session_id: str
    owner: str
    url: str
    title: str | None
    live: LiveSession
    started_at: str
    done: threading.Event = field(default_factory=threading.Event)
    relay: threading.Thread | None = None
    """The holder's relay thread (:meth:`InteractiveService._pump`)."""
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set when the capture has ended: the relay stops."""
    result: dict[str, Any] | None = None
    """The capture's receipt (:meth:`CaptureResult.to_json`) once deposited."""
    error: str | None = None
    """Why the session ended without evidence."""

    def state(self) -> dict[str, Any]:
        """What the page shows: status, clock, time left, inputs logged."""
        live = self.live
        if self.done.is_set():
            status = "deposited" if self.result is not None else "ended"
        else:
            status = "running" if live.running else "starting"
        return {
            "session_id": self.session_id,
            "status": status,
            "url": self.url,
            "now": format_time(datetime.now(UTC)),
            "started_at": self.started_at,
            "seconds_left": round(live.seconds_left()),
            "inputs": live.logged,
            "viewport": list(live.viewport),
            "evidence_id": (self.result or {}).get("evidence_id"),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class RelayedInteractive:
    """A session another process runs, as the database relays it."""

    row: LiveRow

    @property
    def session_id(self) -> str:
        return self.row.session_id

    @property
    def owner(self) -> str:
        return self.row.owner

    @property
    def viewport(self) -> tuple[int, int]:
        width, height = json.loads(self.row.state)["viewport"]
        return int(width), int(height)

    def state(self) -> dict[str, Any]:
        """The holder's last state, its clock and time left brought up to now."""
        state: dict[str, Any] = json.loads(self.row.state)
        state["now"] = format_time(datetime.now(UTC))
        state["seconds_left"] = max(0, round(float(state["seconds_left"]) - self.row.age))
        return state


class InteractiveService:
    """Interactive sessions: those this process runs, and the others relayed."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._store = ledger.store
        self._lock = threading.Lock()
        self._sessions: dict[str, Interactive] = {}
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{new_id()[:8]}"

    def start(
        self,
        actor: Actor,
        url: str,
        title: str | None = None,
        viewport: tuple[int, int] = (1280, 800),
    ) -> Interactive:
        """Open ``url`` in a clean capture browser for ``actor`` to drive.

        (1) the role; (2) an http(s) URL; (3) no other live session of the
        account (Conflict) and a free capture slot (Conflict); (4) start the
        recorded capture on its own thread.
        """
        authorize(actor, "capture.interactive")  # (1)
        url = url.strip()
        if not _URL.fullmatch(url):  # (2)
            raise InvalidInput(f"capture: {url[:100]!r} is not an http or https URL")
        options = CaptureOptions(
            viewport_width=viewport[0], viewport_height=viewport[1], video=True, full_page=False
        )
        cfg = self._ledger.config.capture
        owner = actor.account_id
        open_elsewhere = "capture: an interactive session of this account is already open"
        with self._lock:  # (3)
            if owner in self._sessions:
                raise Conflict(open_elsewhere)
            if len(self._sessions) >= cfg.concurrency:
                raise Conflict("capture: every interactive capture browser is busy; retry later")
            session = Interactive(
                session_id=new_id(),
                owner=owner,
                url=url,
                title=title or None,
                live=LiveSession(
                    viewport,
                    max_seconds=cfg.interactive_seconds,
                    idle_seconds=cfg.interactive_idle,
                    grace_seconds=cfg.interactive_grace,
                ),
                started_at=format_time(datetime.now(UTC)),
            )
            # The lease: no other process (worker or host) runs one for owner.
            state = json.dumps(session.state())
            if not self._store.live_take(owner, session.session_id, self._holder, TTL, state):
                raise Conflict(open_elsewhere)
            self._sessions[owner] = session
        tag = session.session_id[:8]
        session.relay = threading.Thread(  # (4)
            target=self._pump, args=(session,), name=f"interactive-relay-{tag}", daemon=True
        )
        session.relay.start()
        threading.Thread(
            target=self._run, args=(session, options), name=f"interactive-{tag}", daemon=True
        ).start()
        return session

    def _run(self, session: Interactive, options: CaptureOptions) -> None:
        from ledger.capture.driver import discard_thread_driver
        from ledger.capture.service import capture_evidence

        try:
            result = capture_evidence(
                self._ledger,
                session.url,
                options,
                owner=session.owner,
                title=session.title,
                capture_id=session.session_id,
                live=session.live,
            )
            session.result = result.to_json()
        except CaptureFailed as e:
            session.error = str(e)
        except LedgerError as e:
            session.error = str(e)
        except Exception as e:  # a browser or encoder crash: the session ends without evidence
            session.error = f"capture: browser_error: {type(e).__name__}: {e}"[:500]
        finally:
            session.live.end("abandon")  # wakes whoever waits for a frame
            discard_thread_driver()
            session.stopping.set()  # the relay writes nothing after the outcome
            if session.relay is not None:
                session.relay.join()
            outcome = json.dumps({"result": session.result, "error": session.error})
            try:
                self._store.live_close(session.session_id, outcome, KEEP)
            except LedgerError as e:  # the row expires by itself
                log.warning(
                    "interactive session %s: outcome not relayed: %s", session.session_id, e
                )
            with self._lock:
                if self._sessions.get(session.owner) is session:
                    del self._sessions[session.owner]
            session.done.set()

    def _pump(self, session: Interactive) -> None:
        """The holder's side of the relay: inputs in, lease, state and frames out."""
        store, live, sid = self._store, session.live, session.session_id
        beat = 0.0
        watched = False
        published = 0
        while not session.stopping.wait(PUMP):
            try:
                taken = store.live_take_inputs(sid)
                if taken:
                    live.accept([parse_step(json.loads(step), n - 1) for n, step in taken])
                if time.monotonic() - beat >= BEAT:
                    beat = time.monotonic()
                    row = store.live_renew(sid, TTL, json.dumps(session.state()))
                    if row is None:  # another process took the rights holder's row
                        session.error = "capture: the session lost its lease"
                        live.end("abandon")
                        return
                    if row.ending is not None:
                        live.end(row.ending)
                    if row.seen < 2 * BEAT:  # a page served elsewhere is open
                        live.seen()
                    watched = row.watched < WATCH
                frame = live.latest() if watched else None
                if frame is not None and frame.seq > published:
                    store.live_put_frame(sid, frame.seq, frame.at, frame.jpeg)
                    published = frame.seq
            except (LedgerError, ValueError) as e:  # a database hiccup: try again
                log.warning("interactive session %s: relay: %s", sid, e)

    def get(self, actor: Actor) -> Interactive | RelayedInteractive:
        """The caller's live session, here or relayed; NotFound when there is none."""
        authorize(actor, "capture.interactive")
        with self._lock:
            session = self._sessions.get(actor.account_id)
        if session is not None:
            return session
        row = self._store.live_row(actor.account_id)
        if row is None or row.outcome is not None:
            raise NotFound("capture: no interactive session is open")
        return RelayedInteractive(row)

    def state(self, actor: Actor) -> dict[str, Any]:
        """What the page shows; asking for it keeps the session alive."""
        session = self.get(actor)
        if isinstance(session, Interactive):
            session.live.seen()
        else:
            self._store.live_touch(session.session_id, watched=False)
        return session.state()

    def send(self, actor: Actor, events: list[Any]) -> int:
        """Queue input actions of the caller's session: validated, counted for
        every process (at most MAX_STEPS, RATE a second), performed in order."""
        session = self.get(actor)
        viewport = session.live.viewport if isinstance(session, Interactive) else session.viewport
        steps = check_inputs(events, viewport)
        sid = session.session_id
        total = self._store.live_count(sid, len(steps), MAX_STEPS, RATE)
        if total is None:
            row = self._store.live_row(actor.account_id)
            if row is None or row.session_id != sid or row.ending or row.outcome:
                raise InvalidInput("live: the session is ending")
            if row.sent + len(steps) > MAX_STEPS:
                raise InvalidInput(f"live: a session takes at most {MAX_STEPS} input actions")
            raise InvalidInput(f"live: at most {RATE} input actions a second")
        self._store.live_put_inputs(sid, total - len(steps) + 1, [json.dumps(e) for e in events])
        return total

    def frame(self, actor: Actor, after: int, timeout: float) -> LiveFrame | None:
        """The session's latest frame newer than ``after`` (waits up to ``timeout``)."""
        session = self.get(actor)
        if isinstance(session, Interactive):
            return session.live.frame(after, timeout)
        sid = session.session_id
        self._store.live_touch(sid, watched=True)
        deadline = time.monotonic() + timeout
        while True:
            found = self._store.live_frame(sid, after)
            if found is not None:
                seq, at, jpeg = found
                return LiveFrame(seq, jpeg, at)
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL)

    def finish(self, actor: Actor) -> dict[str, Any]:
        """End the session and deposit the recording; its receipt. Conflict when
        it ended without evidence."""
        result, error = self._end(actor, "finish")
        if result is None:
            raise Conflict(error or "capture: the session did not end in time")
        return result

    def abandon(self, actor: Actor) -> None:
        """End the session without evidence (waits until nothing of it is left)."""
        self._end(actor, "abandon")

    def _end(self, actor: Actor, how: str) -> tuple[dict[str, Any] | None, str | None]:
        session = self.get(actor)
        self._store.live_end(session.session_id, how)
        if isinstance(session, Interactive):
            session.live.end(how)
            session.done.wait(FINISH_TIMEOUT)
            return session.result, session.error
        # The holder learns it within BEAT seconds; wait for the outcome it relays.
        deadline = time.monotonic() + FINISH_TIMEOUT
        while time.monotonic() < deadline:
            row = self._store.live_row(actor.account_id)
            if row is None or row.session_id != session.session_id:
                return None, "capture: the session's server stopped; nothing was kept"
            if row.outcome is not None:
                outcome = json.loads(row.outcome)
                return outcome.get("result"), outcome.get("error")
            time.sleep(POLL)
        return None, None

    def shutdown(self) -> None:
        """Abandon every session (the service stops)."""
        with self._lock:
            sessions = list(self._sessions.values())
        for s in sessions:
            s.live.end("abandon")
        for s in sessions:
            s.done.wait(30)
