"""Request body limits, enforced while the bytes arrive.

:class:`BodyLimits` is the outermost middleware of the service: it sees a
request before authentication, before the fast path and before any body is
parsed. Each route has a limit (:func:`route_limits`): an upload route
accepts a large ``multipart/form-data`` body (its parts are then bounded
again by :mod:`api.upload`), every other body (JSON, forms) is small. A
declared ``Content-Length`` above the limit is answered 413 at once, without
reading a byte of the body; a body without one (chunked) is cut off as soon
as the bytes received pass the limit. Either way the 413 is an RFC 9457
problem with ``Connection: close``, so the client cannot go on sending, and
the server never holds more than the limit (and one read) of any body:
an anonymous client cannot make it buffer a large JSON document only to
learn that it needed a token. Any other answer given before the body was
read to its end (a part over its limit, a 429, a 401) closes the connection
too, rather than reading and discarding the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.certificates import MAX_VERIFY_BYTES
from api.evidence import MAX_JSON_DEPOSIT
from api.problems import http_problem
from ledger.capture.steps import MAX_STEPS_FILE
from ledger.config import Config

__all__ = ["BodyLimit", "BodyLimits", "BodyTooLarge", "route_limits"]

# Multipart envelope around the file bytes that api.upload counts: part
# headers, delimiters and text fields (at most 64 parts and 44 KB of text).
MULTIPART_ENVELOPE = 1 << 20
MULTIPART = b"multipart/form-data"


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """The most a route accepts: ``multipart`` bytes of a multipart/form-data
    body, ``other`` bytes of any other body."""

    other: int
    multipart: int


def route_limits(config: Config) -> tuple[dict[tuple[str, str], BodyLimit], BodyLimit]:
    """The body limit of each route that accepts more than the default, and the default."""
    small = config.http.max_body_bytes
    upload = config.max_upload_bytes + MULTIPART_ENVELOPE
    verify = MAX_VERIFY_BYTES + MULTIPART_ENVELOPE
    routes = {
        ("POST", "/v1/evidence"): BodyLimit(other=MAX_JSON_DEPOSIT, multipart=upload),
        ("POST", "/console/deposit"): BodyLimit(other=small, multipart=upload),
        ("POST", "/v1/verify"): BodyLimit(other=small, multipart=verify),
        ("POST", "/verify"): BodyLimit(other=small, multipart=verify),
        # Scripted steps may come from a file of up to MAX_STEPS_FILE bytes.
        ("POST", "/v1/captures"): BodyLimit(other=2 * MAX_STEPS_FILE, multipart=small),
    }
    return routes, BodyLimit(other=small, multipart=small)


class BodyTooLarge(HTTPException):
    """The body passed its route's limit while it streamed in (413).

    An :class:`HTTPException`, so that FastAPI's body reading lets it through
    as it is and the problem handlers answer it.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"request: body larger than the limit of {limit} bytes",
            headers={"Connection": "close"},
        )


_WANTED = (b"content-type", b"content-length", b"transfer-encoding")


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The (first) Content-Type, Content-Length and Transfer-Encoding, in one pass."""
    found: dict[bytes, bytes] = {}
    for key, value in scope["headers"]:
        if key in _WANTED and key not in found:
            found[key] = bytes(value)
    return found


class BodyLimits:
    """ASGI middleware: every request body within its route's limit."""

    def __init__(
        self, app: ASGIApp, routes: Mapping[tuple[str, str], BodyLimit], default: BodyLimit
    ) -> None:
        self.app = app
        self._routes = dict(routes)
        self._default = default

    def limit(self, scope: Scope, content_type: bytes) -> int:
        """The limit of this request's body, from its route and media type."""
        rule = self._routes.get((scope["method"], scope["path"]), self._default)
        media = content_type.split(b";", 1)[0].strip().lower()
        return rule.multipart if media == MULTIPART else rule.other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        limit = self.limit(scope, headers.get(b"content-type", b""))
        declared = headers.get(b"content-length")
        # The server has checked Content-Length is a number; be safe anyway.
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        over = False
        started = False
        unread = (declared is not None and declared.strip() not in (b"", b"0")) or (
            b"transfer-encoding" in headers
        )

        async def limited() -> Message:
            nonlocal received, over, unread
            if over:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge(limit)
                if not message.get("more_body", False):
                    unread = False
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if over or unread:  # the rest of the body is not wanted: no draining it
                    headers = [(k, v) for k, v in message.get("headers", ()) if k != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, limited, sending)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        await http_problem(BodyTooLarge(limit))(scope, receive, send)
