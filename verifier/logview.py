"""A log view for certificates: audit a log export, then ask it about certificates.

:func:`audit_source` audits a tlog-tiles export (a directory or an http(s)
URL) with the trust file's key for the export's origin, collecting the
``certificate.issued`` and ``certificate.revoked`` events and the tree roots
at the sizes of the certificates' checkpoints in the same pass.
:func:`certificate_status` then says, for one certificate, whether the view
can be used (audit valid, same origin, the certificate's checkpoint is a
prefix of the view: no split view) and, by the fold of
:mod:`verifier.status` (the same the ledger's status route uses), whether
the certificate was logged and revoked.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from verifier.certificate import Certificate, LogStatus
from verifier.checkpoint import Checkpoint
from verifier.errors import MalformedError
from verifier.logaudit import MAX_CHECKPOINT_SIZE, LogAudit, audit_log
from verifier.note import VerifierKey, parse_note
from verifier.record import decode_record
from verifier.remote import fetch_log, is_url
from verifier.status import FOLDED_TYPES, StatusFold
from verifier.trust import Trust

__all__ = [
    "CERTIFICATE_EVENTS",
    "LogView",
    "audit_source",
    "certificate_status",
    "choose_log_key",
    "fold",
    "revocations",
]

CERTIFICATE_EVENTS = tuple(sorted(FOLDED_TYPES))
"""The event types an audit collects for the fold."""


def choose_log_key(checkpoint: bytes, trust: Trust) -> VerifierKey:
    """The trusted key to audit a checkpoint with: one for its origin that
    signed it if any, else any key for its origin, else the first log key
    (then the audit's signature check fails, naming the origin)."""
    try:
        note = parse_note(checkpoint)
        origin = Checkpoint.from_text(note.text).origin
    except MalformedError as e:
        raise MalformedError(f"log: checkpoint: {e}") from e
    keys = trust.log_keys(origin)
    for k in keys:
        if any(s.name == k.name and s.key_id == k.key_id for s in note.signatures):
            return k
    return keys[0] if keys else trust.logs[0]


@dataclass(frozen=True, slots=True)
class LogView:
    """An audited export: the audit report and the checkpoint it audited."""

    audit: LogAudit
    checkpoint: bytes


def _read_checkpoint(directory: Path) -> bytes:
    try:
        with open(directory / "checkpoint", "rb") as f:
            data = f.read(MAX_CHECKPOINT_SIZE + 1)
    except OSError as e:
        raise MalformedError(
            f"log: cannot read {str(directory / 'checkpoint')!r}: {e.strerror}"
        ) from e
    if len(data) > MAX_CHECKPOINT_SIZE:
        raise MalformedError("log: checkpoint is too large")
    return data


def audit_source(
    source: str | os.PathLike[str],
    trust: Trust,
    *,
    old_checkpoint: bytes | None = None,
    sizes: Collection[int] = (),
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> LogView:
    """Audit the export at ``source`` (directory or URL) with the trust file's key
    (``progress``: see :func:`~verifier.logaudit.audit_log`)."""
    text = os.fspath(source)
    if is_url(text):
        with tempfile.TemporaryDirectory(prefix="evidence-verify-") as tmp:
            fetch_log(text, tmp)
            return _audit(Path(tmp), trust, old_checkpoint, sizes, workers, progress)
    directory = Path(text)
    if not directory.is_dir():
        raise MalformedError(f"log: {text!r} is neither a directory nor an http(s) URL")
    return _audit(directory, trust, old_checkpoint, sizes, workers, progress)


def _audit(
    directory: Path,
    trust: Trust,
    old: bytes | None,
    sizes: Collection[int],
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> LogView:
    checkpoint = _read_checkpoint(directory)
    audit = audit_log(
        directory,
        choose_log_key(checkpoint, trust),
        old,
        workers=workers,
        collect_types=CERTIFICATE_EVENTS,
        roots_at=sizes,
        progress=progress,
    )
    return LogView(audit=audit, checkpoint=checkpoint)


def certificate_status(audit: LogAudit, cert: Certificate) -> LogStatus:
    """What the audited view says about ``cert`` (see :class:`LogStatus`)."""
    cp = cert.checkpoint_body
    failed = [c for c in audit.checks if not c.ok]
    error: str | None = None
    if failed:
        error = f"the log audit failed ({failed[0].name}: {failed[0].detail})"
    elif cp.origin != audit.origin:
        error = f"the certificate is from log {cp.origin!r}, the view is of {audit.origin!r}"
    elif cp.size > audit.size:
        error = (
            f"the view (size {audit.size}) is older than the certificate's checkpoint "
            f"(size {cp.size})"
        )
    elif dict(audit.roots).get(cp.size) != cp.root:
        error = (
            f"the log's tree at size {cp.size} has another root than the certificate's "
            "checkpoint: the log shows different histories (split view)"
        )
    if error is not None:
        return LogStatus(origin=audit.origin, size=audit.size, error=error)
    return fold(audit).log_status(cert, audit.origin, audit.size)


def fold(audit: LogAudit) -> StatusFold:
    """The status fold over the audit's collected events (public records only).

    A leaf that is not a valid record at its index was already reported by
    the audit; it is left out here.
    """
    result = StatusFold()
    last = -1
    for index, leaf in sorted(audit.events):
        try:
            record = decode_record(leaf)
        except MalformedError:
            continue
        if record.index == index > last:
            result.add(record)
            last = index
    return result


def revocations(audit: LogAudit) -> list[dict[str, object]]:
    """Each revoked certificate in the audited log, with its first revocation's
    index and time."""
    return [
        {"index": r.index, "time": r.time, "certificate_id": c.certificate_id}
        for c, r in fold(audit).revocations()
    ]
