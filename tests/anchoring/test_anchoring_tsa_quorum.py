"""Several TSAs, k of n: configuration, sealing, the trust file and the verifier.

Two ``openssl ts`` TSAs under two unrelated roots (a domestic and an
international one, say). With quorum 2 a checkpoint is published only with
both tokens; one TSA down means nothing is published while deposits go on;
back, the next seal publishes. Every valid token is kept (a token set), the
trust file carries the policy, and the verifier counts distinct TSAs against
its quorum. Single-TSA homes, trust files and certificates keep working.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anchoring_support import TsaProc, configure, deposit, el, start_all
from click.testing import CliRunner
from pki import Ca, issue_tsa, make_ca

from ledger.accounts import create_account
from ledger.anchoring import AnchoringError, audit_publications, trust_anchoring
from ledger.certificates import issue_certificate, package_certificate, trust_export
from ledger.cli import cli
from ledger.config import load_config
from ledger.core import Ledger
from ledger.services import OPERATOR, Services
from verifier import der
from verifier.anchors import timestamp_check
from verifier.cms import split_token_set
from verifier.errors import MalformedError, VerificationError
from verifier.note import parse_note
from verifier.package import verify_package
from verifier.timestamp import encode_token_set, load_roots, verify_token_set
from verifier.trust import TsaAuthority, TsaPolicy, load_trust

pytestmark = pytest.mark.slow


class Two:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cas: list[Ca] = [make_ca(root / "ca-cn", "Domestic TSA Root"), make_ca(root / "ca-in")]
        self.procs = [
            TsaProc(issue_tsa(ca, root / f"tsa{i}", cn=f"TSA {i}").config, root / f"tsa{i}.log")
            for i, ca in enumerate(self.cas)
        ]
        self.count = 0

    def ledger(self, quorum: int = 2) -> Ledger:
        self.count += 1
        led = Ledger.init(self.root / f"home{self.count}", origin=f"tsas.test/{self.count}")
        pairs = [(p.url, ca.cert) for p, ca in zip(self.procs, self.cas, strict=True)]
        return configure(led, [], 0, tsas=pairs, tsa_quorum=quorum)

    def policy(self, quorum: int = 2) -> TsaPolicy:
        return TsaPolicy(
            tuple(
                TsaAuthority(p.url, tuple(load_roots([ca.cert.read_bytes()])))
                for p, ca in zip(self.procs, self.cas, strict=True)
            ),
            quorum,
        )


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Two]:
    t = Two(tmp_path_factory.mktemp("two-tsas"))
    start_all(t.procs)
    try:
        yield t
    finally:
        for p in t.procs:
            p.stop()


@pytest.fixture
def up(two: Two) -> Iterator[Two]:
    start_all([p for p in two.procs if p.proc is None])
    try:
        yield two
    finally:
        start_all([p for p in two.procs if p.proc is None])


def trust_of(led: Ledger) -> dict[str, Any]:
    return {
        "format": "evidence-trust/v1",
        "logs": [{"origin": led.config.origin, "vkey": led.verifier_key.to_text()}],
        "notaries": [],
        **trust_anchoring(led),
    }


# ---------------------------------------------------------------- sealing


def test_quorum_two_one_down_nothing_published_back_published(up: Two) -> None:
    led = up.ledger(quorum=2)
    try:
        deposit(led, 5, "a")
        cp = led.seal()
        assert cp.size == 5
        token = led.checkpoint_token(5)
        assert token is not None and len(split_token_set(token)) == 2
        body = parse_note(cp.note).text.encode()
        stamped = verify_token_set(token, body, up.policy())
        assert [name for name, _ in stamped.stamps] == [p.url for p in up.procs]
        assert {i.tsa for _, i in stamped.stamps} == {"CN=TSA 0", "CN=TSA 1"}
        up.procs[1].kill()
        deposit(led, 4, "b")
        with pytest.raises(AnchoringError) as info:
            led.seal()
        assert "1 of 2 TSAs timestamped, TSA quorum is 2" in str(info.value)
        assert info.value.reasons[f"tsa {up.procs[1].url}"].startswith("unreachable")
        assert info.value.reasons[f"tsa {up.procs[0].url}"] == "timestamped"
        assert led.latest_checkpoint().size == 5  # nothing new published
        stats = Services(led).stats()["anchoring"]
        assert stats["tsas"] == [p.url for p in up.procs] and stats["tsa_quorum"] == 2
        assert stats["last_error"].startswith("checkpoint 9 not published")
        assert led.store.latest_checkpoint().size == 9  # sealed and durable
        deposit(led, 1, "c")  # deposits keep being accepted
        up.procs[1].start()
        cp = led.seal()
        assert cp.size == 10
        token = led.checkpoint_token(10)
        assert token is not None and len(split_token_set(token)) == 2
        verify_token_set(token, parse_note(cp.note).text.encode(), up.policy())
        assert audit_publications(led) == 3
        trust = load_trust(json.dumps(trust_of(led)).encode())
        assert trust.tsa_policy == up.policy()
        check, when = timestamp_check(parse_note(cp.note).text, token, trust)
        assert check.ok and when is not None
        assert "2 of 2 trusted TSAs timestamped the checkpoint" in check.reason
    finally:
        led.close()
    r = el(led.config.home, "audit")
    assert r.returncode == 0, r.stderr


def test_quorum_one_of_two_keeps_every_token_that_arrives(up: Two) -> None:
    led = up.ledger(quorum=1)
    try:
        deposit(led, 3)
        cp = led.seal()
        token = led.checkpoint_token(cp.size)
        assert token is not None and len(split_token_set(token)) == 2  # both kept
        up.procs[0].kill()
        deposit(led, 3, "x")
        cp = led.seal()  # one of two is enough
        token = led.checkpoint_token(cp.size)
        assert token is not None and split_token_set(token) == [token]  # a single token
        body = parse_note(cp.note).text.encode()
        assert len(verify_token_set(token, body, up.policy(1)).stamps) == 1
        with pytest.raises(VerificationError, match="1 of 2 TSAs timestamped"):
            verify_token_set(token, body, up.policy(2))
        trust = load_trust(json.dumps(trust_of(led)).encode())
        assert trust.tsa_policy is not None and trust.tsa_policy.quorum == 1
    finally:
        led.close()


def test_a_certificate_and_package_carry_every_token(up: Two, tmp_path: Path) -> None:
    led = up.ledger(quorum=2)
    try:
        create_account(led, "notary", "Notary Li")
        receipt = Services(led).deposits.deposit_file(
            OPERATOR, io.BytesIO(b"two tsas " * 50), file_name="a.txt"
        )
        eid = receipt.evidence_id
        led.seal()
        issued = issue_certificate(led, eid, "Notary Li")
        package = package_certificate(led, issued.certificate_id, tmp_path / "a.zip")
        doc = trust_export(led)
    finally:
        led.close()
    assert doc["tsa_roots"] == [] and doc["tsas"]["quorum"] == 2
    report = verify_package(package, load_trust(json.dumps(doc).encode()))
    assert report.valid, [(c.key, c.reason) for c in report.failed]
    assert "2 of 2 trusted TSAs" in report.check("timestamp").reason
    # A policy asking for a third TSA the ledger never used: refused with the count.
    extra = make_ca(tmp_path / "third", "Third TSA Root")
    third = {"name": "https://third.example/", "roots": [extra.cert.read_text()]}
    tsas = {"quorum": 3, "authorities": [*doc["tsas"]["authorities"], third]}
    report = verify_package(package, load_trust(json.dumps({**doc, "tsas": tsas}).encode()))
    assert {c.key for c in report.failed} == {"timestamp", "timestamp_renewal"}
    assert "2 of 3 TSAs timestamped the checkpoint, quorum is 3" in report.check("timestamp").reason
    # The same package against the older single-root form of either TSA alone:
    # the checkpoint's timestamp is valid; the PDF's signature timestamp (made by
    # one TSA) is trusted only when that TSA's roots are the ones given.
    trusted_pdf_stamp = 0
    for authority in doc["tsas"]["authorities"]:
        single = {k: v for k, v in doc.items() if k != "tsas"} | {"tsa_roots": authority["roots"]}
        alone = verify_package(package, load_trust(json.dumps(single).encode()))
        assert {c.key for c in alone.failed} <= {"pdf_timestamp"}, alone.failed
        trusted_pdf_stamp += alone.valid
    assert trusted_pdf_stamp == 1


# ---------------------------------------------------------------- the verifier's count


def test_one_tsa_counts_once(up: Two) -> None:
    led = up.ledger(quorum=2)
    try:
        deposit(led, 2)
        cp = led.seal()
        token = led.checkpoint_token(cp.size)
    finally:
        led.close()
    assert token is not None
    first, second = split_token_set(token)
    body = parse_note(cp.note).text.encode()
    # Two authorities sharing TSA 0's root, and TSA 0's token twice: it counts once.
    shared = tuple(load_roots([up.cas[0].cert.read_bytes()]))
    policy = TsaPolicy((TsaAuthority("a", shared), TsaAuthority("b", shared)), 2)
    with pytest.raises(VerificationError, match=r"1 of 2 TSAs .* is already counted"):
        verify_token_set(encode_token_set([first, first]), body, policy)
    with pytest.raises(VerificationError, match="1 of 2 TSAs"):
        verify_token_set(encode_token_set([first, first]), body, up.policy())
    # Order does not matter; a token over another body does not count.
    assert len(verify_token_set(encode_token_set([second, first]), body, up.policy()).stamps) == 2
    with pytest.raises(VerificationError, match="over another message"):
        verify_token_set(token, body + b"x", up.policy(1))
    # Malformed sets.
    pair = encode_token_set([first, second])
    assert pair[1] == 0x82
    for bad, message in [
        (b"\x30\x00", "neither a TimeStampToken nor a set"),
        (b"\x30\x03\x02\x01\x00", "neither a TimeStampToken nor a set"),
        (b"\x30\x84\x00\x00" + pair[2:], "not in DER form"),
        (der.tlv(0x30, first * 17), "17 tokens, limit 16"),
    ]:
        with pytest.raises(MalformedError, match=message):
            verify_token_set(bad, body, up.policy())
    with pytest.raises(MalformedError, match="expected 1 to 16"):
        encode_token_set([first] * 17)


# ---------------------------------------------------------------- configuration


def run(home: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--home", str(home), *args])


def test_tsa_add_quorum_remove_and_compatibility(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Ledger.init(home, origin="cfg.test/log").close()
    a, b = make_ca(tmp_path / "a", "Root A"), make_ca(tmp_path / "b", "Root B")
    r = run(home, "tsa", "add", "http://a.example/", "--roots", str(a.cert))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["quorum"] == 1
    raw = json.loads((home / "config.json").read_text())
    assert raw["tsa"]["url"] == "http://a.example/" and "tsas" not in raw  # legacy form
    r = run(home, "tsa", "add", "http://b.example/", "--roots", str(b.cert))
    doc = json.loads(r.stdout)
    assert [t["url"] for t in doc["tsas"]] == ["http://a.example/", "http://b.example/"]
    assert doc["tsas"][1]["roots"] == ["CN=Root B"]
    assert run(home, "tsa", "quorum", "2").exit_code == 0
    raw = json.loads((home / "config.json").read_text())
    assert raw["tsa_quorum"] == 2 and len(raw["tsas"]) == 2 and raw.get("tsa") is None
    cfg = load_config(home)
    assert (len(cfg.tsas), cfg.tsa_quorum) == (2, 2)
    assert json.loads(run(home, "tsa", "list").stdout)["quorum"] == 2
    for args, message in [
        (("tsa", "quorum", "3"), "between 1 and 2"),
        (("tsa", "quorum", "0"), "between 1 and 2"),
        (("tsa", "remove", "http://a.example/"), "lower it first"),
        (("tsa", "remove", "http://nowhere/"), "not configured"),
        (("tsa", "add", "http://a.example/", "--roots", str(a.cert)), "already configured"),
        (("tsa", "add", "ftp://c/", "--roots", str(a.cert)), "http://"),
        (("tsa", "add", "http://c/", "--roots", str(home / "config.json")), "PEM"),
    ]:
        r = run(home, *args)
        assert r.exit_code == 2 and message in r.output, (args, r.output)
    assert run(home, "tsa", "quorum", "1").exit_code == 0
    r = run(home, "tsa", "remove", "http://a.example/")
    assert r.exit_code == 0 and [t["url"] for t in json.loads(r.stdout)["tsas"]] == [
        "http://b.example/"
    ]
    assert load_config(home).tsa is not None
    assert run(home, "tsa", "remove", "http://b.example/").exit_code == 0
    cfg = load_config(home)
    assert (cfg.tsas, cfg.tsa_quorum, cfg.tsa) == ((), 0, None)
    # tsa set replaces every TSA with one; tsa clear removes all.
    run(home, "tsa", "add", "http://a.example/", "--roots", str(a.cert))
    run(home, "tsa", "add", "http://b.example/", "--roots", str(b.cert))
    assert run(home, "tsa", "set", "http://c.example/", "--roots", str(a.cert)).exit_code == 0
    cfg = load_config(home)
    assert [t.url for t in cfg.tsas] == ["http://c.example/"] and cfg.tsa_quorum == 1
    assert run(home, "tsa", "clear").exit_code == 0
    assert load_config(home).tsas == ()


def test_hand_edited_tsa_configs_are_checked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Ledger.init(home, origin="cfg2.test/log").close()
    path = home / "config.json"
    raw = json.loads(path.read_text())
    one = {"url": "http://a/", "roots": "r.pem"}
    for change, message in [
        ({"tsa": one, "tsas": [one]}, "both set"),
        ({"tsas": [one, one], "tsa_quorum": 1}, "listed twice"),
        ({"tsas": [one, {**one, "url": "http://b/"}], "tsa_quorum": 3}, "TSA quorum 3"),
        ({"tsas": [one], "tsa_quorum": 0}, "TSA quorum 0"),
        ({"tsas": [{**one, "url": "a"}]}, "must be http(s)"),
    ]:
        path.write_text(json.dumps({**raw, **change}))
        r = run(home, "stats")
        assert r.exit_code == 1 and message in r.output, (change, r.output)
    path.write_text(json.dumps({**raw, "tsa": one}))  # written before several TSAs existed
    cfg = load_config(home)
    assert (cfg.tsas[0].url, cfg.tsa_quorum) == ("http://a/", 1)


def test_trust_file_tsa_policies() -> None:
    base = {
        "format": "evidence-trust/v1",
        "logs": [{"origin": "t.test/log", "vkey": _log_vkey()}],
        "witnesses": {"quorum": 0, "keys": []},
        "notaries": [],
        "tsa_roots": [],
    }
    pem = _pem()
    ok = {
        "quorum": 1,
        "authorities": [{"name": "a", "roots": [pem]}, {"name": "b", "roots": [pem]}],
    }
    trust = load_trust(json.dumps({**base, "tsas": ok}).encode())
    assert trust.tsa_policy is not None and [a.name for a in trust.tsa_policy.authorities] == [
        "a",
        "b",
    ]
    assert len(trust.tsa_roots) == 2
    assert load_trust(json.dumps(base).encode()).tsa_policy is None
    single = load_trust(json.dumps({**base, "tsa_roots": [pem]}).encode())
    assert single.tsa_policy is not None and single.tsa_policy.quorum == 1
    for tsas, message in [
        ({**ok, "quorum": 0}, "TSA quorum 0 is not between 1 and 2"),
        ({**ok, "quorum": 3}, "TSA quorum 3"),
        ({**ok, "quorum": True}, "must be an integer"),
        ({"quorum": 1, "authorities": []}, "at least one authority"),
        ({**ok, "authorities": [{"name": "a", "roots": [pem]}] * 2}, "distinct"),
        ({**ok, "authorities": [{"name": "a", "roots": []}]}, "at least one root"),
        ({**ok, "authorities": [{"name": "a", "roots": ["x"]}]}, "is not one PEM"),
        ({**ok, "extra": 1}, r"unknown \['extra'\]"),
    ]:
        with pytest.raises(MalformedError, match=message):
            load_trust(json.dumps({**base, "tsas": tsas}).encode())
    with pytest.raises(MalformedError, match="tsa_roots must be empty"):
        load_trust(json.dumps({**base, "tsa_roots": [pem], "tsas": ok}).encode())


def _log_vkey() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.keys import NoteSigner

    return NoteSigner("t.test/log", Ed25519PrivateKey.generate()).verifier_key.to_text()


def _pem() -> str:
    return (
        Path(__file__).resolve().parents[1] / "vectors" / "tsa" / "roots" / "digicert_g4.pem"
    ).read_text()
