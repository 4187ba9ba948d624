"""The database relay of interactive capture sessions (``live_*`` tables), on
SQLite and PostgreSQL: one lease per rights holder whoever races for it,
lost when the holder stops renewing it; inputs counted for every process and
handed to the holder in order; the latest frame; the outcome kept a while."""

from __future__ import annotations

import json
import threading
import time

from ledger.core import Ledger

STATE = json.dumps({"status": "starting", "seconds_left": 600, "viewport": [1280, 800]})


def test_one_session_per_rights_holder_until_it_ends(ledger: Ledger) -> None:
    store = ledger.store
    assert store.live_row("alice") is None
    assert store.live_take("alice", "s1", "host-a", 30, STATE)
    assert not store.live_take("alice", "s2", "host-b", 30, STATE)  # held
    assert store.live_take("bob", "s3", "host-b", 30, STATE)  # another rights holder
    row = store.live_row("alice")
    assert row is not None
    assert (row.session_id, row.holder, row.sent, row.ending, row.outcome) == (
        "s1",
        "host-a",
        0,
        None,
        None,
    )
    assert json.loads(row.state)["viewport"] == [1280, 800]
    # An ended session keeps its outcome for a while, and a new one may start.
    store.live_close("s1", json.dumps({"result": {"evidence_id": "e1"}, "error": None}), 60)
    ended = store.live_row("alice")
    assert ended is not None and ended.outcome is not None
    assert json.loads(ended.outcome)["result"] == {"evidence_id": "e1"}
    assert store.live_renew("s1", 30, STATE) is None  # an ended session renews nothing
    assert store.live_take("alice", "s4", "host-b", 30, STATE)
    again = store.live_row("alice")
    assert again is not None and (again.session_id, again.outcome, again.sent) == ("s4", None, 0)


def test_a_lease_not_renewed_is_lost_to_the_next_session(ledger: Ledger) -> None:
    store = ledger.store
    assert store.live_take("alice", "s1", "host-a", 0.2, STATE)
    renewed = store.live_renew("s1", 0.2, json.dumps({"status": "running"}))
    assert renewed is not None and renewed.age < 0.1
    assert json.loads(renewed.state) == {"status": "running"}
    time.sleep(0.4)  # the holder stopped renewing (its process died)
    assert store.live_row("alice") is None
    assert store.live_take("alice", "s2", "host-b", 30, STATE)
    assert store.live_renew("s1", 30, STATE) is None  # the old holder learns it lost


def test_racing_processes_open_one_session(ledger: Ledger) -> None:
    """Eight threads, each on its own database connection, race for one lease."""
    won: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def take(i: int) -> None:
        start.wait()
        if ledger.store.live_take("alice", f"s{i}", f"host-{i}", 30, STATE):
            with lock:
                won.append(f"s{i}")

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row = ledger.store.live_row("alice")
    assert row is not None and won == [row.session_id]


def test_inputs_are_counted_for_every_process_and_taken_in_order(ledger: Ledger) -> None:
    store = ledger.store
    assert store.live_take("alice", "s1", "host-a", 30, STATE)
    assert store.live_count("s1", 3, 200, 50) == 3
    store.live_put_inputs("s1", 1, ['{"n": 1}', '{"n": 2}', '{"n": 3}'])
    assert store.live_count("s1", 2, 200, 50) == 5
    store.live_put_inputs("s1", 4, ['{"n": 4}', '{"n": 5}'])
    assert store.live_take_inputs("s1") == [
        (1, '{"n": 1}'),
        (2, '{"n": 2}'),
        (3, '{"n": 3}'),
        (4, '{"n": 4}'),
        (5, '{"n": 5}'),
    ]
    assert store.live_take_inputs("s1") == []  # taken once
    # A process that counted earlier may add its inputs after later ones were
    # taken: they are taken on the next look, not lost.
    store.live_put_inputs("s1", 7, ['{"n": 7}'])
    assert store.live_take_inputs("s1") == [(7, '{"n": 7}')]
    store.live_put_inputs("s1", 6, ['{"n": 6}'])
    assert store.live_take_inputs("s1") == [(6, '{"n": 6}')]
    # At most `rate` in the current second: the rest is refused, nothing counted.
    assert store.live_count("s1", 46, 200, 50) is None
    assert store.live_count("s1", 45, 200, 50) == 50
    assert store.live_count("s1", 1, 200, 50) is None
    time.sleep(1.1)
    assert store.live_count("s1", 1, 200, 50) == 51
    # At most `most` in all.
    assert store.live_count("s1", 10, 55, 50) is None
    assert store.live_count("s1", 4, 55, 50) == 55
    # Once finish or abandon is asked for, no more input is taken; the first ask wins.
    store.live_end("s1", "finish")
    store.live_end("s1", "abandon")
    row = store.live_row("alice")
    assert row is not None and (row.ending, row.sent) == ("finish", 55)
    assert store.live_count("s1", 1, 200, 50) is None
    assert store.live_count("unknown", 1, 200, 50) is None


def test_the_latest_frame_and_who_is_watching(ledger: Ledger) -> None:
    store = ledger.store
    assert store.live_take("alice", "s1", "host-a", 30, STATE)
    assert store.live_frame("s1", 0) is None
    store.live_put_frame("s1", 1, "2026-12-07T00:00:00.000000Z", b"\xff\xd8one")
    store.live_put_frame("s1", 2, "2026-12-07T00:00:00.100000Z", b"\xff\xd8two")
    assert store.live_frame("s1", 0) == (2, "2026-12-07T00:00:00.100000Z", b"\xff\xd8two")
    assert store.live_frame("s1", 2) is None  # nothing newer
    row = store.live_row("alice")
    assert row is not None and row.watched > 1000  # nobody asked from elsewhere yet
    time.sleep(0.3)
    store.live_touch("s1", watched=False)
    row = store.live_row("alice")
    assert row is not None and row.seen < 0.2 and row.watched > 1000
    store.live_touch("s1", watched=True)
    row = store.live_row("alice")
    assert row is not None and row.watched < 0.2
    # Closing drops the frame and the inputs waiting.
    assert store.live_count("s1", 1, 200, 50) == 1
    store.live_put_inputs("s1", 1, ['{"n": 1}'])
    store.live_close("s1", json.dumps({"result": None, "error": "abandoned"}), 60)
    assert store.live_frame("s1", 0) is None
    assert store.live_take_inputs("s1") == []
