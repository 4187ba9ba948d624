"""The ledger anchors every checkpoint: three witness processes (2 of 3) and a real TSA.

Publication works with all witnesses and with one killed; with two killed
nothing is published while deposits still succeed, and publication resumes when
one comes back. A rewritten history (same key, different entry at an old index)
is refused by every witness and the ledger says why. Adversarial: a witness
answering with a key other than the configured one does not count.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from anchoring_support import (
    TsaProc,
    WitnessProc,
    configure,
    deposit,
    el,
    free_port,
    start_all,
)
from fastapi.testclient import TestClient
from pki import Ca, issue_tsa, make_ca

from api.app import BackgroundSealer, create_app
from ledger.anchoring import AnchoringError, Timeouts, audit_publications, trust_anchoring
from ledger.audit import audit
from ledger.config import load_config, save_config, with_seal
from ledger.core import Ledger
from ledger.errors import NotFound
from ledger.export import export
from ledger.services import OPERATOR, Services
from verifier.cosignature import WitnessPolicy, open_cosigned_checkpoint
from verifier.logaudit import audit_log
from verifier.note import VerifierKey, parse_note
from verifier.timestamp import load_roots, verify_timestamp
from verifier.trust import load_trust

pytestmark = pytest.mark.slow


class Net:
    """Three witnesses and a TSA, shared by the module; each test has its own log."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.witnesses = [WitnessProc(root, f"w{i}.anchoring.test/witness") for i in range(3)]
        self.ca: Ca = make_ca(root / "ca")
        self.tsa = TsaProc(issue_tsa(self.ca, root / "tsa").config, root / "tsa.log")
        self.count = 0

    def ledger(self, name: str, quorum: int = 2, tsa: bool = True) -> Ledger:
        """A new ledger (own origin) followed by every witness, anchored 2 of 3 + TSA."""
        self.count += 1
        led = Ledger.init(self.root / f"{name}-{self.count}", origin=f"{name}.test/{self.count}")
        for w in self.witnesses:
            w.follow(led.verifier_key.to_text())
        return configure(led, self.witnesses, quorum, (self.tsa.url, self.ca.cert) if tsa else None)

    def policy(self) -> WitnessPolicy:
        return WitnessPolicy(tuple(VerifierKey.from_text(w.vkey) for w in self.witnesses), 2)

    def restart_all(self) -> None:
        down = [p for p in [*self.witnesses, self.tsa] if p.proc is None]
        start_all(down)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    n = Net(tmp_path_factory.mktemp("net"))
    start_all([*n.witnesses, n.tsa])
    try:
        yield n
    finally:
        for p in [*n.witnesses, n.tsa]:
            p.stop()


@pytest.fixture
def up(net: Net) -> Iterator[Net]:
    """The network with every process running, before and after the test."""
    net.restart_all()
    try:
        yield net
    finally:
        net.restart_all()


def cosigners(note: str) -> set[str]:
    return {s.name for s in parse_note(note).signatures[1:]}


# ---------------------------------------------------------------- publication


