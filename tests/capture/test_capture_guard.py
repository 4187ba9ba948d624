"""The SSRF policy and the platform's fetcher, without a browser.

Named datasets of addresses and URLs, each with the reason it must be
refused (or allowed); the fetcher against a real local server: it connects
only to the address its own resolution checked (so a name cannot be
re-resolved elsewhere), follows and records redirects hop by hop, enforces
the limits on the wire and maps every failure to a status.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from pathlib import Path

import pytest
from capture_support import free_port, make_pki, serve

from ledger.capture.fetch import Budget, Exchange, Fetched, Fetcher, FetchError, LimitReached
from ledger.capture.guard import AddressPolicy, Refused
from ledger.capture.options import CaptureOptions
from ledger.capture.warc import surt
from ledger.errors import InvalidInput

REFUSED_ADDRESSES = {
    "127.0.0.1": "loopback",
    "127.255.0.7": "loopback",
    "::1": "loopback",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "100.64.0.1": "not globally routable",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "192.0.2.10": "private",
    "::ffff:127.0.0.1": "loopback (embedded in ::ffff:7f00:1)",
    "::ffff:10.0.0.1": "private (embedded in ::ffff:a00:1)",
    "2002:7f00:1::": "loopback (embedded in 2002:7f00:1::)",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo tunnel",
}
PUBLIC_ADDRESSES = ["93.184.215.14", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111"]


@pytest.mark.parametrize(("address", "category"), sorted(REFUSED_ADDRESSES.items()))
def test_refused_addresses(address: str, category: str) -> None:
    why = AddressPolicy().refusal(address)
    assert why is not None and why.endswith(f"is {category}"), why


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_are_allowed(address: str) -> None:
    assert AddressPolicy().refusal(address) is None


def test_allow_list_admits_exactly_its_ranges() -> None:
    p = AddressPolicy(["127.0.0.0/8", "10.1.0.0/16"])
    assert p.refusal("127.0.0.1") is None and p.refusal("10.1.2.3") is None
    assert p.refusal("10.2.0.1") is not None and p.refusal("::1") is not None
    assert p.refusal("169.254.169.254") is not None
    with pytest.raises(InvalidInput, match="not a CIDR range"):
        AddressPolicy(["10.0.0.0/33"])


REFUSED_URLS = {
    "file:///etc/passwd": "scheme file: is refused",
    "ftp://example.com/": "scheme ftp: is refused",
    "gopher://example.com/": "scheme gopher: is refused",
    "javascript:alert(1)": "scheme javascript: is refused",
    "ws://example.com/": "scheme ws: is refused",
    "example.com/page": "scheme (none) is refused",
    "http://user:pw@example.com/": "user name or password",
    "http://@example.com/": "user name or password",
    "https:///x": "has no host",
    "http://example.com:99999/": "not a valid URL",
    "http://[::1/": "not a valid URL",
    "http://127.0.0.1/": "127.0.0.1 is not a public address (loopback)",
    "http://[::ffff:169.254.169.254]/": "link-local (embedded in",
    "http://0x7f000001/": "does not resolve",
    "http://" + "a" * 9000 + ".com/": "longer than 8192",
}


@pytest.mark.parametrize(("url", "reason"), sorted(REFUSED_URLS.items()))
def test_refused_urls(url: str, reason: str) -> None:
    policy = AddressPolicy(resolver=_resolver({}))

    def check() -> None:
        t = policy.check_url(url)
        policy.resolve(t.host, t.port)

    with pytest.raises((Refused, LookupError)) as e:
        check()
    assert reason in str(e.value)


def _resolver(names: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in names:
            raise LookupError(f"{host}: does not resolve")
        return names[host]

    return resolve


def test_every_resolved_address_is_checked() -> None:
    names = {"mixed.test": ["93.184.215.14", "10.0.0.8"], "pub.test": ["1.1.1.1", "2606:4700::1"]}
    p = AddressPolicy(resolver=_resolver(names))
    with pytest.raises(
        Refused, match=r"mixed\.test resolves to 10\.0\.0\.8, which is not a public"
    ):
        p.resolve("mixed.test", 80)
    assert p.resolve("pub.test", 443) == ["1.1.1.1", "2606:4700::1"]
    t = p.check_url("HTTPS://Pub.Test./a?b#c")
    assert (t.scheme, t.host, t.port) == ("https", "pub.test", 443)
    assert p.check_url("http://bücher.example/").host == "xn--bcher-kva.example"


# -- the fetcher against a real server ------------------------------------------------


def _fetch(
    url: str,
    *,
    allow: Sequence[str] = ("127.0.0.0/8",),
    names: dict[str, list[str]] | None = None,
    budget: Budget | None = None,
    ctx: ssl.SSLContext | None = None,
) -> tuple[Fetched, list[Exchange]]:
    seen: list[Exchange] = []
    resolver = _resolver(names) if names is not None else None

    async def go() -> Fetched:
        f = Fetcher(
            AddressPolicy(allow, resolver),
            budget or Budget(10**8, 100, 30),
            seen.append,
            ctx or ssl.create_default_context(),
        )
        try:
            return await f.fetch(url, "GET", [("User-Agent", "test")])
        finally:
            await f.aclose()

    return asyncio.run(go()), seen


def test_connection_goes_to_the_checked_address_with_the_hosts_name() -> None:
    with serve() as site:
        port = site.base.rsplit(":", 1)[1]
        # "site.test" exists only in the capture's resolver: the connection can
        # only have gone to the address that resolver gave and the policy checked.
        got, _ = _fetch(f"http://site.test:{port}/page.html", names={"site.test": ["127.0.0.1"]})
        assert got.final.status == 200 and got.final.ip == "127.0.0.1"
        assert site.hosts == [f"site.test:{port}"]
        # The same name resolving to a refused address never connects.
        with pytest.raises(Refused):
            _fetch(f"http://site.test:{port}/page.html", names={"site.test": ["10.9.9.9"]})
        with pytest.raises(Refused):
            _fetch(
                f"http://site.test:{port}/page.html", allow=(), names={"site.test": ["127.0.0.1"]}
            )
        assert len(site.hits) == 1


def test_redirect_hops_are_checked_and_recorded() -> None:
    with serve() as site:
        got, seen = _fetch(site.base + "/")
        assert [(e.url, e.status) for e in got.hops] == [
            (site.base + "/", 302),
            (site.base + "/page.html", 200),
        ]
        assert seen == list(got.hops)
        with pytest.raises(Refused, match=r"10\.0\.0\.1"):
            _fetch(site.base + "/to-private")
        with pytest.raises(FetchError) as e:
            _fetch(site.base + "/loop")
        assert e.value.status == "too_many_redirects"
        assert site.hits.count("/loop") == 11


def test_transfer_and_content_codings() -> None:
    with serve() as site:
        got, _ = _fetch(site.base + "/gzip.html")
        assert got.body.startswith(b"<!doctype html><title>gz</title>")
        assert got.final.body[:2] == b"\x1f\x8b"  # recorded as sent
        assert "content-encoding" not in got.browser_headers()
        sent = dict(got.final.request_headers)
        assert sent["Accept-Encoding"] == "gzip, deflate" and sent["User-Agent"] == "test"
        got, _ = _fetch(site.base + "/chunked.html")
        assert got.body == b"<!doctype html><p id=c>chunked body</p>" == got.final.body
        assert got.final.header("transfer-encoding") == "chunked"


def test_limits_are_enforced_on_the_wire() -> None:
    with serve() as site:
        with pytest.raises(LimitReached) as e:
            _fetch(site.base + "/big.bin", budget=Budget(100_000, 10, 30))
        assert e.value.kind == "bytes"
        with pytest.raises(LimitReached) as e:
            _fetch(site.base + "/", budget=Budget(10**8, 1, 30))
        assert e.value.kind == "requests"
        assert site.hits == ["/big.bin", "/"]  # the redirect's target was never requested
        with pytest.raises(LimitReached) as e:
            _fetch(site.base + "/hang", budget=Budget(10**8, 10, 1))
        assert e.value.kind == "time"


def test_failure_statuses(tmp_path: Path) -> None:
    with pytest.raises(FetchError) as e:
        _fetch(f"http://127.0.0.1:{free_port()}/")
    assert e.value.status == "unreachable"
    pki = make_pki(tmp_path)
    with serve(pki) as site:
        with pytest.raises(FetchError) as e:
            _fetch(site.base + "/page.html")  # the system store does not know the test CA
        assert e.value.status == "tls_error"
        ctx = ssl.create_default_context()
        ctx.load_verify_locations(cafile=str(pki.ca_pem))
        got, _ = _fetch(site.base + "/page.html", ctx=ctx)
        assert got.final.tls is not None and len(got.final.tls.chain) == 2
        # A certificate for 127.0.0.1/localhost presented for another name fails.
        port = site.base.rsplit(":", 1)[1]
        with pytest.raises(FetchError) as e:
            _fetch(f"https://other.test:{port}/", names={"other.test": ["127.0.0.1"]}, ctx=ctx)
        assert e.value.status == "tls_error" and "match" in str(e.value)


# -- options and keys ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"viewport_width": 100}, "viewport"),
        ({"wait": "idle"}, "wait must be one of"),
        ({"delay_ms": 10}, "delay_ms needs wait=delay"),
        ({"wait": "delay", "delay_ms": 70_000}, "delay_ms must be between"),
        ({"user_agent_note": "证据"}, "printable ASCII"),
        ({"user_agent_note": "a\r\nX-Evil: 1"}, "printable ASCII"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_bad_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        CaptureOptions(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/a",
        "https://[::1]:8443/x?b=2&a=1",
        "http://WWW.Example.COM/Path/A?z=1&a=2#frag",
        "https://www2.example.com:443/",
        "http://example.com",
        "http://example.com:8080/a%20b;p?q=1",
        "https://sub.example.co.uk/p;x?q",
    ],
)
def test_surt_keys_match_the_surt_package(url: str) -> None:
    import surt as reference

    assert surt(url) == reference.surt(url)
