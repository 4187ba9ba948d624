"""Timestamp renewal (RFC 4998) with real ``openssl ts`` TSAs.

TSA 1's certificate is short-lived; a checkpoint stamped by it is renewed,
before the certificate expires, with TSA 2 (``evidence-ledger tsa renew``),
and the package made afterwards still verifies at a time after TSA 1's
certificate expired, while the package made before the renewal does not. A
renewal made after the certificate expired (a gap) and a tampered renewal
are refused with their reason; hash-tree renewal covers a retired
algorithm; ``tsa renew`` is idempotent and fails on one line.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from anchoring_support import TsaProc, configure, deposit, el, start_all
from pki import Ca, TsaFiles, issue_tsa, make_ca

from ledger.accounts import create_account
from ledger.certificates import (
    get_certificate,
    issue_certificate,
    package_certificate,
    trust_export,
)
from ledger.config import load_config, save_config
from ledger.core import Ledger
from ledger.services import OPERATOR, Services
from verifier.certificate import Certificate, verify_certificate
from verifier.ers import encode_ats, encode_record, parse_record, renewal_leaf
from verifier.note import parse_note
from verifier.package import PackageReader, verify_package
from verifier.trust import Trust, load_trust

pytestmark = pytest.mark.slow

VERIFY = str(Path(sys.executable).with_name("evidence-verify"))


class World:
    """TSA 1 (certificate valid two more days) and TSA 2 (a year), under two roots."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.now = datetime.now(UTC)
        self.cas: list[Ca] = [make_ca(root / "ca1", "TSA One Root"), make_ca(root / "ca2")]
        self.short_until = (self.now + timedelta(days=2)).replace(microsecond=0)
        self.files: list[TsaFiles] = [
            issue_tsa(self.cas[0], root / "tsa1", cn="TSA 1", not_after=self.short_until),
            issue_tsa(self.cas[1], root / "tsa2", cn="TSA 2"),
        ]
        self.procs = [TsaProc(f.config, root / f"tsa{i}.log") for i, f in enumerate(self.files)]
        self.count = 0

    def pair(self, i: int) -> tuple[str, Path]:
        return self.procs[i].url, self.cas[i].cert

    def ledger(self, *tsas: int) -> Ledger:
        self.count += 1
        led = Ledger.init(self.root / f"home{self.count}", origin=f"renew.test/{self.count}")
        return configure(led, [], 0, tsas=[self.pair(i) for i in tsas], tsa_quorum=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("renewal"))
    start_all(w.procs)
    try:
        yield w
    finally:
        for p in w.procs:
            p.stop()


def _issue(led: Ledger) -> str:
    """A file deposit, sealed, with a certificate; its id."""
    create_account(led, "notary", "Notary Li")
    receipt = Services(led).deposits.deposit_file(
        OPERATOR, io.BytesIO(b"renewed evidence " * 40), file_name="a.txt"
    )
    led.seal()
    return issue_certificate(led, receipt.evidence_id, "Notary Li").certificate_id


def _trust(doc: dict[str, Any]) -> Trust:
    return load_trust(json.dumps(doc).encode())


