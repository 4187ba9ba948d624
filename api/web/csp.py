"""Content-Security-Policy and the other security headers of every page.

The policy is a dict that starts from ``default-src 'none'`` and
``frame-ancestors 'none'``: nothing loads unless a directive names it, and
no other site may frame a page. Scripts, styles and images come only from
this origin, and there is no inline script anywhere. A page that needs more
(the in-browser hashing needs WebAssembly) merges a few sources into a copy;
every distinct policy is serialised once and reused for every response.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

__all__ = ["HASHING", "POLICY", "SWAGGER", "headers", "serialise"]

Policy = Mapping[str, tuple[str, ...]]

POLICY: Policy = {
    "default-src": ("'none'",),
    "frame-ancestors": ("'none'",),
    "base-uri": ("'none'",),
    "form-action": ("'self'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'",),
    "font-src": ("'self'",),
    "connect-src": ("'self'",),
}

# Pages that hash files in the browser (hash-wasm compiles WebAssembly).
HASHING: Policy = {"script-src": ("'wasm-unsafe-eval'",)}
# Swagger UI sets style attributes and shows its logo as a data: URL.
SWAGGER: Policy = {"style-src": ("'unsafe-inline'",), "img-src": ("data:",)}

_FIXED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin keeps the Origin header on form posts (checked with the CSRF token).
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
_HSTS = "max-age=31536000"


def serialise(policy: Policy) -> str:
    """``directive source source; directive ...`` in the dict's order."""
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in policy.items())


@cache
def _header(*extras: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    merged = {k: tuple(v) for k, v in POLICY.items()}
    for extra in extras:
        for name, sources in extra:
            merged[name] = tuple(s for s in merged.get(name, ()) if s != "'none'") + sources
    return serialise(merged)


def headers(*extras: Policy, https: bool = False) -> dict[str, str]:
    """The security headers of a response, with ``extras`` merged into the policy."""
    frozen = tuple(tuple((k, tuple(v)) for k, v in e.items()) for e in extras)
    out = {"Content-Security-Policy": _header(*frozen), **_FIXED}
    if https:
        out["Strict-Transport-Security"] = _HSTS
    return out
