"""WARC 1.1 recording (ISO 28500:2017) with ``warcio``, and its CDXJ index.

Each exchange becomes a ``response`` record (status line, headers and payload
as received, ``WARC-IP-Address`` of the server, payload and block digests)
followed by its ``request`` record (``WARC-Concurrent-To`` the response). The
file starts with a ``warcinfo`` record describing the capture software.
Digests are SHA-256 (``sha256:`` + base32, the form warcio writes and
checks), not warcio's default SHA-1.

Payloads are recorded after removing the transfer coding (chunked) and with
any content coding (gzip) kept; a ``Transfer-Encoding`` header is recorded as
``X-Archive-Orig-Transfer-Encoding`` so replay tools do not try to de-chunk
the payload again.

Records are gzip members, one per record, so the offset and length of each
response record are known as it is written; :meth:`WarcRecorder.cdxj` gives
the sorted CDXJ index lines that WACZ needs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from ledger.capture.fetch import Exchange

__all__ = ["IndexEntry", "WarcRecorder", "surt", "warc_date"]

_WWW = re.compile(r"^www\d*\.")
_PATH_SAFE = "/%;:@&=+$,!~*'()[]"


class _Sha256WarcWriter(WARCWriter):  # type: ignore[misc]
    """warcio's writer with SHA-256 block and payload digests."""

    @staticmethod
    def _create_digester() -> Digester:
        return Digester("sha256")


def warc_date(t: datetime) -> str:
    """WARC-Date with microseconds (WARC 1.1 allows fractions of a second)."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def surt(url: str) -> str:
    """The Sort-friendly URI Reordering Transform used as CDXJ key.

    Lower case, scheme dropped, host labels reversed (``www``-prefix removed;
    IPv4 addresses reversed too, IPv6 without brackets), default port dropped,
    unsafe path characters percent-encoded, query arguments sorted, fragment
    dropped: the keys of the ``surt`` package's defaults for http(s) URLs,
    which replay tools compute for lookups.
    """
    p = urlsplit(url)
    host = (p.hostname or "").strip(".").lower()
    key = host if ":" in host else ",".join(reversed(_WWW.sub("", host).split(".")))
    default = {"http": 80, "https": 443}.get(p.scheme.lower())
    if p.port is not None and p.port != default:
        key += f":{p.port}"
    path = quote(p.path or "/", safe=_PATH_SAFE)
    query = "&".join(sorted(p.query.split("&"))) if p.query else ""
    return (key + ")" + path + ("?" + query if query else "")).lower()


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """Where a response record lies in the WARC file."""

    url: str
    time: datetime
    status: int
    mime: str
    digest: str
    offset: int
    length: int

    def cdxj(self, filename: str) -> str:
        fields = {
            "url": self.url,
            **({"mime": self.mime} if self.mime else {}),
            "status": str(self.status),
            "digest": self.digest,
            "length": str(self.length),
            "offset": str(self.offset),
            "filename": filename,
        }
        ts = self.time.strftime("%Y%m%d%H%M%S")
        return f"{surt(self.url)} {ts} {json.dumps(fields, ensure_ascii=False)}"


class WarcRecorder:
    """Writes one gzipped WARC 1.1 file for a capture."""

    def __init__(self, path: Path, info: dict[str, str]) -> None:
        self.path = path
        self._f: BinaryIO = path.open("wb")
        self._w = _Sha256WarcWriter(self._f, gzip=True, warc_version="1.1")
        self.entries: list[IndexEntry] = []
        self.records = 0
        self._write(self._w.create_warcinfo_record(path.name, info))

    def _write(self, record: Any) -> tuple[int, int]:
        start = self._f.tell()
        self._w.write_record(record)
        self.records += 1
        return start, self._f.tell() - start

    def record(self, ex: Exchange) -> None:
        """Append the response and request records of an exchange."""
        date = warc_date(ex.time)
        headers = [
            ("X-Archive-Orig-Transfer-Encoding", v) if k.lower() == "transfer-encoding" else (k, v)
            for k, v in ex.response_headers
        ]
        status_line = f"{ex.status} {ex.reason}".rstrip()
        http = StatusAndHeaders(status_line, headers, protocol=ex.http_version)
        warc_headers = {"WARC-Date": date}
        if ex.ip:
            warc_headers["WARC-IP-Address"] = ex.ip
        response = self._w.create_warc_record(
            ex.url,
            "response",
            payload=BytesIO(ex.body),
            length=len(ex.body),
            http_headers=http,
            warc_headers_dict=warc_headers,
        )
        offset, length = self._write(response)
        rid = response.rec_headers.get_header("WARC-Record-ID")
        p = urlsplit(ex.url)
        target = (p.path or "/") + (f"?{p.query}" if p.query else "")
        request = self._w.create_warc_record(
            ex.url,
            "request",
            payload=BytesIO(ex.request_body),
            length=len(ex.request_body),
            http_headers=StatusAndHeaders(
                f"{ex.method} {target} HTTP/1.1",
                list(ex.request_headers),
                is_http_request=True,
            ),
            warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": rid},
        )
        self._write(request)
        mime = (ex.header("content-type") or "").split(";", 1)[0].strip().lower()
        self.entries.append(
            IndexEntry(
                url=ex.url,
                time=ex.time,
                status=ex.status,
                mime=mime,
                digest=str(response.rec_headers.get_header("WARC-Payload-Digest")),
                offset=offset,
                length=length,
            )
        )

    def close(self) -> None:
        self._f.flush()
        self._f.close()

    def cdxj(self, filename: str) -> list[str]:
        """The CDXJ index of the response records, sorted."""
        return sorted(e.cdxj(filename) for e in self.entries)
