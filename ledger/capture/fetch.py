"""The platform's fetcher: the only way a capture reaches the network.

The browser never connects anywhere itself (see :mod:`ledger.capture.browser`):
every request it makes is intercepted and fetched here, over HTTP/1.1 with
``httpcore``, through :class:`GuardedBackend`, which connects only to
addresses that :class:`~ledger.capture.guard.AddressPolicy` resolved and
checked. So the SSRF check, the connection and the recording see the same
address, and the limits (bytes, requests, wall time) are enforced on the
wire, not after the fact.

Redirects are followed here, each hop checked and recorded: Chromium follows a
redirect it was handed by interception *without* intercepting the next
request, which would bypass the guard.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpcore

from ledger.capture.guard import AddressPolicy, Refused, Target
from ledger.offload import in_thread

__all__ = [
    "Budget",
    "Exchange",
    "FetchError",
    "Fetched",
    "Fetcher",
    "GuardedBackend",
    "LimitReached",
    "TlsInfo",
]

REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 10
ACCEPT_ENCODING = "gzip, deflate"
# Not forwarded from the browser: set by the fetcher or meaningless across the hop.
_DROP_REQUEST = {
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "accept-encoding",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
}
# Not handed to the browser with a decoded body.
_DROP_RESPONSE = {
    "content-encoding",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
}


class LimitReached(Exception):
    """A capture limit was reached: ``kind`` is ``bytes``, ``requests`` or ``time``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class FetchError(Exception):
    """A request failed: ``status`` is ``unreachable``, ``timeout``, ``tls_error``,
    ``too_many_redirects`` or ``protocol_error``."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class Budget:
    """The limits of one capture, shared by all of its requests."""

    def __init__(self, max_bytes: int, max_requests: int, seconds: float) -> None:
        self.max_bytes = max_bytes
        self.max_requests = max_requests
        self.deadline = time.monotonic() + seconds
        self.bytes = 0
        self.requests = 0
        self.reached: LimitReached | None = None

    def _hit(self, kind: str, message: str) -> LimitReached:
        if self.reached is None:
            self.reached = LimitReached(kind, message)
        return self.reached

    def check(self) -> None:
        """Raise the first limit reached, if any (also the wall time)."""
        if self.reached is not None:
            raise self.reached
        if time.monotonic() >= self.deadline:
            raise self._hit("time", "capture: wall-time limit reached")

    def expire(self) -> None:
        """Mark the wall-time limit as reached (the browser's wait ran out)."""
        self._hit("time", "capture: wall-time limit reached")

    def reach(self, kind: str, message: str) -> None:
        """Mark another limit as reached (the video's size): no request goes out after it."""
        self._hit(kind, message)

    def take_request(self) -> None:
        self.check()
        self.requests += 1
        if self.requests > self.max_requests:
            raise self._hit(
                "requests", f"capture: more than {self.max_requests} requests (request limit)"
            )

    def take_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.max_bytes:
            raise self._hit(
                "bytes", f"capture: more than {self.max_bytes} bytes received (size limit)"
            )

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


@dataclass(frozen=True, slots=True)
class TlsInfo:
    """The TLS session of a response: protocol, cipher and the server's chain (DER)."""

    version: str
    cipher: str
    chain: tuple[bytes, ...]
    verified_chain: bool
    """True when ``chain`` is the chain OpenSSL verified (leaf to root); False
    when only the leaf certificate could be read."""


@dataclass(slots=True)
class Exchange:
    """One HTTP request and its response, as sent and received."""

    url: str
    method: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    time: datetime
    status: int = 0
    reason: str = ""
    http_version: str = "HTTP/1.1"
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    """The payload as received: transfer coding removed, content coding kept."""
    ip: str = ""
    port: int = 0
    tls: TlsInfo | None = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.response_headers:
            if k.lower() == name:
                return v
        return None


@dataclass(frozen=True, slots=True)
class Fetched:
    """The outcome of a fetch: every hop (redirects first) and the decoded final body."""

    hops: tuple[Exchange, ...]
    body: bytes

    @property
    def final(self) -> Exchange:
        return self.hops[-1]

    def browser_headers(self) -> dict[str, str]:
        """Response headers for the browser (the body it gets is already decoded).

        Repeated headers are joined with a newline, which Playwright splits
        back into separate header lines (several Set-Cookie, for example).
        """
        out: dict[str, str] = {}
        for k, v in self.final.response_headers:
            key = k.lower()
            if key in _DROP_RESPONSE:
                continue
            out[key] = f"{out[key]}\n{v}" if key in out else v
        return out


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to checked addresses of the requested host.

    ``resolved`` collects, per host, the addresses it resolved to (for the
    manifest). Addresses are tried in resolver order.
    """

    def __init__(self, policy: AddressPolicy, resolved: dict[str, list[str]]) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()
        self.resolved = resolved

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await in_thread(self._policy.resolve, host, port)
        except LookupError as e:
            raise FetchError("unreachable", f"{host}: the name does not resolve ({e})") from e
        self.resolved.setdefault(host, addresses)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                error = e
        raise FetchError(
            "timeout" if isinstance(error, httpcore.ConnectTimeout) else "unreachable",
            f"{host}:{port}: cannot connect ({error or 'no address'})",
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _tls_info(stream: Any) -> TlsInfo | None:
    obj = stream.get_extra_info("ssl_object") if stream is not None else None
    if not isinstance(obj, ssl.SSLObject):
        return None
    chain: tuple[bytes, ...] = ()
    verified = False
    # The verified chain is only reachable through the C object before Python 3.13.
    inner = getattr(obj, "_sslobj", None)
    getter = getattr(inner, "get_verified_chain", None) or getattr(obj, "get_verified_chain", None)
    if getter is not None:
        try:
            chain = tuple(c.public_bytes(ssl._ssl.ENCODING_DER) for c in getter())  # type: ignore[attr-defined]
            verified = True
        except (AttributeError, ValueError, ssl.SSLError):
            chain = ()
    if not chain:
        leaf = obj.getpeercert(binary_form=True)
        chain = (leaf,) if leaf else ()
    cipher = obj.cipher()
    return TlsInfo(
        version=obj.version() or "",
        cipher=cipher[0] if cipher else "",
        chain=chain,
        verified_chain=verified,
    )


def _host_header(t: Target) -> str:
    host = f"[{t.host}]" if ":" in t.host else t.host
    default = 443 if t.scheme == "https" else 80
    return host if t.port == default else f"{host}:{t.port}"


def _decode(body: bytes, coding: str | None, limit: int) -> bytes:
    """Undo gzip/deflate content codings (the only ones the fetcher asks for)."""
    codings = [c.strip().lower() for c in (coding or "").split(",") if c.strip()]
    for c in reversed(codings):
        if c == "identity":
            continue
        if c in ("gzip", "x-gzip"):
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif c == "deflate":
            d = zlib.decompressobj() if body[:1] == b"\x78" else zlib.decompressobj(-zlib.MAX_WBITS)
        else:
            raise FetchError("protocol_error", f"unsupported content coding {c!r}")
        try:
            out = d.decompress(body, limit + 1)
        except zlib.error as e:
            raise FetchError("protocol_error", f"corrupt {c} body ({e})") from e
        if len(out) > limit:
            raise LimitReached("bytes", f"capture: a body decodes to more than {limit} bytes")
        body = out
    return body


class Fetcher:
    """Fetches URLs for one capture; ``on_exchange`` records every completed hop."""

    def __init__(
        self,
        policy: AddressPolicy,
        budget: Budget,
        on_exchange: Callable[[Exchange], None],
        ssl_context: ssl.SSLContext,
        *,
        request_timeout: float = 30.0,
    ) -> None:
        self.policy = policy
        self.budget = budget
        self.resolved: dict[str, list[str]] = {}
        self._on_exchange = on_exchange
        self._timeout = request_timeout
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            http1=True,
            http2=False,
            max_connections=16,
            network_backend=GuardedBackend(policy, self.resolved),
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def fetch(
        self,
        url: str,
        method: str = "GET",
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        follow: bool = True,
    ) -> Fetched:
        """Fetch ``url`` (following redirects if ``follow``); every hop is checked
        by the policy, counted by the budget and recorded."""
        hops: list[Exchange] = []
        for _ in range(MAX_REDIRECTS + 1):
            target = self.policy.check_url(url)
            ex = await self._one(target, method, headers, body)
            hops.append(ex)
            location = ex.header("location")
            if not (follow and ex.status in REDIRECTS and location):
                decoded = _decode(ex.body, ex.header("content-encoding"), self.budget.max_bytes)
                return Fetched(tuple(hops), decoded)
            url = urljoin(target.url, _location(location))
            if ex.status == 303 or (ex.status in (301, 302) and method == "POST"):
                method, body = ("HEAD" if method == "HEAD" else "GET"), b""
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        raise FetchError("too_many_redirects", f"more than {MAX_REDIRECTS} redirects")

    async def _one(
        self, target: Target, method: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> Exchange:
        self.budget.take_request()
        sent = [("Host", _host_header(target))]
        sent += [(k, v) for k, v in headers if k.lower() not in _DROP_REQUEST]
        sent.append(("Accept-Encoding", ACCEPT_ENCODING))
        if body:
            sent.append(("Content-Length", str(len(body))))
        ex = Exchange(
            url=target.url,
            method=method,
            request_headers=sent,
            request_body=body,
            time=datetime.now(UTC),
        )
        wait = min(self._timeout, self.budget.remaining())
        t = {"connect": wait, "read": wait, "write": wait, "pool": wait}
        try:
            async with asyncio.timeout(wait):
                await self._exchange(target, ex, t)
        except (Refused, FetchError, LimitReached):
            raise
        except (TimeoutError, httpcore.TimeoutException) as e:
            self.budget.check()
            raise FetchError("timeout", f"{target.url}: no complete answer in {wait:.0f} s") from e
        except httpcore.ConnectError as e:
            if _is_tls(e):
                raise FetchError("tls_error", f"{target.url}: TLS failed ({_reason(e)})") from e
            raise FetchError("unreachable", f"{target.url}: cannot connect ({_reason(e)})") from e
        except (httpcore.ProtocolError, httpcore.NetworkError, OSError) as e:
            if _is_tls(e):
                raise FetchError("tls_error", f"{target.url}: TLS failed ({_reason(e)})") from e
            raise FetchError("protocol_error", f"{target.url}: {_reason(e)}") from e
        except Exception as e:  # e.g. httpcore.UnsupportedProtocol: never a hung route
            raise FetchError(
                "protocol_error", f"{target.url}: {type(e).__name__}: {_reason(e)}"
            ) from e
        self._on_exchange(ex)
        return ex

    async def _exchange(self, target: Target, ex: Exchange, timeouts: dict[str, float]) -> None:
        async with self._pool.stream(
            ex.method,
            target.url,
            # Values as UTF-8, as Chromium sends them (a cookie set by a script may
            # hold any text); names are ASCII tokens.
            headers=[(k.encode("ascii"), v.encode("utf-8")) for k, v in ex.request_headers],
            content=ex.request_body or None,
            extensions={"timeout": timeouts},
        ) as resp:
            ex.status = resp.status
            ext = resp.extensions
            ex.reason = bytes(ext.get("reason_phrase", b"")).decode("latin-1")
            ex.http_version = bytes(ext.get("http_version", b"HTTP/1.1")).decode("ascii")
            ex.response_headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.headers
            ]
            self.budget.take_bytes(sum(len(k) + len(v) + 4 for k, v in resp.headers))
            stream = ext.get("network_stream")
            addr = stream.get_extra_info("server_addr") if stream is not None else None
            if addr:
                ex.ip, ex.port = str(addr[0]), int(addr[1])
            if target.scheme == "https":
                ex.tls = _tls_info(stream)
            chunks: list[bytes] = []
            async for chunk in resp.aiter_stream():
                self.budget.take_bytes(len(chunk))
                chunks.append(chunk)
            ex.body = b"".join(chunks)
        if ex.ip and self.policy.refusal(ex.ip) is not None:
            # Defence in depth: the backend already refused such addresses.
            raise Refused(f"capture: refused: connected to {ex.ip}")


def _location(value: str) -> str:
    """A Location header's URL: its bytes as UTF-8 (as browsers read them), or
    percent-encoded when they are not UTF-8."""
    raw = value.strip().encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(chr(b) if b < 0x80 else f"%{b:02X}" for b in raw)


def _is_tls(e: BaseException) -> bool:
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "SSL" in str(e) or "CERTIFICATE" in str(e)


def _reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:300]
