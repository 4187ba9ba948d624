"""Rate limits per client address, shared by every worker and host.

The buckets live in the database (:meth:`~ledger.storage.base.Store.take_rate`),
so ``serve --workers 4`` on three hosts still allows one burst per client,
not twelve. A client is its address as the HTTP edge determined it (the peer,
or ``X-Forwarded-For`` from a trusted proxy only); an IPv6 client is its /64,
the block one subscriber usually holds, so rotating addresses inside it buys
nothing.

A refused request reads the bucket and writes nothing: a flood of refused
requests costs the database reads, never write transactions.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.config import RateLimit

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = ["RateLimiter", "RateLimits", "client_key"]

_PRUNE_EVERY = 60.0  # seconds between deletions of full buckets, per process


def client_key(host: str | None) -> str:
    """The bucket key of a client address: IPv4 as is, IPv6 by its /64."""
    if not host:
        return "unknown"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]  # a name from a test transport or a Unix socket
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class RateLimiter:
    """A named family of token buckets, one per client: ``limit.burst`` requests
    at once, then ``limit.rate`` per second."""

    def __init__(self, ledger: Ledger, name: str, limit: RateLimit) -> None:
        self._store = ledger.store
        self.name = name
        self.limit = limit
        self._interval = 1.0 / limit.rate
        self._tolerance = (limit.burst - 1) * self._interval
        self._lock = threading.Lock()
        self._pruned = time.monotonic()

    def _bucket(self, client: str | None) -> str:
        return f"{self.name}:{client_key(client)}"

    def take(self, client: str | None) -> float:
        """Count one request of ``client``: 0.0 if allowed, else the seconds to wait."""
        bucket = self._bucket(client)
        wait = self._store.rate_wait(bucket, self._tolerance)
        if wait == 0.0:
            wait = self._store.take_rate(bucket, self._interval, self._tolerance)
        self._prune()
        return wait

    def wait(self, client: str | None) -> float:
        """Seconds before ``client`` may make a request (0.0: now), counting nothing."""
        return self._store.rate_wait(self._bucket(client), self._tolerance)

    def _prune(self) -> None:
        with self._lock:
            if time.monotonic() - self._pruned < _PRUNE_EVERY:
                return
            self._pruned = time.monotonic()
        self._store.prune_rates()


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The service's rate limits, from the ``http`` settings of the home."""

    verify: RateLimiter
    """Public verification: ``POST /v1/verify`` and the ``/verify`` page share it."""
    check: RateLimiter
    """The ``/verify`` page's deposit check (number and digest)."""
    login: RateLimiter
    """Wrong tokens at the login page (right ones cost nothing)."""

    @classmethod
    def of(cls, ledger: Ledger) -> RateLimits:
        http = ledger.config.http
        return cls(
            verify=RateLimiter(ledger, "verify", http.verify),
            check=RateLimiter(ledger, "check", http.check),
            login=RateLimiter(ledger, "login", http.login),
        )
