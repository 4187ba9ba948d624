"""SSRF guard: which URLs and addresses the capture may reach.

A capture runs on the platform's network, so a page must not be able to make
it reach the platform's own services (loopback, the private network, cloud
metadata at 169.254.169.254...). Every URL the capture fetches — the main
document, every redirect hop and every sub-resource — passes
:meth:`AddressPolicy.check_url`; every connection is opened only to an
address that :meth:`AddressPolicy.resolve` resolved *and* checked, so a
hostname cannot resolve to a public address when checked and a private one
when connected (DNS rebinding).

An address is refused unless it is globally routable unicast, or the
operator allowed its range explicitly (``capture.allow`` / ``--allow``).
A hostname is refused if *any* of its addresses is refused: a name that
resolves to both a public and a private address is an attack, not a
choice.

International names and non-ASCII paths are requested in their ASCII form
(:attr:`Target.url`): the host in IDNA (UTS #46 nontransitional processing,
as browsers do, RFC 5891 A-labels), the path, query and fragment with every
byte that is not printable ASCII percent-encoded in UTF-8 (RFC 3986 section
2.1); the policy judges the addresses that ASCII name resolves to.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import idna

from ledger.errors import InvalidInput

__all__ = [
    "AddressPolicy",
    "IPAddress",
    "IPNetwork",
    "Refused",
    "Resolver",
    "Target",
    "ascii_host",
    "navigation_key",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses``: how hostnames are resolved (tests inject one)."""

SCHEMES = {"http": 80, "https": 443}
MAX_URL = 8192
# Printable ASCII but space stays as it is; "%" too (an escape already made).
_KEEP = "".join(chr(c) for c in range(0x21, 0x7F))


class Refused(InvalidInput):
    """The URL or address is not one the capture may reach."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: scheme, host (IDNA, lower case, no brackets) and port.

    ``url`` is the URL as requested: ASCII only (host in IDNA, the rest
    percent-encoded), the default port left out.
    """

    url: str
    scheme: str
    host: str
    port: int


def _category(ip: IPAddress) -> str | None:
    """Why ``ip`` is not public unicast, or None if it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            inner = _category(mapped)
            return f"{inner} (embedded in {ip})" if inner else None
        if ip.teredo is not None:
            return "Teredo tunnel"
    for attr, name in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(ip, attr):
            return name
    if not ip.is_global:
        return "not globally routable"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``host`` (TCP), in its order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise LookupError(f"{host}: cannot resolve ({e})") from e
    out: list[str] = []
    for *_, sockaddr in infos:
        addr = str(sockaddr[0]).split("%", 1)[0]
        if addr not in out:
            out.append(addr)
    return out


class AddressPolicy:
    """Public unicast addresses plus the operator's allowed ranges; nothing else."""

    def __init__(
        self, allow: Iterable[str | IPNetwork] = (), resolver: Resolver | None = None
    ) -> None:
        nets: list[IPNetwork] = []
        for n in allow:
            try:
                nets.append(ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n)
            except ValueError as e:
                raise InvalidInput(f"capture: {n!r} is not a CIDR range") from e
        self.allowed: tuple[IPNetwork, ...] = tuple(nets)
        self.resolver: Resolver = resolver or system_resolver

    def refusal(self, address: str | IPAddress) -> str | None:
        """Why ``address`` may not be reached, or None if it may."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if any(ip.version == n.version and ip in n for n in self.allowed):
            return None
        why = _category(ip)
        return None if why is None else f"{ip} is {why}"

    def check_url(self, url: str) -> Target:
        """Parse ``url`` and refuse what is not http(s) to a permitted host.

        (1) at most 8 KiB; (2) scheme http or https; (3) no user name or
        password; (4) a host, IDNA-encoded; (5) a valid port; (6) an IP
        literal host is checked here, a hostname when it is resolved.
        """
        if len(url) > MAX_URL:  # (1)
            raise Refused(f"capture: URL longer than {MAX_URL} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise Refused(f"capture: {url[:200]!r} is not a valid URL ({e})") from e
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:  # (2)
            raise Refused(
                f"capture: scheme {scheme + ':' if scheme else '(none)'} is refused; "
                "only http: and https: URLs can be captured"
            )
        if parts.username is not None or parts.password is not None:  # (3)
            raise Refused("capture: URLs with a user name or password are refused")
        host = (parts.hostname or "").rstrip(".")
        if not host:  # (4)
            raise Refused(f"capture: {url[:200]!r} has no host")
        try:
            ip: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is None:
            host = ascii_host(host)
        given_port = port
        port = port if port is not None else SCHEMES[scheme]
        if not 0 < port < 65536:  # (5)
            raise Refused(f"capture: port {port} is out of range")
        if ip is not None:  # (6)
            self._refuse(host, [str(ip)])
        netloc = f"[{ip.compressed}]" if isinstance(ip, ipaddress.IPv6Address) else host
        if given_port is not None and given_port != SCHEMES[scheme]:
            netloc += f":{port}"
        ascii_url = urlunsplit(
            (scheme, netloc, _escape(parts.path) or "/", _escape(parts.query), "")
        )
        if parts.fragment:
            ascii_url += "#" + _escape(parts.fragment)
        return Target(url=ascii_url, scheme=scheme, host=host, port=port)

    def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and check every address; return them in connection order."""
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = list(self.resolver(host, port))
        if not addresses:
            raise LookupError(f"{host}: no addresses")
        self._refuse(host, addresses)
        return addresses

    def _refuse(self, host: str, addresses: Sequence[str]) -> None:
        for a in addresses:
            why = self.refusal(a)
            if why is not None:
                shown = host if host == a else f"{host} resolves to {a}, which"
                category = why.split(" is ", 1)[1]
                raise Refused(
                    f"capture: refused: {shown} is not a public address ({category}); "
                    "the operator can allow its range explicitly"
                )


def ascii_host(host: str) -> str:
    """``host`` as requested: lower case; IDNA A-labels when it is not ASCII."""
    if host.isascii():
        return host.lower()
    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError) as e:
        raise Refused(f"capture: host {host[:100]!r} is not a valid international name") from e


def _escape(text: str) -> str:
    """Percent-encode (UTF-8) every character that is not printable ASCII."""
    return quote(text, safe=_KEEP)


def navigation_key(url: str) -> str:
    """What identifies a navigation's URL whatever its spelling: the URL without
    its fragment, percent-escapes decoded (Chromium and this module escape
    different sets of printable characters)."""
    return unquote(url.split("#", 1)[0])
