"""WACZ 1.1.1 packaging of a capture's WARC (Web Archive Collection Zipped).

Layout (all members stored, not deflated, as the WACZ specification requires
for WARC files and recommends for random access):

``archive/data.warc.gz``   the capture's WARC;
``indexes/index.cdx``      its CDXJ index (sorted, one line per response);
``pages/pages.jsonl``      the page list: a header line, then the captured page;
``datapackage.json``       Frictionless data package: every file with its
                           size and ``sha256:`` digest;
``datapackage-digest.json`` the SHA-256 of ``datapackage.json``.

Every member carries the capture's start time as its date, so the same
inputs always give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["WACZ_VERSION", "WaczPage", "write_wacz"]

WACZ_VERSION = "1.1.1"
WARC_NAME = "data.warc.gz"


@dataclass(frozen=True, slots=True)
class WaczPage:
    """The captured page as listed in ``pages/pages.jsonl``."""

    id: str
    url: str
    ts: str
    title: str


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")


def write_wacz(
    out: Path,
    warc: Path,
    cdxj: Sequence[str],
    page: WaczPage,
    *,
    created: datetime,
    software: str,
    title: str,
) -> None:
    """Write the WACZ file ``out`` from a WARC and its CDXJ index lines."""
    date = created.timetuple()[:6]
    pages = [
        json.dumps({"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}),
        json.dumps(
            {"id": page.id, "url": page.url, "ts": page.ts, "title": page.title},
            ensure_ascii=False,
        ),
    ]
    small = {
        "indexes/index.cdx": ("\n".join(cdxj) + "\n").encode("utf-8"),
        "pages/pages.jsonl": ("\n".join(pages) + "\n").encode("utf-8"),
    }
    resources = []
    sha = hashlib.sha256()
    size = 0
    with warc.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    resources.append(
        {
            "name": WARC_NAME,
            "path": f"archive/{WARC_NAME}",
            "hash": f"sha256:{sha.hexdigest()}",
            "bytes": size,
        }
    )
    for path, data in small.items():
        resources.append(
            {
                "name": path.rsplit("/", 1)[1],
                "path": path,
                "hash": f"sha256:{hashlib.sha256(data).hexdigest()}",
                "bytes": len(data),
            }
        )
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    package = _dumps(
        {
            "profile": "data-package",
            "wacz_version": WACZ_VERSION,
            "title": title,
            "created": stamp,
            "modified": stamp,
            "software": software,
            "mainPageUrl": page.url,
            "mainPageDate": page.ts,
            "resources": resources,
        }
    )
    digest = _dumps(
        {"path": "datapackage.json", "hash": f"sha256:{hashlib.sha256(package).hexdigest()}"}
    )

    def info(name: str) -> zipfile.ZipInfo:
        zi = zipfile.ZipInfo(name, date_time=date)
        zi.compress_type = zipfile.ZIP_STORED
        zi.external_attr = 0o644 << 16
        return zi

    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        with warc.open("rb") as src, z.open(info(f"archive/{WARC_NAME}"), "w") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        for path, data in small.items():
            z.writestr(info(path), data)
        z.writestr(info("datapackage.json"), package)
        z.writestr(info("datapackage-digest.json"), digest)