def _renew(home: Path, *args: str) -> dict[str, Any]:
    r = el(home, "tsa", "renew", *args)
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def test_renewed_before_expiry_still_verifies_after_it(world: World, tmp_path: Path) -> None:
    led = world.ledger(0)
    home = led.config.home
    try:
        cid = _issue(led)
        before = package_certificate(led, cid, tmp_path / "before.zip")
        led = configure(led, [], 0, tsas=[world.pair(0), world.pair(1)], tsa_quorum=1)
    finally:
        led.close()
    dry = _renew(home, "--dry-run")
    assert (dry["due"], dry["renewed"], dry["lapsed"]) == (1, 0, [])
    report = _renew(home)
    assert report["renewed"] == 1 and report["due"] == 1
    (batch,) = report["batches"]
    # TSA 1 answered first, but its own certificate ends within the window.
    assert batch["tsa"] == "CN=TSA 2" and batch["kind"] == "timestamp"
    again = _renew(home)  # idempotent
    assert (again["due"], again["renewed"], again["batches"]) == (0, 0, [])
    assert again["next_due"] is not None
    with Ledger.open(home) as led:
        after = package_certificate(led, cid, tmp_path / "after.zip")
        doc = trust_export(led)
        size = Certificate.from_json(get_certificate(led, cid)).checkpoint_body.size
        assert len(Services(led).renewals.records(size)) == 1
    with PackageReader(after) as pkg:
        names = list(pkg.names())
        record = parse_record(pkg.read("evidence-records/1.ers", 1 << 20))
    assert "evidence-records/checkpoint.txt" in names and record.renewals == 1
    trust = _trust(doc)
    later = world.short_until + timedelta(days=1)
    # Now: both packages are valid.
    for package in (before, after):
        report_now = verify_package(package, trust)
        assert report_now.valid, [(c.key, c.reason) for c in report_now.failed]
    # After TSA 1's certificate expired: only the renewed package.
    renewed = verify_package(after, trust, at=later)
    assert renewed.valid, [(c.key, c.reason) for c in renewed.failed]
    assert "renewed 1 time(s)" in renewed.check("timestamp_renewal").reason
    assert "CN=TSA 2" in renewed.check("timestamp_renewal").reason
    stale = verify_package(before, trust, at=later)
    assert [c.key for c in stale.failed] == ["timestamp_renewal"]
    assert "expired at" in stale.check("timestamp_renewal").reason
    assert "not renewed" in stale.check("timestamp_renewal").reason
    # The same through the command line, with its --at.
    trust_path = tmp_path / "trust.json"
    trust_path.write_text(json.dumps(doc))
    at = later.strftime("%Y-%m-%dT%H:%M:%SZ")
    ok = subprocess.run(
        [VERIFY, "package", str(after), "--trust", str(trust_path), "--at", at, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout
    bad = subprocess.run(
        [VERIFY, "package", str(before), "--trust", str(trust_path), "--at", at],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (bad.returncode == 1 and "timestamp_renewal" in bad.stdout) or "FAILED" in bad.stdout
    wrong = subprocess.run(
        [VERIFY, "package", str(after), "--trust", str(trust_path), "--at", "tomorrow"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrong.returncode == 2
    assert (
        wrong.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "argument --at: 'tomorrow' is not an RFC 3339 UTC time (e.g. 2031-06-01T00:00:00Z)"
        )
    )


def _certificate_with_records(package: Path) -> tuple[Certificate, list[bytes]]:
    with zipfile.ZipFile(package) as z:
        cert = Certificate.from_json(z.read("certificate.json"))
        records = [z.read(n) for n in z.namelist() if n.endswith(".ers")]
    return cert, records


def test_tampered_renewal_is_refused(world: World, tmp_path: Path) -> None:
    led = world.ledger(0, 1)
    home = led.config.home
    try:
        cid = _issue(led)
    finally:
        led.close()
    assert _renew(home)["renewed"] == 1  # TSA 1's line; TSA 2's is not due
    with Ledger.open(home) as led:
        package = package_certificate(led, cid, tmp_path / "p.zip")
        trust = _trust(trust_export(led))
    cert, (record,) = _certificate_with_records(package)
    later = world.short_until + timedelta(days=1)
    checks = {
        c.key: c for c in verify_certificate(cert, trust, evidence_records=[record], at=later)
    }
    assert checks["timestamp_renewal"].ok, checks["timestamp_renewal"].reason
    renewal_token = parse_record(record).chains[0][1].time_stamp
    # A byte of the renewal token's signature (near its end) changed.
    at = record.index(renewal_token) + len(renewal_token) - 10
    forged = record[:at] + bytes([record[at] ^ 1]) + record[at + 1 :]
    # A byte of the reduced hash tree changed (the record's first list).
    path_value = parse_record(record).chains[0][1].reduced_hashtree
    bent = record
    if path_value:
        value = path_value[0][0]
        i = record.index(value)
        bent = record[:i] + bytes([record[i] ^ 1]) + record[i + 1 :]
    for bad, why in ((forged, "does not verify"), (bent, "archive timestamp 0.1")):
        if bad == record:
            continue
        checks = {c.key: c for c in verify_certificate(cert, trust, evidence_records=[bad])}
        assert not checks["timestamp_renewal"].ok
        assert why in checks["timestamp_renewal"].reason, checks["timestamp_renewal"].reason
    # A record that belongs to no token of this checkpoint.
    other = encode_record([[encode_ats(renewal_token)]], ["sha256"])
    checks = {c.key: c for c in verify_certificate(cert, trust, evidence_records=[other])}
    assert "does not start with a token of this checkpoint" in checks["timestamp_renewal"].reason


def test_a_gap_in_the_chain_is_refused(world: World, tmp_path: Path) -> None:
    """TSA 3's certificate expires seconds after the checkpoint is stamped; a
    renewal by TSA 2 made after that leaves a gap."""
    led = Ledger.init(tmp_path / "gap", origin="renew.test/gap")
    home = led.config.home
    try:
        deposit(led, 3)
        until = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
        files = issue_tsa(world.cas[0], tmp_path / "tsa3", cn="TSA 3", not_after=until)
        proc = TsaProc(files.config, tmp_path / "tsa3.log")
        proc.start()
        try:
            led = configure(led, [], 0, tsas=[(proc.url, world.cas[0].cert)], tsa_quorum=1)
            cp = led.seal()
            token = led.checkpoint_token(cp.size)
            assert token is not None
        finally:
            proc.stop()
        led = configure(led, [], 0, tsas=[world.pair(1)], tsa_quorum=1)
    finally:
        led.close()
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 1.5)
    # Too late for the ledger: lapsed, nothing renewed, a one-line warning.
    r = el(home, "tsa", "renew")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["renewed"] == 0
    assert r.stderr.startswith("warning: lapsed: checkpoint 3 token 0")
    assert "would leave a gap" in r.stderr
    # Made by hand, as a careless archive would: TSA 2 over the expired token.
    with Ledger.open(home) as led:
        (tsa2,) = led.anchor.tsas
        renewal, _ = tsa2.timestamp_digest(
            renewal_leaf("sha256", token), "sha256", time.monotonic() + 10
        )
        vkey = led.verifier_key.to_text()
    record = encode_record(
        [[encode_ats(token), encode_ats(renewal, algorithm="sha256")]], ["sha256"]
    )
    body = parse_note(cp.note).text
    doc = {
        "format": "evidence-trust/v1",
        "logs": [{"origin": "renew.test/gap", "vkey": vkey}],
        "witnesses": {"quorum": 0, "keys": []},
        "notaries": [],
        "tsa_roots": [],
        "tsas": {
            "quorum": 1,
            "authorities": [
                {"name": "tsa3", "roots": [world.cas[0].cert.read_text()]},
                {"name": "tsa2", "roots": [world.cas[1].cert.read_text()]},
            ],
        },
    }
    from verifier.anchors import renewal_check

    check = renewal_check(body, token, [record], _trust(doc), datetime.now(UTC))
    assert not check.ok
    assert "gap in the renewal chain" in check.reason and "CN=TSA 3" in check.reason
    alone = renewal_check(body, token, [], _trust(doc), datetime.now(UTC))
    assert not alone.ok and "expired at" in alone.reason


def test_hash_tree_renewal_before_an_algorithm_is_retired(world: World, tmp_path: Path) -> None:
    led = world.ledger(1)
    home = led.config.home
    retire = (world.now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        cid = _issue(led)
        before = package_certificate(led, cid, tmp_path / "before.zip")
    finally:
        led.close()
    cfg = load_config(home)
    renewal = replace(cfg.renewal, hash="sha512", retired=(("sha256", retire),))
    save_config(replace(cfg, renewal=renewal))
    report = _renew(home)
    (batch,) = report["batches"]
    assert (batch["kind"], batch["algorithm"], report["renewed"]) == ("hash-tree", "sha512", 1)
    assert _renew(home)["renewed"] == 0
    with Ledger.open(home) as led:
        after = package_certificate(led, cid, tmp_path / "after.zip")
        doc = trust_export(led)
    assert doc["retired_algorithms"] == {"sha256": retire}
    with PackageReader(after) as pkg:
        record = parse_record(pkg.read("evidence-records/1.ers", 1 << 20))
    assert len(record.chains) == 2 and record.digest_algorithms == ("sha256", "sha512")
    later = world.now + timedelta(days=60)
    trust = _trust(doc)
    ok = verify_package(after, trust, at=later)
    assert ok.valid, [(c.key, c.reason) for c in ok.failed]
    stale = verify_package(before, trust, at=later)
    assert [c.key for c in stale.failed] == ["timestamp_renewal"]
    assert "SHA256, retired since" in stale.check("timestamp_renewal").reason


def test_tsa_renew_errors_are_one_line(world: World, tmp_path: Path) -> None:
    led = world.ledger(0)
    home = led.config.home
    try:
        deposit(led, 2)
        led.seal()
    finally:
        led.close()
    r = el(home, "tsa", "renew", "--window-days", "0")
    assert r.returncode == 2
    assert r.stderr.startswith("error: renewal: window") and len(r.stderr.splitlines()) == 1
    # Only TSA 1, whose certificate ends within the window: nothing usable.
    r = el(home, "tsa", "renew")
    assert r.returncode == 1, r.stdout
    assert r.stderr.startswith("error: renewal: no TSA gave a usable token")
    assert "within the renewal window" in r.stderr and len(r.stderr.splitlines()) == 1
    # A TSA that does not answer.
    cfg = load_config(home)
    dead = replace(cfg.tsas[0], url="http://127.0.0.1:9/")
    save_config(replace(cfg, tsas=(dead,)))
    r = el(home, "tsa", "renew", timeout=120)
    assert r.returncode == 1 and "unreachable" in r.stderr and len(r.stderr.splitlines()) == 1
    assert el(home, "tsa", "renew", "--help").returncode == 0
