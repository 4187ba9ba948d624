"""Interactive captures (交互式取证): a rights holder drives the capture browser.

A session is a recorded capture (:func:`ledger.capture.service.capture_evidence`
with a :class:`~ledger.capture.live.LiveSession`) running on a thread of its
own; the page sends input actions and asks for frames through this service.
Only rights holders start one, at most one each at a time (a second answers
:class:`~ledger.errors.Conflict`), and each reaches only its own. *Finish*
deposits the recording like any capture; *abandon* (or the session's time
bound, its idle timeout, a closed page) leaves nothing: no blob, no log
entry, no work directory.

Sessions live in the process that serves them (``serve`` runs one process):
the "one at a time" rule holds for one host.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ledger.capture.errors import CaptureFailed
from ledger.capture.live import LiveFrame, LiveSession
from ledger.capture.options import CaptureOptions
from ledger.errors import Conflict, InvalidInput, LedgerError, NotFound
from ledger.events import format_time, new_id
from ledger.services.policy import Actor, authorize

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = ["FINISH_TIMEOUT", "Interactive", "InteractiveService"]

FINISH_TIMEOUT = 300.0
"""Seconds *finish* waits for the deposit (artefacts, video, manifest)."""
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


class InteractiveService:
    """This process's interactive sessions, one per rights holder."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._lock = threading.Lock()
        self._sessions: dict[str, Interactive] = {}

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
        with self._lock:  # (3)
            if owner in self._sessions:
                raise Conflict("capture: an interactive session of this account is already open")
            if len(self._sessions) >= cfg.concurrency:
                raise Conflict("capture: every interactive capture browser is busy; retry later")
            session = Interactive(
                session_id=new_id(),
                owner=owner,
                url=url,
                title=title or None,
                live=LiveSession(viewport),
                started_at=format_time(datetime.now(UTC)),
            )
            self._sessions[owner] = session
        thread = threading.Thread(  # (4)
            target=self._run,
            args=(session, options),
            name=f"interactive-{session.session_id[:8]}",
            daemon=True,
        )
        thread.start()
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
            with self._lock:
                if self._sessions.get(session.owner) is session:
                    del self._sessions[session.owner]
            session.done.set()

    def get(self, actor: Actor) -> Interactive:
        """The caller's live session; NotFound when there is none."""
        authorize(actor, "capture.interactive")
        with self._lock:
            session = self._sessions.get(actor.account_id)
        if session is None:
            raise NotFound("capture: no interactive session is open")
        return session

    def send(self, actor: Actor, events: list[Any]) -> int:
        """Queue input actions of the caller's session (validated; rate-limited)."""
        return self.get(actor).live.send(events)

    def frame(self, actor: Actor, after: int, timeout: float) -> LiveFrame | None:
        """The session's latest frame newer than ``after`` (waits up to ``timeout``)."""
        return self.get(actor).live.frame(after, timeout)

    def finish(self, actor: Actor) -> dict[str, Any]:
        """End the session and deposit the recording; its receipt. Conflict when
        it ended without evidence."""
        session = self.get(actor)
        session.live.end("finish")
        session.done.wait(FINISH_TIMEOUT)
        if session.result is None:
            raise Conflict(session.error or "capture: the session did not end in time")
        return session.result

    def abandon(self, actor: Actor) -> None:
        """End the session without evidence (waits until nothing of it is left)."""
        session = self.get(actor)
        session.live.end("abandon")
        session.done.wait(FINISH_TIMEOUT)

    def shutdown(self) -> None:
        """Abandon every session (the service stops)."""
        with self._lock:
            sessions = list(self._sessions.values())
        for s in sessions:
            s.live.end("abandon")
        for s in sessions:
            s.done.wait(30)
