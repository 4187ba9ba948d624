"""Input actions of interactive capture: parsing, the live session's checks, and
the verifier's rules for them in the action log (old manifests stay valid)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_capture_steps import _manifest, _parse

from ledger.capture import CaptureOptions
from ledger.capture.live import RATE, LiveSession, check_inputs
from ledger.capture.steps import MAX_STEPS, parse_step, parse_steps
from ledger.core import Ledger
from ledger.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.services.interactive import InteractiveService
from ledger.services.policy import Actor
from verifier.errors import MalformedError

T = "2026-01-02T03:04:05.678901Z"


def test_input_actions_parse_and_log_their_own_members() -> None:
    steps = parse_steps(
        [
            {"action": "pointer", "type": "click", "x": 10, "y": 20},
            {"action": "pointer", "type": "click", "x": 0, "y": 0, "button": "right"},
            {"action": "wheel", "dy": 300},
            {"action": "key", "key": "Enter"},
            {"action": "text", "text": "hello"},
            {"action": "text", "text": "s3cret-text", "secret": True},
        ]
    )
    assert [s.to_json() for s in steps] == [
        {"action": "pointer", "type": "click", "x": 10, "y": 20, "button": "left"},
        {"action": "pointer", "type": "click", "x": 0, "y": 0, "button": "right"},
        {"action": "wheel", "dx": 0, "dy": 300},
        {"action": "key", "key": "Enter"},
        {"action": "text", "text": "hello", "secret": False},
        {"action": "text", "text": None, "secret": True},
    ]
    assert steps[5].target == "[secret]" and "s3cret" not in steps[5].target
    assert steps[0].within(1280, 800) and not parse_step(
        {"action": "pointer", "type": "click", "x": 1280, "y": 5}
    ).within(1280, 800)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"action": "pointer", "type": "hover", "x": 1, "y": 1}, "type must be click"),
        ({"action": "pointer", "type": "click", "x": -1, "y": 1}, "must not be negative"),
        ({"action": "pointer", "type": "click", "x": 1.5, "y": 1}, "x must be an integer"),
        ({"action": "pointer", "type": "click", "x": 1}, "missing y"),
        ({"action": "pointer", "type": "click", "x": 1, "y": 1, "button": "x"}, "button must"),
        ({"action": "wheel"}, "give dy"),
        ({"action": "wheel", "dy": 10**6}, "dy must be an integer"),
        ({"action": "key", "key": "Control+W"}, "key must be one of"),
        ({"action": "key", "key": "a"}, "key must be one of"),
        ({"action": "text", "text": ""}, "text must be a string of 1 to"),
        ({"action": "text", "text": "abc", "secret": True}, "at least 6 characters"),
        ({"action": "text", "text": "abc", "selector": "#a"}, "unexpected selector"),
    ],
)
def test_bad_input_actions_are_refused(step: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_step(step)
    assert message in str(e.value)


def test_the_live_session_checks_viewport_and_kind() -> None:
    live = LiveSession((1280, 800))
    steps = check_inputs([{"action": "pointer", "type": "click", "x": 1279, "y": 799}], (1280, 800))
    assert [(s.action, s.x, s.y) for s in steps] == [("pointer", 1279, 799)]
    with pytest.raises(InvalidInput, match="outside the viewport"):
        check_inputs([{"action": "pointer", "type": "click", "x": 1280, "y": 0}], (1280, 800))
    with pytest.raises(InvalidInput, match="input actions only"):
        check_inputs([{"action": "click", "selector": "#a"}], (1280, 800))
    with pytest.raises(InvalidInput, match="1 to"):
        check_inputs([], (1280, 800))
    with pytest.raises(InvalidInput, match="1 to"):
        check_inputs([{"action": "wheel", "dy": 1}] * (RATE + 1), (1280, 800))
    live.accept(steps)
    live.end("abandon")
    live.accept(steps)  # dropped: the session is ending
    assert live.next_input() == "abandon"


def test_frames_wait_for_a_newer_one() -> None:
    live = LiveSession((1280, 800))
    assert live.frame(0, 0.05) is None
    threading.Timer(0.1, live.put_frame, (b"\xff\xd8one",)).start()
    got = live.frame(0, 5)
    assert got is not None and (got.seq, got.jpeg) == (1, b"\xff\xd8one")
    assert live.frame(1, 0.05) is None
    live.put_frame(b"\xff\xd8two")
    got = live.frame(1, 0.05)
    assert got is not None and got.seq == 2
    live.end("finish")
    assert live.frame(2, 5) is None  # an ending session answers at once


def _inputs(**extra: Any) -> dict[str, Any]:
    actions = [
        {"action": "pointer", "type": "click", "x": 1279, "y": 0, "button": "left"},
        {"action": "wheel", "dx": 0, "dy": -300},
        {"action": "key", "key": "Enter"},
        {"action": "text", "text": "hello", "secret": False},
        {"action": "text", "text": None, "secret": True},
    ]
    log = [
        {"index": i, **a, "outcome": "ok", "started_at": T, "ended_at": T}
        for i, a in enumerate(actions, 1)
    ]
    manifest = _manifest(
        actions=log,
        settings={"options": {"viewport_width": 1280, "viewport_height": 800}},
        interactive={"max_seconds": 600, "idle_seconds": 60, "inputs": 5, "ended_by": "finish"},
    )
    manifest.update(extra)
    return manifest


def test_the_verifier_reads_input_actions() -> None:
    m = _parse(_inputs())
    assert (m.actions, m.failed_actions) == (5, 0)
    # Points are bounded by the capture's own viewport.
    narrow = _inputs(settings={"options": {"viewport_width": 640, "viewport_height": 480}})
    with pytest.raises(MalformedError, match="x must be an integer from 0 to 639"):
        _parse(narrow)


@pytest.mark.parametrize(
    ("index", "edit", "message"),
    [
        (0, {"x": 5000}, "x must be an integer from 0 to"),
        (0, {"y": -1}, "y must be an integer from 0 to"),
        (0, {"type": "hover"}, "pointer needs type click"),
        (0, {"button": None}, "pointer needs type click and a button"),
        (1, {"dy": 10**6}, "dy must be an integer"),
        (1, {"dx": "1"}, "dx must be an integer"),
        (2, {"key": "Control+W"}, "key must be one of"),
        (3, {"text": ""}, "text must be 1 to"),
        (3, {"secret": "no"}, "secret must be true or false"),
        (4, {"text": "leaked-secret"}, "a secret text must be null"),
    ],
)
def test_the_verifier_refuses_malformed_input_actions(
    index: int, edit: dict[str, Any], message: str
) -> None:
    obj = _inputs()
    obj["actions"][index].update(edit)
    with pytest.raises(MalformedError) as e:
        _parse(obj)
    assert message in str(e.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "interactive must be an object"),
        ({"max_seconds": 600}, "missing"),
        (
            {"max_seconds": 600, "idle_seconds": 60, "inputs": 5, "ended_by": "abandon"},
            "ended_by must be finish",
        ),
        (
            {"max_seconds": -1, "idle_seconds": 60, "inputs": 5, "ended_by": "finish"},
            "max_seconds must be an integer",
        ),
    ],
)
def test_the_verifier_checks_the_interactive_member(value: Any, message: str) -> None:
    obj = _inputs(interactive=value)
    with pytest.raises(MalformedError) as e:
        _parse(obj)
    assert message in str(e.value)


def test_a_session_ends_at_its_bounds_and_abandon_drops_the_queue() -> None:
    bounded = LiveSession((1280, 800), max_seconds=0.2, idle_seconds=60, grace_seconds=60)
    bounded.begin()
    assert bounded.next_input() is None
    time.sleep(0.3)
    assert "ran past its 0 s bound" in str(bounded.next_input())
    assert bounded.next_input() == "abandon"

    idle = LiveSession((1280, 800), idle_seconds=0.2, grace_seconds=60)
    idle.begin()
    time.sleep(0.3)
    assert "no input" in str(idle.next_input())

    closed = LiveSession((1280, 800), idle_seconds=60, grace_seconds=0.2)
    closed.begin()
    time.sleep(0.3)
    assert closed.next_input() == "the page was closed"

    live = LiveSession((1280, 800))
    live.begin()
    live.accept(
        check_inputs(
            [{"action": "key", "key": "Tab"}, {"action": "key", "key": "Enter"}], (1280, 800)
        )
    )
    first = live.next_input()
    assert not isinstance(first, str) and first is not None and first.key == "Tab"
    live.end("finish")  # what is queued runs before finishing
    second = live.next_input()
    assert not isinstance(second, str) and second is not None and second.key == "Enter"
    assert live.next_input() == "finish"

    dropped = LiveSession((1280, 800))
    dropped.accept(check_inputs([{"action": "key", "key": "Tab"}], (1280, 800)))
    dropped.end("abandon")
    assert dropped.next_input() == "abandon"


def test_the_service_admits_rights_holders_only(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path / "home", origin="live.test/log")
    try:
        service = InteractiveService(ledger)
        for role in ("notary", "auditor", "admin"):
            with pytest.raises(Forbidden):
                service.start(Actor("staff", role, "staff"), "https://example.test/")
            with pytest.raises(Forbidden):
                service.get(Actor("staff", role, "staff"))
        holder = Actor("holder", "rights_holder", "holder")
        with pytest.raises(NotFound):
            service.get(holder)
        with pytest.raises(InvalidInput, match="not an http or https URL"):
            service.start(holder, "file:///etc/passwd")
        with pytest.raises(NotFound):
            service.send(holder, [{"action": "key", "key": "Tab"}])
    finally:
        ledger.close()


def test_a_session_held_by_another_process_is_served_through_the_database(
    tmp_path: Path,
) -> None:
    """What a worker that does not run the browser does: the holder (another
    process, here its rows) is reached only through the database."""
    ledger = Ledger.init(tmp_path / "home", origin="live.test/log")
    try:
        store, service = ledger.store, InteractiveService(ledger)
        holder = Actor("holder", "rights_holder", "holder")
        state = {"session_id": "s1", "status": "running", "seconds_left": 600, "inputs": 0}
        state["viewport"] = [1280, 800]
        assert store.live_take("holder", "s1", "elsewhere:1", 30, json.dumps(state))
        # The state and the one-session rule.
        session = service.get(holder)
        assert session.session_id == "s1" and session.viewport == (1280, 800)
        shown = service.state(holder)
        assert shown["status"] == "running" and 595 <= shown["seconds_left"] <= 600
        with pytest.raises(Conflict, match="already open"):
            service.start(holder, "https://example.test/")
        # Inputs are checked here, counted for every process, queued for the holder.
        tab = {"action": "key", "key": "Tab"}
        assert service.send(holder, [tab, tab]) == 2
        with pytest.raises(InvalidInput, match="outside the viewport"):
            service.send(holder, [{"action": "pointer", "type": "click", "x": 1280, "y": 1}])
        with pytest.raises(InvalidInput, match="a second"):
            service.send(holder, [tab] * 49)
        assert [json.loads(step) for _, step in store.live_take_inputs("s1")] == [tab, tab]
        time.sleep(1.05)
        sent = 2
        while sent + RATE <= MAX_STEPS:
            sent = service.send(holder, [tab] * RATE)
            time.sleep(1.05)
        with pytest.raises(InvalidInput, match=f"at most {MAX_STEPS}"):
            service.send(holder, [tab] * (MAX_STEPS - sent + 1))
        # Frames the holder copied; none newer within the wait.
        assert service.frame(holder, 0, 0.2) is None
        store.live_put_frame("s1", 3, "2026-12-07T00:00:00.000000Z", b"\xff\xd8three")
        frame = service.frame(holder, 0, 0.2)
        assert frame is not None and (frame.seq, frame.jpeg) == (3, b"\xff\xd8three")
        assert service.frame(holder, 3, 0.2) is None
        row = store.live_row("holder")
        assert row is not None and row.watched < 5 and row.seen < 5
        # Finish is written for the holder; its outcome is the answer.
        receipt = {"evidence_id": "e" * 32}
        done = json.dumps({"result": receipt, "error": None})
        threading.Timer(0.3, store.live_close, ("s1", done, 60)).start()
        assert service.finish(holder) == receipt
        assert store.live_row("holder") is not None  # kept a while for the others
        with pytest.raises(NotFound):
            service.get(holder)  # but no session is open
        # An abandoned one answers with why nothing was kept; a new one may start.
        assert store.live_take("holder", "s2", "elsewhere:1", 30, json.dumps(state))
        store.live_end("s2", "abandon")
        with pytest.raises(InvalidInput, match="ending"):
            service.send(holder, [tab])
        gone = json.dumps({"result": None, "error": "capture: abandoned"})
        threading.Timer(0.3, store.live_close, ("s2", gone, 60)).start()
        with pytest.raises(Conflict, match="abandoned"):
            service.finish(holder)
    finally:
        ledger.close()


def test_scripted_pointer_steps_stay_inside_the_viewport() -> None:
    inside = parse_steps([{"action": "pointer", "type": "click", "x": 319, "y": 239}])
    CaptureOptions(viewport_width=320, viewport_height=240, steps=inside)
    outside = parse_steps([{"action": "pointer", "type": "click", "x": 320, "y": 0}])
    with pytest.raises(InvalidInput, match="outside the viewport"):
        CaptureOptions(viewport_width=320, viewport_height=240, steps=outside)
