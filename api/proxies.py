"""Who the client is: the peer address, or what a trusted proxy says it is.

Rate limits are per client address, so the address must not be the
client's to choose. ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are read
only when the peer is one of the configured proxies
(``http.trusted_proxies``); from anyone else, loopback included, they are
ignored. With no proxy configured (the default) the peer is the client.

``X-Forwarded-For`` is read from the right: its last entry was appended by
the trusted peer and names whoever connected to it; while that is another
trusted proxy, the entry before it is taken, and so on. The first address
that is not a trusted proxy is the client: the entries left of it were
written by the client itself and are never believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ClientAddress", "forwarded_client"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> str | None:
    """The IP address in one ``X-Forwarded-For`` entry (a port or brackets
    allowed), normalised; None if it is not one."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _trusted(host: str, proxies: Sequence[Network]) -> bool:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in proxies)


def forwarded_client(peer: str, forwarded_for: str, proxies: Sequence[Network]) -> str:
    """The client of a request from ``peer`` carrying ``forwarded_for``."""
    if not _trusted(peer, proxies):
        return peer
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        address = _address(entry)
        if address is None:
            break  # a trusted proxy writes addresses: this was never one's
        client = address
        if not _trusted(address, proxies):
            break
    return client


class ClientAddress:
    """ASGI middleware setting the scope's client (and scheme) from trusted proxies."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[str]) -> None:
        self.app = app
        self._proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] == "http" and self._proxies and peer and _trusted(peer[0], self._proxies):
            forwarded: list[str] = []
            proto = None
            for key, value in scope["headers"]:
                if key == b"x-forwarded-for":
                    forwarded.append(value.decode("latin-1"))
                elif key == b"x-forwarded-proto":
                    proto = value.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
            scope = dict(scope)
            if forwarded:
                scope["client"] = (forwarded_client(peer[0], ",".join(forwarded), self._proxies), 0)
            if proto in ("http", "https"):
                scope["scheme"] = proto
        await self.app(scope, receive, send)