def test_published_checkpoint_is_cosigned_timestamped_and_served(up: Net, tmp_path: Path) -> None:
    led = up.ledger("pub")
    try:
        deposit(led, 40)
        cp = led.seal()
        assert cp.size == 40
        assert cosigners(cp.note) == {w.name for w in up.witnesses}
        signed, cos = open_cosigned_checkpoint(
            cp.note, [led.verifier_key], up.policy(), led.config.origin
        )
        assert (signed.checkpoint.size, signed.checkpoint.root) == (40, cp.root)
        assert len(cos) == 3
        # The token: over the checkpoint body, chained to the TSA root, stored with it.
        token = led.checkpoint_token(40)
        assert token is not None
        roots = load_roots([up.ca.cert.read_bytes()])
        verify_timestamp(token, parse_note(cp.note).text.encode(), roots)
        (tmp_path / "t.der").write_bytes(token)
        (tmp_path / "body").write_text(parse_note(cp.note).text)
        out = subprocess.run(
            [
                *("openssl", "ts", "-verify", "-token_in", "-in", str(tmp_path / "t.der")),
                *("-data", str(tmp_path / "body"), "-CAfile", str(up.ca.cert)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "Verification: OK" in out.stdout, out.stderr
        # Served: the latest at /checkpoint, any published one with its token under /v1.
        client = TestClient(create_app(led))
        assert client.get("/checkpoint").text == cp.note
        body = client.get("/v1/checkpoints/40").json()
        assert body["size"] == 40 and body["note"] == cp.note
        assert base64.b64decode(body["token"]) == token
        empty = client.get("/v1/checkpoints/0").json()
        assert empty["token"] is None  # published before anchoring was configured
        r = client.get("/v1/checkpoints/39")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert client.get("/v1/checkpoints/-1").status_code == 422
        # Proofs are to published checkpoints; the log audits clean.
        cp2, proof = led.inclusion_proof(7)
        assert cp2 == cp and proof
        with pytest.raises(NotFound):
            led.checkpoint_token(39)
        audit(led.store, led.verifier_key, led.config.origin)
        # A static export carries the cosigned checkpoint; a tlog-tiles audit accepts it.
        export(led.store, tmp_path / "export", led.latest_checkpoint(), False)
        assert (tmp_path / "export" / "checkpoint").read_text() == cp.note
        report = audit_log(tmp_path / "export", led.verifier_key)
        assert report.valid, [c for c in report.checks if not c.ok]
        # The trust file part: witnesses with quorum and the TSA roots, as agreed.
        part = trust_anchoring(led)
        assert part["witnesses"] == up.policy().to_json()
        assert len(part["tsa_roots"]) == 1 and "BEGIN CERTIFICATE" in part["tsa_roots"][0]
        trust = load_trust(
            json.dumps(
                {
                    "format": "evidence-trust/v1",
                    "logs": [{"origin": led.config.origin, "vkey": led.verifier_key.to_text()}],
                    "notaries": [],
                    **part,
                }
            ).encode()
        )
        assert trust.witnesses == up.policy()
    finally:
        led.close()


def test_one_witness_down_still_publishes_two_down_does_not_and_resumes(up: Net) -> None:
    w0, w1, w2 = up.witnesses
    led = up.ledger("quorum")
    try:
        deposit(led, 10, "a")
        assert led.seal().size == 10
        w0.kill()
        deposit(led, 10, "b")
        cp = led.seal()
        assert cp.size == 20 and cosigners(cp.note) == {w1.name, w2.name}
        w1.kill()
        receipts = [Services(led).deposits.deposit_hash(OPERATOR, f"{i:064x}") for i in range(5)]
        assert [r.status for r in receipts] == ["durable"] * 5
        with pytest.raises(AnchoringError) as info:
            led.seal()
        err = info.value
        assert err.size == 25
        assert "1 of 3 witnesses cosigned, quorum is 2" in str(err)
        assert err.reasons[w0.name].startswith("unreachable") and err.reasons[w2.name] == (
            "cosigned"
        )
        assert led.latest_checkpoint().size == 20  # nothing new published
        assert led.store.latest_checkpoint().size == 25  # but sealed and durable
        stats = Services(led).stats()
        assert stats["published_size"] == 20 and stats["checkpoint_size"] == 25
        assert stats["anchoring"]["quorum"] == 2
        assert stats["anchoring"]["last_error"].startswith("checkpoint 25 not published")
        # Deposits keep being accepted while the quorum is missing.
        deposit(led, 3, "c")
        assert led.store.size() == 28
        w0.start()  # w0 last cosigned 10: the ledger learns it from a 409 and resends
        cp = led.seal()
        assert cp.size == 28 and cosigners(cp.note) == {w0.name, w2.name}
        assert up.witnesses[0].state(led.config.origin)[0] == 28
        open_cosigned_checkpoint(cp.note, [led.verifier_key], up.policy(), led.config.origin)
    finally:
        led.close()


def test_background_sealer_publishes_once_the_quorum_is_back(up: Net) -> None:
    home = up.ledger("bg").config.home
    save_config(with_seal(load_config(home), interval=0.1))
    led = Ledger.open(home)
    sealer = BackgroundSealer(led)
    try:
        up.witnesses[0].kill()
        up.witnesses[1].kill()
        sealer.start()
        deposit(led, 50)
        time.sleep(1.0)  # several sealing rounds, all refused
        assert led.store.latest_checkpoint().size == 50
        assert led.latest_checkpoint().size == 0
        up.witnesses[1].start()
        deadline = time.monotonic() + 20
        while led.latest_checkpoint().size < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        cp = led.latest_checkpoint()
        assert cp.size == 50 and cosigners(cp.note) == {up.witnesses[1].name, up.witnesses[2].name}
    finally:
        sealer.stop()
        led.close()


def test_tsa_down_means_not_published(up: Net) -> None:
    led = up.ledger("tsa")
    try:
        deposit(led, 4)
        up.tsa.kill()
        with pytest.raises(AnchoringError, match="no valid timestamp token") as info:
            led.seal()
        assert info.value.reasons["tsa"].startswith("unreachable")
        assert led.latest_checkpoint().size == 0
        up.tsa.start()
        cp = led.seal()
        assert cp.size == 4 and led.checkpoint_token(4) is not None
    finally:
        led.close()


def test_the_ledger_learns_each_witness_size_from_409(up: Net) -> None:
    """Witnesses added to a log that already published (they have seen nothing), and a
    second ledger process moving the witnesses on: both resolved by the 409 answer."""
    up.count += 1
    led = Ledger.init(up.root / f"late-{up.count}", origin=f"late.test/{up.count}")
    deposit(led, 5, "before")
    assert led.seal().size == 5  # published without anchoring
    for w in up.witnesses:
        w.follow(led.verifier_key.to_text())
    led = configure(led, up.witnesses, 3, None)
    other = Ledger.open(led.config.home)
    try:
        deposit(led, 2, "a")
        assert led.seal().size == 7  # first guess 5, each witness answers 409 "0"
        assert [w.known_size for w in led.anchor.witnesses] == [7, 7, 7]
        deposit(other, 3, "b")
        assert other.seal().size == 10  # another process: witnesses now at 10
        deposit(led, 1, "c")
        cp = led.seal()  # believes 7, learns 10 from the 409, proves 10 -> 11
        assert cp.size == 11 and len(cosigners(cp.note)) == 3
        assert [w.state(led.config.origin)[0] for w in up.witnesses] == [11, 11, 11]
    finally:
        other.close()
        led.close()


def test_a_backlog_is_published_once_the_policy_is_removed(up: Net) -> None:
    led = up.ledger("backlog", quorum=3, tsa=False)
    home = led.config.home
    try:
        up.witnesses[2].kill()
        deposit(led, 6)
        with pytest.raises(AnchoringError):
            led.seal()
    finally:
        led.close()
    cfg = load_config(home)
    save_config(replace(cfg, witnesses=(), quorum=0))
    led = Ledger.open(home)
    try:
        cp = led.seal()  # nothing new to seal; the sealed backlog is published as it is
        assert cp.size == 6 and cosigners(cp.note) == set()
        assert led.latest_checkpoint() == cp
    finally:
        led.close()


def test_audit_rechecks_publications_and_catches_edits(up: Net) -> None:
    led = up.ledger("audit")
    home = led.config.home
    try:
        deposit(led, 9)
        cp = led.seal()
        assert audit_publications(led) == 2
    finally:
        led.close()
    r = el(home, "audit")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["publications"] == 2
    # Edit the published note behind the triggers: flip a bit of one cosignature.
    note = parse_note(cp.note)
    name = VerifierKey.from_text(up.witnesses[0].vkey).name
    edited = note.text + "\n"
    for sig in note.signatures:
        if sig.name == name:
            sig = type(sig)(
                sig.name, sig.key_id, sig.signature[:-1] + bytes([sig.signature[-1] ^ 1])
            )
        edited += sig.to_line()
    db = sqlite3.connect(home / "ledger.db", isolation_level=None)
    try:
        db.execute("drop trigger publications_no_update")
        db.execute("update publications set note = ? where size = 9", (edited,))
    finally:
        db.close()
    r = el(home, "audit")
    assert r.returncode == 1
    assert r.stderr.startswith("error: publication 9: ") and "invalid signature" in r.stderr


# ---------------------------------------------------------------- split view


def test_rewritten_history_is_refused_by_every_witness_and_the_log_says_why(
    up: Net, tmp_path: Path
) -> None:
    honest = up.ledger("split")
    home = honest.config.home
    deposit(honest, 3, "common")
    assert honest.seal().size == 3
    honest.close()
    # The operator copies everything, key included, and rewrites from index 3 on.
    forged_home = tmp_path / "forged"
    shutil.copytree(home, forged_home)
    cfg = load_config(forged_home)
    forged_db = "sqlite:///" + str((forged_home / "ledger.db").resolve())
    save_config(replace(cfg, home=forged_home, database_url=forged_db))
    honest = Ledger.open(home)
    forged = Ledger.open(forged_home)
    try:
        assert forged.verifier_key == honest.verifier_key
        deposit(honest, 4, "honest")
        assert honest.seal().size == 7
        # Same size, another root: every witness holds the honest tree of size 7.
        deposit(forged, 4, "forged")
        with pytest.raises(AnchoringError) as info:
            forged.seal()
        assert "0 of 3 witnesses cosigned" in str(info.value)
        for w in up.witnesses:
            assert "another tree of size 7 (split view?)" in info.value.reasons[w.name]
        # Longer: the consistency proof from the honest size 7 does not verify.
        deposit(forged, 2, "more")
        with pytest.raises(AnchoringError) as info:
            forged.seal()
        for w in up.witnesses:
            reason = info.value.reasons[w.name]
            assert reason.startswith("refused: 422") and "not consistent" in reason
            assert 422 in w.state(forged.config.origin)[1]  # the witness keeps the evidence
        assert forged.latest_checkpoint().size == 3  # nothing forged was ever published
        # The operator's CLI says why too, in one line, with a failing exit code.
        forged.close()
        r = el(forged_home, "seal")
        assert r.returncode == 1
        assert r.stderr.startswith("error: checkpoint 9 not published: 0 of 3 witnesses")
        assert len(r.stderr.strip().splitlines()) == 1
        # The honest log is unaffected.
        deposit(honest, 1, "after")
        assert honest.seal().size == 8
    finally:
        honest.close()
        forged.close()


# ---------------------------------------------------------------- adversarial


def test_a_witness_answering_with_another_key_does_not_count(up: Net) -> None:
    led = up.ledger("impostor", quorum=3, tsa=False)
    home = led.config.home
    led.close()
    # The URL of w2, but the key the ledger trusts for it is someone else's.
    other = WitnessProc(up.root / "impostor", "w2.anchoring.test/witness")
    cfg = load_config(home)
    entries = list(cfg.witnesses)
    entries[2] = replace(entries[2], vkey=other.vkey)
    save_config(replace(cfg, witnesses=tuple(entries)))
    led = Ledger.open(home)
    try:
        deposit(led, 2)
        with pytest.raises(AnchoringError, match="2 of 3 witnesses cosigned, quorum is 3") as info:
            led.seal()
        assert "0 cosignatures by its configured key" in info.value.reasons[up.witnesses[2].name]
    finally:
        led.close()


class _BlackHole:
    """Accepts connections and reads forever, never answering (a hung witness)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_deposits_flow_while_a_witness_hangs(up: Net) -> None:
    """No transaction is held while anchoring: a hung witness delays publication by at
    most the round's limit, never a deposit."""
    hole = _BlackHole()
    led = up.ledger("hang", quorum=3, tsa=False)
    home = led.config.home
    led.close()
    cfg = load_config(home)
    entries = list(cfg.witnesses)
    entries[0] = replace(entries[0], url=f"http://127.0.0.1:{hole.port}")
    save_config(replace(cfg, witnesses=tuple(entries)))
    led = Ledger.open(home)
    led.anchor.set_limits(Timeouts(request=1.5, retries=0, round=2.0, grace=0.2))
    try:
        deposit(led, 5)
        result: list[BaseException | None] = []

        def seal() -> None:
            try:
                led.seal()
                result.append(None)
            except AnchoringError as e:
                result.append(e)

        t = threading.Thread(target=seal)
        started = time.monotonic()
        t.start()
        time.sleep(0.3)
        latencies = []
        for i in range(20):
            t0 = time.monotonic()
            Services(led).deposits.deposit_hash(OPERATOR, f"{i + 1000:064x}")
            latencies.append(time.monotonic() - t0)
        assert t.is_alive(), "the round should still be waiting for the hung witness"
        t.join(10)
        assert time.monotonic() - started < 4
        assert max(latencies) < 0.5, latencies
        err = result[0]
        assert isinstance(err, AnchoringError)
        assert err.reasons[up.witnesses[0].name].startswith("unreachable: ReadTimeout")
    finally:
        led.close()
        hole.close()


def test_a_hung_witness_neither_delays_a_met_quorum_nor_is_asked_twice(up: Net) -> None:
    hole = _BlackHole()
    led = up.ledger("hang2", quorum=2, tsa=False)
    home = led.config.home
    led.close()
    cfg = load_config(home)
    entries = list(cfg.witnesses)
    entries[0] = replace(entries[0], url=f"http://127.0.0.1:{hole.port}")
    save_config(replace(cfg, witnesses=tuple(entries)))
    led = Ledger.open(home)
    led.anchor.set_limits(Timeouts(request=3.0, retries=0, round=4.0, grace=0.2))
    try:
        for n in (1, 2):
            deposit(led, 3, f"round {n}")
            t0 = time.monotonic()
            cp = led.seal()  # w1 and w2 answer at once; w0 gets the grace period only
            assert time.monotonic() - t0 < 1.5
            assert cp.size == 3 * n and len(cosigners(cp.note)) == 2
        assert led.anchor.last_error is None
        # The second round did not open a second request to the hung witness.
        assert len(hole.conns) == 1
    finally:
        led.close()
        hole.close()


# ---------------------------------------------------------------- both backends


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_anchored_publication_on_each_backend(
    up: Net, backend: str, store_url: str, home: Path
) -> None:
    led = Ledger.init(home, origin=f"backend.test/{backend}/{up.count}", database_url=store_url)
    up.count += 1
    for w in up.witnesses:
        w.follow(led.verifier_key.to_text())
    led = configure(led, up.witnesses, 2, (up.tsa.url, up.ca.cert))
    try:
        deposit(led, 300)
        cp = led.seal(batch_max=128)  # three sealed checkpoints, the last one published
        assert [c.size for c in led.store.checkpoints()] == [0, 128, 256, 300]
        assert [p.size for p in led.store.publications()] == [0, 300]
        assert cp.size == 300 and len(cosigners(cp.note)) == 3
        assert led.checkpoint_token(300) is not None
        with pytest.raises(NotFound):
            led.inclusion_proof(5, 128)  # sealed, never published
        led.inclusion_proof(5, 300)
        audit(led.store, led.verifier_key, led.config.origin)
    finally:
        led.close()
