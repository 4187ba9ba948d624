"""Helpers for the PDF certificate tests: a real ledger, real PDFs, other people's tools.

``build_pdf_world`` makes a SQLite ledger with a notary, a file deposit whose
title tries a bidi override, a hash-only deposit with every field at its
longest, and a web capture (a manifest and an RGB PNG screenshot put in the
blob store, as the capture service deposits them); it seals, issues a
certificate for each, renders their signed PDFs, writes the trust file and
an NSS database that trusts the notary CA (for poppler's ``pdfsig``).
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.accounts import CreatedAccount, create_account
from ledger.certificates import issue_certificate, trust_export
from ledger.core import Ledger
from ledger.events import evidence_deposited, format_time
from ledger.pdfcert.service import certificate_pdf
from ledger.services import OPERATOR, Services
from verifier.canonical import canonicalize

ORIGIN = "pdf.test/log"
NOTARY = "Notary Zhang 张公证员"
FILE_CONTENT = "合同 contract v3\n".encode() * 50
BIDI_TITLE = "合同 v3 \u202egnp.exe\u200b"


def run(
    *args: str | Path, check: bool = False, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its text output."""
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=check
    )


BIN = Path(sys.executable).parent


def el(home: Path, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``evidence-ledger --home HOME ...`` as a real process."""
    return run(BIN / "evidence-ledger", "--home", home, *args, timeout=timeout)


def ev(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``evidence-verify ...`` as a real process."""
    return run(BIN / "evidence-verify", *args, timeout=timeout)


def png_rgb(width: int, height: int) -> bytes:
    """An 8-bit RGB PNG (a gradient with a dark band), like a viewport screenshot."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            dark = height // 3 <= y < height // 3 + 8
            rows += bytes((30, 30, 30) if dark else (x * 255 // width, y * 255 // height, 200))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def deposit_capture(ledger: Ledger, screenshot: bytes) -> str:
    """A capture deposit: manifest and artefacts in the blob store, as the service does."""
    files = {"page.wacz": b"PK\x03\x04 not really a wacz", "screenshot-viewport.png": screenshot}
    artefacts = []
    for path, data in files.items():
        info = ledger.blobs.put_stream([data])
        artefacts.append(
            {
                "media_type": "image/png" if path.endswith(".png") else "application/wacz+zip",
                "name": "screenshot_viewport" if path.endswith(".png") else "wacz",
                "path": path,
                "sha256": info.sha256,
                "size": info.size,
                "sm3": info.sm3,
            }
        )
    t = format_time(datetime.now(UTC))
    manifest = canonicalize(
        {
            "artefacts": artefacts,
            "browser": {},
            "capture_id": "c" * 32,
            "ended_at": t,
            "environment": {},
            "final_url": "https://example.org/final?\u202eq=1",
            "format": "evidence-capture/v1",
            "http_status": 200,
            "limit_reached": False,
            "main_document": {},
            "page_title": "Example",
            "platform": {},
            "redirects": [],
            "requested_url": "https://example.org/page",
            "requests": [],
            "settings": {},
            "started_at": t,
            "status": "complete",
        }
    )
    info = ledger.blobs.put_stream([manifest])
    draft = evidence_deposited(
        kind="capture",
        sha256=info.sha256,
        sm3=info.sm3,
        size=info.size,
        title="网页取证 Example page",
        file_name="capture-manifest.json",
        media_type="application/json",
    )
    ledger.append([draft])
    return draft.ref


@dataclass
class PdfWorld:
    root: Path
    home: Path
    ledger: Ledger
    notary: CreatedAccount
    file_cert: bytes
    long_cert: bytes
    capture_cert: bytes
    file_pdf: Path
    long_pdf: Path
    capture_pdf: Path
    trust: dict[str, Any]
    trust_path: Path
    nss: Path
    evidence: Path

    def cid(self, cert: bytes) -> str:
        return str(json.loads(cert)["certificate_id"])

    def write(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path


def build_pdf_world(root: Path) -> PdfWorld:
    root.mkdir(parents=True, exist_ok=True)
    home = root / "home"
    ledger = Ledger.init(home, origin=ORIGIN)
    notary = create_account(ledger, "notary", NOTARY)
    create_account(ledger, "rights_holder", "ACME")
    evidence = root / "contract.txt"
    evidence.write_bytes(FILE_CONTENT)
    with evidence.open("rb") as fh:
        file_id = (
            Services(ledger)
            .deposits.deposit_file(
                OPERATOR,
                fh,
                title=BIDI_TITLE,
                file_name="contract.txt",
                media_type="text/plain",
                owner="ACME",
            )
            .evidence_id
        )
    long = evidence_deposited(
        kind="hash",
        sha256=hashlib.sha256(b"long").hexdigest(),
        sm3="ab" * 32,
        size=10**15,
        title="很长的标题 Long title " * 50,
        file_name="文件" * 400,
        media_type="application/" + "x" * 200,
        owner="存证人 depositor " * 30,
    )
    ledger.append([long])
    long_id = long.ref
    capture_id = deposit_capture(ledger, png_rgb(320, 200))
    ledger.seal()
    file_cert = issue_certificate(ledger, file_id, notary.account_id).data
    long_cert = issue_certificate(
        ledger, long_id, notary.account_id, statement="声明 statement\n" * 300
    ).data
    capture_cert = issue_certificate(ledger, capture_id, notary.account_id).data
    pdfs = {}
    for name, cert in (("file", file_cert), ("long", long_cert), ("capture", capture_cert)):
        path = root / f"{name}.pdf"
        path.write_bytes(certificate_pdf(ledger, json.loads(cert)["certificate_id"]))
        pdfs[name] = path
    trust = trust_export(ledger)
    trust_path = root / "trust.json"
    trust_path.write_text(json.dumps(trust))
    nss = root / "nss"
    nss.mkdir()
    run("certutil", "-d", f"sql:{nss}", "-N", "--empty-password", check=True)
    ca = root / "notary-ca.pem"
    ca.write_text(trust["notary_ca_roots"][0])
    run(
        "certutil",
        "-d",
        f"sql:{nss}",
        "-A",
        "-n",
        "notary-ca",
        "-t",
        "CT,C,C",
        "-i",
        ca,
        check=True,
    )
    return PdfWorld(
        root=root,
        home=home,
        ledger=ledger,
        notary=notary,
        file_cert=file_cert,
        long_cert=long_cert,
        capture_cert=capture_cert,
        file_pdf=pdfs["file"],
        long_pdf=pdfs["long"],
        capture_pdf=pdfs["capture"],
        trust=trust,
        trust_path=trust_path,
        nss=nss,
        evidence=evidence,
    )


def pdfsig(world: PdfWorld, pdf: Path) -> str:
    """poppler's pdfsig report, with the NSS database that trusts the notary CA."""
    return run("pdfsig", "-nssdir", f"sql:{world.nss}", pdf).stdout
