"""One rate limit for every worker and host, kept in the database; clients the
peer cannot impersonate.

The storage contract runs on SQLite and PostgreSQL (the ``ledger`` fixture),
including a race of threads on their own connections; the service tests run
real servers: two processes with two workers each on one SQLite home, two
hosts on one PostgreSQL database, and a server behind a configured proxy
address reached from another loopback address.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hardening_support import Exchange, exchange, http_head, make_home, serving
from pg_support import pg_url

from api.proxies import forwarded_client
from ledger.config import RateLimit
from ledger.core import Ledger
from ledger.services import RateLimiter
from ledger.services.limits import client_key
from ledger.storage.migrations import LATEST

SLOW = pytest.mark.slow


def test_a_burst_then_refusals_with_the_wait(ledger: Ledger) -> None:
    limiter = RateLimiter(ledger, "t", RateLimit(rate=0.01, burst=3))
    assert [limiter.take("192.0.2.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("192.0.2.1")
    assert 99 < wait <= 100.5  # one request per 100 s
    assert 99 < limiter.wait("192.0.2.1") <= 100.5
    assert limiter.take("192.0.2.2") == 0.0  # another client, another bucket
    other = RateLimiter(ledger, "u", RateLimit(rate=0.01, burst=3))
    assert other.take("192.0.2.1") == 0.0  # another limiter, another bucket
    assert limiter.wait("192.0.2.9") == 0.0  # waiting counts nothing
    assert [limiter.take("192.0.2.9") for _ in range(3)] == [0.0, 0.0, 0.0]


def test_the_bucket_refills_at_the_rate(ledger: Ledger) -> None:
    limiter = RateLimiter(ledger, "fast", RateLimit(rate=20.0, burst=1))
    assert limiter.take("192.0.2.1") == 0.0
    wait = limiter.take("192.0.2.1")
    assert 0 < wait <= 0.06
    threading.Event().wait(wait + 0.02)
    assert limiter.take("192.0.2.1") == 0.0


def test_concurrent_takers_share_one_bucket(ledger: Ledger) -> None:
    """Eight threads, each on its own database connection, 40 takes: exactly the burst."""
    limiter = RateLimiter(ledger, "race", RateLimit(rate=0.001, burst=10))
    allowed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def taker() -> None:
        start.wait()
        n = sum(1 for _ in range(5) if limiter.take("198.51.100.7") == 0.0)
        with lock:
            allowed.append(n)
        ledger.store.close()  # this thread's connection

    threads = [threading.Thread(target=taker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 10


def test_full_buckets_are_pruned(ledger: Ledger) -> None:
    store = ledger.store
    store.take_rate("p:a", 0.001, 0.0)  # full again 1 ms later
    store.take_rate("p:b", 1000.0, 0.0)  # empty for 1000 s
    threading.Event().wait(0.01)
    assert store.prune_rates() == 1
    assert store.rate_wait("p:a", 0.0) == 0.0
    assert store.rate_wait("p:b", 0.0) > 900


def test_an_older_database_gains_the_buckets(home: Path, store_url: str) -> None:
    """Migration 7 on a database of version 6 (and every later one after it)."""
    Ledger.init(home, origin="m.test/log", database_url=store_url).close()
    with Ledger.open(home) as led:
        led.store.execute("drop table rate_buckets")
        led.store.execute("update meta set value = '6' where key = 'schema_version'")
    with Ledger.open(home) as led:
        assert led.store.get_meta("schema_version") == str(LATEST)
        assert RateLimiter(led, "m", RateLimit(1.0, 1)).take("192.0.2.1") == 0.0


def test_client_keys() -> None:
    assert client_key("192.0.2.1") == "192.0.2.1"
    # An IPv6 client is its /64: rotating addresses inside it buys nothing.
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key(None) == "unknown"


# -- real servers -------------------------------------------------------------

B = "rateboundary"
VERIFY = (
    f'--{B}\r\nContent-Disposition: form-data; name="certificate"; filename="c.json"\r\n\r\n'
    f"not a certificate\r\n--{B}--\r\n"
).encode()
TIGHT = {"verify": {"rate": 0.001, "burst": 4}}


def _verify(port: int, *, source: str | None = None, forwarded: str | None = None) -> Exchange:
    headers = {"Content-Type": f"multipart/form-data; boundary={B}"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    head = http_head("POST", "/v1/verify", headers, length=len(VERIFY))
    r = exchange(port, head + VERIFY, source=source)
    assert r.status in (422, 429), r.response[:300]
    return r


def _allowed(results: list[Exchange]) -> int:
    return sum(r.status != 429 for r in results)


@SLOW
def test_one_limit_across_workers_and_processes_on_sqlite(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_home(home, **TIGHT)
    with (
        serving(home, tmp_path, workers=2, name="a") as a,
        serving(home, tmp_path, workers=2, name="b") as b,
    ):
        # Each request on a new connection: the kernel hands them to any of
        # the four workers of the two processes.
        results = [_verify(srv.port) for _ in range(6) for srv in (a, b)]
    assert _allowed(results) == 4
    refused = [r for r in results if r.status == 429]
    assert all(int(r.headers["retry-after"]) > 900 for r in refused)


@SLOW
@pytest.mark.postgres
def test_one_limit_across_hosts_on_postgresql(tmp_path: Path, pg_schema: str) -> None:
    home_a = tmp_path / "a"
    make_home(home_a, database_url=pg_url(pg_schema), **TIGHT)
    home_b = tmp_path / "b"
    shutil.copytree(home_a, home_b)  # a second host: config and keys, nothing else
    with (
        serving(home_a, tmp_path, workers=2, name="a") as a,
        serving(home_b, tmp_path, name="b") as b,
    ):
        results = [_verify(srv.port) for _ in range(6) for srv in (a, b)]
    assert _allowed(results) == 4


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[int]:
    """A server whose only trusted proxy is 127.0.0.2 (verify: 2 at once)."""
    home = tmp_path / "home"
    make_home(home, trusted_proxies=["127.0.0.2"], verify={"rate": 0.001, "burst": 2})
    assert json.loads((home / "config.json").read_text())["http"]["trusted_proxies"]
    with serving(home, tmp_path) as srv:
        yield srv.port


@SLOW
def test_forwarded_for_is_ignored_from_an_untrusted_peer(proxied: int) -> None:
    # 127.0.0.1 is loopback but not a configured proxy: whatever it claims,
    # its requests share its own bucket.
    results = [_verify(proxied, forwarded=f"203.0.113.{i}") for i in range(5)]
    assert _allowed(results) == 2


@SLOW
def test_forwarded_for_is_honoured_from_a_trusted_proxy(proxied: int) -> None:
    proxy = "127.0.0.2"
    first = [_verify(proxied, source=proxy, forwarded="203.0.113.5") for _ in range(3)]
    assert [r.status for r in first] == [422, 422, 429]
    # Another client behind the proxy has its own bucket...
    assert _verify(proxied, source=proxy, forwarded="203.0.113.6").status == 422
    # ...and what a client writes left of the proxy's own entry is not believed.
    spoofed = _verify(proxied, source=proxy, forwarded="198.51.100.1, 203.0.113.5")
    assert spoofed.status == 429
    # The proxy's peers are not the proxy: 127.0.0.1 still has its own two.
    assert [_verify(proxied).status for _ in range(3)] == [422, 422, 429]


def test_forwarded_client_reads_from_the_right() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
    # An untrusted peer: whatever it forwards is ignored.
    assert forwarded_client("192.0.2.9", "203.0.113.1", proxies) == "192.0.2.9"
    # A trusted peer names its client; two proxies in a row are both skipped.
    assert forwarded_client("10.0.0.1", "203.0.113.1", proxies) == "203.0.113.1"
    assert forwarded_client("10.0.0.1", "198.51.100.1, 203.0.113.1, 10.0.0.2", proxies) == (
        "203.0.113.1"
    )
    # Entries with ports and brackets; IPv6 proxies.
    assert forwarded_client("fd00::1", "[2001:db8::5]:443", proxies) == "2001:db8::5"
    assert forwarded_client("10.0.0.1", "203.0.113.1:5555", proxies) == "203.0.113.1"
    # Garbage where a trusted proxy's entry should be: the last trusted address stands.
    assert forwarded_client("10.0.0.1", "junk, 10.0.0.3", proxies) == "10.0.0.3"
    assert forwarded_client("10.0.0.1", "", proxies) == "10.0.0.1"
