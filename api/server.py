"""How ``evidence-ledger serve`` runs uvicorn: bounded request heads, no proxy guessing.

uvicorn's fast HTTP/1.1 parser (httptools, over llhttp) puts no bound on a
request line or its headers: a client could send one 64 MiB header and the
worker would hold it. :class:`BoundedHttpTools` counts the bytes of each
request head as they arrive and answers 431 (an RFC 9457 problem) and
closes the connection once they pass ``http.max_header_bytes``, before the
parser has buffered more than that; the pure-Python h11 parser gets the same
bound through ``h11_max_incomplete_event_size``. Bodies are bounded by
:mod:`api.limits`.

uvicorn's own ``X-Forwarded-For`` handling is turned off: by default it
believes any loopback peer, which would let a local client choose its rate
limit bucket. :mod:`api.proxies` believes only the configured proxies.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ledger.config import HttpConfig

__all__ = ["BoundedHttpTools", "server_options"]

_DEFAULT_HEAD = 32 * 1024


def server_options(http: HttpConfig) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` that apply the HTTP settings."""
    return {
        "http": f"{__name__}:BoundedHttpTools",
        "h11_max_incomplete_event_size": http.max_header_bytes,
        "proxy_headers": False,
    }


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads over a size.

    The parser is fed at most the bytes a head may still take while a head
    is being read; once its headers are complete the rest goes through
    unsliced. (Bytes of a pipelined request that start in the same read as
    the end of the previous one are not counted, so a head is held to at
    most twice the limit in that case.)
    """

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._max_head = int(config.h11_max_incomplete_event_size or _DEFAULT_HEAD)
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        while data:
            if not self._in_head:
                super().data_received(data)
                return
            room = self._max_head - self._head_bytes
            if room <= 0:
                self._refuse_head()
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing():
                return
        if self._in_head and self._head_bytes >= self._max_head:
            self._refuse_head()

    def _refuse_head(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a response is under way: nothing else may be written
            return
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Request Header Fields Too Large",
                "status": 431,
                "detail": f"request: line and headers larger than {self._max_head} bytes",
            }
        ).encode()
        head = (
            "HTTP/1.1 431 Request Header Fields Too Large\r\n"
            "content-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self.transport.close()
