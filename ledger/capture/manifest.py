"""Build the capture manifest (format defined in :mod:`verifier.capture`)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from cryptography import x509

from ledger.capture.browser import ACCEPT_LANGUAGE, PageCapture
from ledger.capture.env import clock_check, proxy_check, software_versions
from ledger.capture.fetch import TlsInfo
from ledger.capture.options import CaptureOptions
from ledger.events import format_time
from verifier.capture import CAPTURE_FORMAT

__all__ = ["build_manifest"]

NETWORK_ISOLATION = (
    "the browser has no network of its own (its own network namespace with no "
    "interface up, as an unprivileged user with Chromium's sandbox on; proxy on a "
    "closed port, no resolver, WebRTC without UDP); every request it makes is "
    "intercepted, checked against the address policy, fetched by the platform and "
    "recorded in the WARC before the browser sees it"
)
WEAK_ISOLATION = (
    "the browser runs without a network namespace (capture.isolation = none, chosen "
    "by the operator): proxy on a closed port, no resolver, WebRTC without UDP; "
    "every request it makes is intercepted, checked against the address policy, "
    "fetched by the platform and recorded in the WARC before the browser sees it"
)


PRIVACY_NOTE = (
    "texts typed as secrets are not in this manifest, its action log or the public "
    "artefacts: replaced by [secret] in URLs, titles and errors; masked in the video, "
    "screenshots and PDF; exchanges carrying them are in a separate WARC (warc_secret), "
    "and any artefact showing them is private, both kept out of the public package"
)
MAX_WITHHELD = 200


def _time(t: datetime) -> str:
    return format_time(t)


def tls_facts(tls: TlsInfo, at: datetime) -> dict[str, Any]:
    """Protocol, cipher and every certificate of the chain (leaf first)."""
    certs = []
    valid = None
    for i, der in enumerate(tls.chain):
        c = x509.load_der_x509_certificate(der)
        nb, na = c.not_valid_before_utc, c.not_valid_after_utc
        if i == 0:
            valid = nb <= at <= na
        certs.append(
            {
                "subject": c.subject.rfc4514_string(),
                "issuer": c.issuer.rfc4514_string(),
                "serial_number": format(c.serial_number, "x"),
                "not_before": _time(nb),
                "not_after": _time(na),
                "sha256_fingerprint": hashlib.sha256(der).hexdigest(),
            }
        )
    return {
        "protocol": tls.version,
        "cipher": tls.cipher,
        "chain_verified": tls.verified_chain,
        "leaf_valid_at_capture": valid,
        "certificates": certs,
    }


def build_manifest(
    capture_id: str,
    pc: PageCapture,
    options: CaptureOptions,
    allowed: list[str],
    artefacts: list[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest object; every member is documented in ``docs/capture.md``."""
    main = pc.main
    assert pc.ended is not None
    manifest: dict[str, Any] = {
        "format": CAPTURE_FORMAT,
        "capture_id": capture_id,
        "requested_url": pc.requested_url,
        "requested_url_sent": pc.preflight.hops[0].url,
        "final_url": pc.final_url,
        "status": pc.status,
        "limit_reached": pc.limit,
        "http_status": main.status,
        "page_title": pc.page_title,
        "redirects": [
            {"url": h.url, "status": h.status, "location": h.header("location") or ""}
            for h in pc.preflight.hops[:-1]
        ],
        "started_at": _time(pc.started),
        "ended_at": _time(pc.ended),
        "settings": {
            "options": options.to_json(),
            "limits": pc.limits,
            "allowed_networks": allowed,
            "accept_language": ACCEPT_LANGUAGE,
            "locale": "zh-CN",
        },
        "browser": pc.browser,
        "platform": software_versions(),
        "environment": {
            "fresh_profile": pc.profile,
            "proxy": proxy_check(),
            "network": (
                WEAK_ISOLATION if pc.jail is None or pc.jail.mode == "none" else NETWORK_ISOLATION
            ),
            "clock": clock_check(),
            "resolved_addresses": pc.resolved,
        },
        "main_document": {
            "url": main.url,
            "status": main.status,
            "reason": main.reason,
            "http_version": main.http_version,
            "server_ip": main.ip,
            "server_port": main.port,
            "content_type": main.header("content-type") or "",
            "tls": tls_facts(main.tls, pc.started) if main.tls is not None else None,
        },
        "requests": {
            "sent": pc.requests,
            "responses_recorded": pc.responses,
            "bytes_received": pc.bytes,
            "refused": pc.refused,
            "failed": pc.failed,
            "aborted": pc.aborted,
        },
    }
    if pc.video is not None:
        manifest["recording"] = pc.video.facts("video")
    if options.steps or pc.interactive is not None:
        manifest["actions"] = pc.actions
    if pc.interactive is not None:
        manifest["interactive"] = pc.interactive
    if pc.secrets:
        manifest["secrets"] = {
            "typed": pc.secrets.count,
            "handling": PRIVACY_NOTE,
            "withheld_records": pc.withheld[:MAX_WITHHELD],
            "withheld_records_total": len(pc.withheld),
            "private_artefacts": sorted(pc.private),
        }
    # Page-derived text (URLs, titles, errors) may show a secret typed during
    # the steps: replaced everywhere before anything is written.
    manifest = pc.secrets.redact_json(manifest)
    manifest["artefacts"] = artefacts
    return manifest
