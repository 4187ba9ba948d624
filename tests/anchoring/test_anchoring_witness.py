"""The witness: ``POST /add-checkpoint`` exactly as C2SP tlog-witness, served by a real
``evidence-ledger witness serve`` process, and its state (atomic, durable, evidence kept)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from anchoring_support import WitnessProc, el
from tlog_fixtures import MemLog

from ledger.witness import Witness, WitnessError, format_add_checkpoint
from ledger.witness.store import WitnessStore
from verifier.cosignature import WitnessPolicy, verify_cosignatures
from verifier.errors import VerificationError
from verifier.note import VerifierKey, parse_note

ORIGIN = "witness.test/log"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WitnessProc]:
    """One witness process for the whole module; tests use their own log origins."""
    w = WitnessProc(tmp_path_factory.mktemp("witness"), "witness.test/w1")
    w.start()
    try:
        yield w
    finally:
        w.stop()


_counter = iter(range(10**6))


@pytest.fixture
def log(served: WitnessProc) -> MemLog:
    """A fresh log (own origin) that the served witness follows, with 5 entries."""
    m = MemLog(f"{ORIGIN}/{next(_counter)}")
    served.follow(m.vkey)
    m.grow(5)
    return m


def post(w: WitnessProc, body: bytes) -> httpx.Response:
    return httpx.post(f"{w.url}/add-checkpoint", content=body, timeout=10)


def cosigned_by(w: WitnessProc, log: MemLog, r: httpx.Response, size: int) -> int:
    """Check a 200 answer: one valid cosignature by the witness on ``size``; return its time."""
    assert r.status_code == 200, r.text
    note = parse_note(log.note(size) + r.text)
    policy = WitnessPolicy((VerifierKey.from_text(w.vkey),), 1)
    (cos,) = verify_cosignatures(note, policy)
    return cos.timestamp


# ---------------------------------------------------------------- 200


def test_first_checkpoint_from_zero_then_consistent_growth(
    served: WitnessProc, log: MemLog
) -> None:
    r = post(served, log.request(0))
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("\u2014 witness.test/w1 ") and r.text.endswith("\n")
    assert cosigned_by(served, log, r, 5) > 1_600_000_000
    log.grow(300)
    cosigned_by(served, log, post(served, log.request(5)), 305)
    # The same checkpoint again (old size = its size, empty proof) is cosigned again.
    cosigned_by(served, log, post(served, log.request(305)), 305)
    assert served.state(log.origin) == (305, [])


def test_extra_signatures_from_unknown_keys_are_ignored(served: WitnessProc, log: MemLog) -> None:
    stranger = MemLog(log.origin)
    extra = stranger.signer.sign_note(parse_note(log.note()).text).signatures[0]
    note = parse_note(log.note()).with_signatures([extra]).to_text()
    r = post(served, format_add_checkpoint(0, [], note))
    cosigned_by(served, log, r, 5)


# ---------------------------------------------------------------- 409


def test_409_carries_the_size_last_cosigned_as_text_x_tlog_size(
    served: WitnessProc, log: MemLog
) -> None:
    assert post(served, log.request(0)).status_code == 200
    log.grow(3)
    r = post(served, log.request(0, 8))  # stale old size
    assert r.status_code == 409
    assert r.headers["content-type"] == "text/x.tlog.size"
    assert r.text == "5\n"
    # The client resends from the size it learnt.
    cosigned_by(served, log, post(served, log.request(5, 8)), 8)
    r = post(served, log.request(3, 8))  # an old size the witness never had
    assert (r.status_code, r.text) == (409, "8\n")


def test_409_for_another_root_at_the_size_it_cosigned(served: WitnessProc, log: MemLog) -> None:
    assert post(served, log.request(0)).status_code == 200
    other = log.fork(3, "split ")
    other.grow(2)  # same size 5, different root
    r = post(served, other.request(5))
    assert (r.status_code, r.headers["content-type"], r.text) == (409, "text/x.tlog.size", "5\n")


# ---------------------------------------------------------------- 403 / 404


def test_404_for_an_origin_it_does_not_follow(served: WitnessProc) -> None:
    stranger = MemLog("nobody.test/log")
    stranger.grow(2)
    r = post(served, stranger.request(0))
    assert r.status_code == 404
    assert "unknown log origin" in r.text


def test_403_for_a_followed_origin_signed_by_another_key(served: WitnessProc, log: MemLog) -> None:
    impostor = MemLog(log.origin)  # same origin, a key the witness does not follow
    impostor.grow(5)
    r = post(served, impostor.request(0))
    assert r.status_code == 403
    assert "no signature by a trusted key" in r.text


def test_403_for_a_bad_signature_by_the_followed_key(served: WitnessProc, log: MemLog) -> None:
    note = parse_note(log.note())
    sig = note.signatures[0]
    bad = type(sig)(sig.name, sig.key_id, bytes(64))
    forged = type(note)(note.text, (bad,)).to_text()
    r = post(served, format_add_checkpoint(0, [], forged))
    assert r.status_code == 403
    assert "invalid signature" in r.text


# ---------------------------------------------------------------- 422


def test_422_for_a_proof_that_does_not_verify(served: WitnessProc, log: MemLog) -> None:
    assert post(served, log.request(0)).status_code == 200
    log.grow(20)
    proof = log.proof(5)
    flipped = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    r = post(served, format_add_checkpoint(5, flipped, log.note()))
    assert r.status_code == 422
    r = post(served, format_add_checkpoint(5, proof[:-1], log.note()))
    assert r.status_code == 422
    # A proof from the empty tree must be empty.
    fresh = MemLog(f"{log.origin}/fresh")
    served.follow(fresh.vkey)
    fresh.grow(4)
    r = post(served, format_add_checkpoint(0, [log.proof(5)[0]], fresh.note()))
    assert r.status_code == 422
    # Refused requests are kept as evidence, and nothing was cosigned.
    assert served.state(log.origin) == (5, [422, 422])
    entry = next(x for x in served.status()["logs"] if x["origin"] == log.origin)
    assert entry["size"] == 5
    assert [x["status"] for x in entry["refused"]] == [422, 422]
    assert "not consistent" in entry["refused"][0]["reason"]


def test_split_view_history_is_refused(served: WitnessProc, log: MemLog) -> None:
    """A fork with the same key and a different entry at an old index is never cosigned."""
    assert post(served, log.request(0)).status_code == 200
    fork = log.fork(2, "rewritten ")
    fork.grow(10)  # entries 2.. differ
    r = post(served, fork.request(5))
    assert r.status_code == 422
    assert "not consistent" in r.text


# ---------------------------------------------------------------- 400


def _bodies(log: MemLog) -> dict[str, bytes]:
    note = log.note().encode()
    h = base64.b64encode(bytes(32))
    return {
        "no old line": note,
        "old with leading zero": b"old 05\n\n" + note,
        "old negative": b"old -1\n\n" + note,
        "old with two spaces": b"old  0\n\n" + note,
        "old not decimal": b"old five\n\n" + note,
        "proof line not base64": b"old 0\n!!!!\n\n" + note,
        "proof line non-canonical base64": b"old 0\n" + h[:-2] + b"==\n\n" + note,
        "proof hash 31 bytes": b"old 0\n" + base64.b64encode(bytes(31)) + b"\n\n" + note,
        "64 proof lines": b"old 0\n" + (h + b"\n") * 64 + b"\n" + note,
        "no blank line": b"old 0\n" + note,
        "not a note": b"old 0\n\nhello\n",
        "checkpoint without root": b"old 0\n\n"
        + log.signer.sign_note(f"{log.origin}\n5\n").to_text().encode(),
        "not UTF-8": b"old 0\n\n\xff\xfe\n",
        "old size beyond checkpoint": b"old 9\n\n" + note,
        "empty body": b"",
    }


CASES = list(_bodies(MemLog("x.test/log")).keys())


@pytest.mark.parametrize("case", CASES)
def test_400_for_malformed_requests(served: WitnessProc, log: MemLog, case: str) -> None:
    r = post(served, _bodies(log)[case])
    assert r.status_code == 400, (case, r.status_code, r.text)
    assert r.text.endswith("\n") and "Traceback" not in r.text
    assert served.state(log.origin) == (None, [])  # nothing cosigned, nothing to keep


def test_400_for_a_body_over_the_limit(served: WitnessProc) -> None:
    r = post(served, b"old 0\n" + b"A" * (70 * 1024))
    assert r.status_code == 400
    assert "larger than" in r.text


def test_other_methods_and_paths(served: WitnessProc) -> None:
    assert httpx.get(f"{served.url}/add-checkpoint").status_code == 405
    assert httpx.post(f"{served.url}/nothing", content=b"x").status_code == 404


# ---------------------------------------------------------------- state


def test_check_and_persist_are_atomic_under_concurrent_requests(tmp_path: Path) -> None:
    """Many racing requests from the same old size: exactly one wins; the size never
    goes back (the race the spec warns about)."""
    w = Witness.init(tmp_path / "w", "witness.test/race")
    log = MemLog(ORIGIN)
    w.follow(log.vkey)
    log.grow(1)
    w.add_checkpoint(log.request(0))
    sizes = [10, 20, 30, 40, 50, 60, 70, 80]
    log.grow(80)
    bodies = {n: log.request(1, n) for n in sizes}
    start = threading.Barrier(len(sizes))
    wins: list[int] = []
    losses: list[tuple[int, int]] = []

    def go(n: int) -> None:
        start.wait()
        try:
            w.add_checkpoint(bodies[n])
            wins.append(n)
        except WitnessError as e:
            losses.append((n, e.status))

    threads = [threading.Thread(target=go, args=(n,)) for n in sizes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == len(sizes) - 1
    assert {status for _, status in losses} == {409}
    latest = w.store.latest(ORIGIN)
    assert latest is not None and latest.size == wins[0]
    w.close()


def test_state_is_durable_and_history_append_only(tmp_path: Path) -> None:
    home = tmp_path / "w"
    w = Witness.init(home, "witness.test/durable")
    log = MemLog(ORIGIN)
    w.follow(log.vkey)
    log.grow(7)
    w.add_checkpoint(log.request(0))
    w.close()
    again = Witness.open(home)
    latest = again.store.latest(ORIGIN)
    assert latest is not None and (latest.size, latest.root) == (7, log.root())
    assert again.store.count_cosigned(ORIGIN) == 1
    with again.store.transaction() as c, pytest.raises(Exception, match="append-only"):
        c.execute("delete from cosigned")
    again.close()
    # A store that is not a witness database is refused.
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(Exception, match=r"not a witness|cannot open"):
        WitnessStore(tmp_path / "junk.db")


def test_never_cosigns_two_trees_even_across_restarts(tmp_path: Path) -> None:
    home = tmp_path / "w"
    w = Witness.init(home, "witness.test/restart")
    log = MemLog(ORIGIN)
    w.follow(log.vkey)
    log.grow(4)
    w.add_checkpoint(log.request(0))
    w.close()
    w = Witness.open(home)
    fork = log.fork(1, "other ")
    fork.grow(6)
    with pytest.raises(Exception, match="not consistent") as info:
        w.add_checkpoint(fork.request(4))
    assert getattr(info.value, "status", None) == 422
    with pytest.raises(Exception, match="old size 0") as info:
        w.add_checkpoint(fork.request(0))
    assert getattr(info.value, "status", None) == 409
    w.close()


def test_cosignature_is_over_the_exact_checkpoint(tmp_path: Path) -> None:
    w = Witness.init(tmp_path / "w", "witness.test/exact")
    log = MemLog(ORIGIN)
    w.follow(log.vkey)
    log.grow(3)
    line = w.add_checkpoint(log.request(0))
    policy = WitnessPolicy((w.verifier_key,), 1)
    verify_cosignatures(parse_note(log.note(3) + line), policy)
    log.grow(1)
    with pytest.raises(VerificationError, match="invalid cosignature"):
        verify_cosignatures(parse_note(log.note(4) + line), policy)
    w.close()


# ---------------------------------------------------------------- CLI


def test_witness_cli_and_its_errors(tmp_path: Path) -> None:
    home = tmp_path / "w"
    r = el(home, "witness", "init", "--name", "witness.test/cli")
    assert r.returncode == 0, r.stderr
    vkey = VerifierKey.from_text(r.stdout.strip())
    assert vkey.alg == 0x04 and vkey.name == "witness.test/cli"
    assert (home / "keys" / "witness.key").stat().st_mode & 0o077 == 0
    assert el(home, "witness", "vkey").stdout.strip() == vkey.to_text()
    key_pem = (home / "keys" / "witness.key").read_text()
    secret_line = key_pem.splitlines()[1]
    for args, code, message in [
        (["witness", "init", "--name", "witness.test/cli"], 1, "already holds a witness"),
        (["witness", "follow", "not-a-key"], 2, "verifier key"),
        (["witness", "follow", vkey.to_text()], 2, "must be an Ed25519 key"),
    ]:
        r = el(home, *args)
        assert r.returncode == code, (args, r.stderr)
        assert r.stderr.startswith("error: ") and message in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    r = el(tmp_path / "other", "witness", "init", "--name", "bad name")
    assert r.returncode == 1 and "schema-less URL" in r.stderr
    r = el(tmp_path / "none", "witness", "serve", "--port", "1")
    assert r.returncode == 1 and "no witness in" in r.stderr
    log = MemLog(ORIGIN)
    r = el(home, "witness", "follow", log.vkey)
    assert r.returncode == 0 and "following witness.test/log" in r.stderr
    status = el(home, "witness", "status")
    assert secret_line not in status.stdout + status.stderr
