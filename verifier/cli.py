"""``evidence-verify``: the offline verifier's command line.

Thin over the library: each command parses its arguments, calls one library
function and prints its report. Exit status: 0 valid, 1 invalid (a check
failed), 2 an input could not be read or parsed (including bad arguments).

Commands: ``package`` (an evidence package zip), ``certificate`` (a
certificate and the evidence files), ``pdf`` (a signed PDF certificate),
``log`` (a tlog-tiles export or URL),
all checked against a trust file the judge obtained elsewhere; and
``timestamp`` (any RFC 3161 token, against TSA roots given directly).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from verifier.anchors import witness_check
from verifier.certificate import (
    MAX_CERTIFICATE_SIZE,
    Certificate,
    LogStatus,
    log_view_checks,
    verify_certificate,
)
from verifier.digest import FileDigest, digest_file
from verifier.errors import Error, MalformedError
from verifier.ers import MAX_RECORD_SIZE
from verifier.note import VerifierKey, parse_note
from verifier.package import PackageReader, verify_package
from verifier.progress import progress
from verifier.report import LANGS, Check, Report, dumps, render_json, render_text
from verifier.trust import Trust, parse_utc, read_trust

if TYPE_CHECKING:
    from verifier.logaudit import LogAudit
    from verifier.logview import LogView

# The log audit (and its multiprocessing) is imported by the commands that use
# it: verifying a package or certificate must start fast.
MAX_CHECKPOINT_SIZE = 1 << 20

__all__ = ["EXIT_INPUT", "EXIT_INVALID", "EXIT_VALID", "build_parser", "main"]

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_INPUT = 2

_LOG_EPILOG = """\
example:
  evidence-verify log ./export --trust trust.json
  evidence-verify log https://ledger.example/log --trust trust.json --certificate cert.json
  evidence-verify log ./export --vkey 'ledger.example/log+1a2b3c4d+AcfM...'
  evidence-verify log ./export --vkey log.vkey --from old-checkpoint.txt --json

DIR holds a C2SP tlog-tiles export: DIR/checkpoint, DIR/tile/<L>/<N>[.p/<W>]
and DIR/tile/entries/<N>[.p/<W>]; a URL is fetched to a temporary copy first.

exit status: 0 valid, 1 invalid, 2 input unreadable or malformed.
"""

_PACKAGE_EPILOG = """\
example:
  evidence-verify package evidence-package.zip --trust trust.json
  evidence-verify package evidence-package.zip --trust trust.json --log ./export --lang zh
  evidence-verify package evidence-package.zip --trust trust.json --at 2031-06-01T00:00:00Z

The trust file comes from the court or the IP office, never from the package.
The timestamp must still be trustworthy at the verification time (now, or
--at): its TSA certificate unexpired, or the token renewed in time by the
package's evidence records (RFC 4998).

exit status: 0 valid, 1 invalid, 2 input unreadable or malformed.
"""

_CERTIFICATE_EPILOG = """\
example:
  evidence-verify certificate cert.json --evidence contract.pdf --trust trust.json
  evidence-verify certificate cert.json --trust trust.json --json   (hash-only deposit)
  evidence-verify certificate cert.json --trust trust.json --evidence-record 1.ers

exit status: 0 valid, 1 invalid, 2 input unreadable or malformed.
"""


_TIMESTAMP_EPILOG = """\
example:
  evidence-verify timestamp token.tst --data contract.pdf --roots tsa-roots.pem
  evidence-verify timestamp reply.tsr --digest 9f86d081884c7d65... --roots root.pem --json

TOKEN is a TimeStampToken or a whole TimeStampResp (status granted), in DER or
BER, or the same as base64 (PEM armour lines allowed). --data is hashed with
the token's imprint algorithm (SHA-256, SHA-384 or SHA-512; MD5 and SHA-1 are
refused); --digest gives that hash in hex instead. The TSA certificate must
chain to one of the --roots certificates, valid at the token's genTime.

exit status: 0 valid, 1 invalid, 2 input unreadable or malformed.
"""


_PDF_EPILOG = """\
example:
  evidence-verify pdf certificate.pdf --trust trust.json
  evidence-verify pdf certificate.pdf --trust trust.json --evidence contract.pdf --lang zh
  evidence-verify pdf certificate.pdf --trust trust.json --log ./export --json

The trust file must list the notary CA roots (notary_ca_roots) that sign the
notaries' X.509 certificates; it comes from the court or the IP office.

exit status: 0 valid, 1 invalid, 2 input unreadable or malformed.
"""


def _default_lang() -> str:
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--json", action="store_true", help="print the report as JSON")
    sub.add_argument(
        "--lang",
        choices=LANGS,
        default=_default_lang(),
        help="language of the report: zh (中文) or en (default: from LANG)",
    )


def _at_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--at",
        metavar="TIME",
        type=_utc_time,
        default=None,
        help="verification time, RFC 3339 UTC (e.g. 2031-06-01T00:00:00Z; default: now): "
        "whether the timestamp, or its last renewal, is still trustworthy then",
    )


def _utc_time(text: str) -> datetime:
    try:
        return parse_utc(text, "--at")
    except MalformedError as e:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 UTC time (e.g. 2031-06-01T00:00:00Z)"
        ) from e


def _log_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--log",
        metavar="DIR_OR_URL",
        help="a tlog-tiles export of the log (directory or URL): audit it, then check "
        "that the certificate was recorded and has not been revoked",
    )
    sub.add_argument(
        "--workers",
        type=_positive_int,
        default=min(os.cpu_count() or 1, 8),
        metavar="N",
        help="with --log: processes that parse entries in parallel "
        "(default: one per CPU, at most 8)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser (one sub-parser per command)."""
    parser = argparse.ArgumentParser(
        prog="evidence-verify",
        description="Verify evidence-ledger artefacts offline, without trusting the platform.",
        epilog="exit status: 0 valid, 1 invalid, 2 input unreadable or malformed.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    log = commands.add_parser(
        "log",
        help="audit a static tlog-tiles export of the log",
        description=(
            "Audit a static C2SP tlog-tiles export of the log: check the signed\n"
            "checkpoint; recompute every leaf hash, hash tile and the root from the\n"
            "entries; check each entry's index and hash chain; with --from, check\n"
            "that an older checkpoint's tree is a prefix (no rollback, no rewrite)."
        ),
        epilog=_LOG_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    log.add_argument(
        "directory", metavar="DIR_OR_URL", help="the export directory or the log's http(s) URL"
    )
    keys = log.add_mutually_exclusive_group(required=True)
    keys.add_argument(
        "--vkey",
        metavar="VKEY",
        help="the log's verifier key (name+hash+base64) or a file that contains it",
    )
    keys.add_argument(
        "--trust",
        metavar="TRUST.json",
        help="a trust file (evidence-trust/v1): log keys by origin, witness quorum",
    )
    log.add_argument(
        "--certificate",
        action="append",
        default=[],
        metavar="CERT",
        help="with --trust: a certificate (JSON or package zip) to look up in the log: "
        "recorded, revoked? (repeatable)",
    )
    log.add_argument(
        "--lang",
        choices=LANGS,
        default=_default_lang(),
        help="with --trust: language of the report, zh (中文) or en",
    )
    log.add_argument(
        "--from",
        dest="old",
        metavar="OLD_CHECKPOINT_FILE",
        help="an older signed checkpoint of the same log, to check for a rollback or rewrite",
    )
    log.add_argument("--json", action="store_true", help="print the report as JSON")
    log.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar (it is drawn on stderr only when stderr is a terminal)",
    )
    log.add_argument(
        "--workers",
        type=_positive_int,
        default=min(os.cpu_count() or 1, 8),
        metavar="N",
        help="processes that parse entries in parallel (default: one per CPU, at most 8)",
    )
    log.set_defaults(run=_run_log)

    package = commands.add_parser(
        "package",
        help="verify an evidence package (zip) against a trust file",
        description=(
            "Verify an evidence package: the zip's structure (no unsafe names, no\n"
            "duplicates, no compressed members), the evidence file's digests, the\n"
            "certificate's log entry, commitment, inclusion proof, checkpoint\n"
            "signatures, witnesses and timestamp, and the notary's signature and key\n"
            "validity; with --log, that it is recorded in the log and not revoked."
        ),
        epilog=_PACKAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    package.add_argument("package", metavar="PKG.zip", help="the evidence package")
    package.add_argument("--trust", required=True, metavar="TRUST.json", help="the trust file")
    _at_option(package)
    _log_option(package)
    _common(package)
    package.set_defaults(run=_run_package)

    certificate = commands.add_parser(
        "certificate",
        help="verify a certificate and the evidence files it covers",
        description=(
            "Verify a deposit certificate (certificate.json) and, with --evidence, that\n"
            "each file is the deposited one; the same checks as for a package."
        ),
        epilog=_CERTIFICATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    certificate.add_argument("certificate", metavar="CERT.json", help="the certificate")
    certificate.add_argument(
        "--evidence",
        nargs="+",
        default=[],
        metavar="FILE",
        help="the evidence file(s) whose digests must match (none for a hash-only deposit)",
    )
    certificate.add_argument("--trust", required=True, metavar="TRUST.json", help="the trust file")
    certificate.add_argument(
        "--evidence-record",
        action="append",
        default=[],
        metavar="ERS",
        help="an RFC 4998 evidence record renewing the checkpoint's timestamp (repeatable)",
    )
    _at_option(certificate)
    _log_option(certificate)
    _common(certificate)
    certificate.set_defaults(run=_run_certificate)

    pdf = commands.add_parser(
        "pdf",
        help="verify a signed PDF certificate (存证证书 PDF) against a trust file",
        description=(
            "Verify a PDF certificate: its PAdES signature and the signer's chain to a\n"
            "notary CA root of the trust file at signing time, the signature timestamp,\n"
            "that nothing was appended after the signature (incremental updates), the\n"
            "attached certificate.json and proof.txt, that the page says exactly what\n"
            "certificate.json says, and every check of 'evidence-verify certificate'."
        ),
        epilog=_PDF_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pdf.add_argument("pdf", metavar="FILE.pdf", help="the PDF certificate")
    pdf.add_argument(
        "--evidence",
        nargs="+",
        default=[],
        metavar="FILE",
        help="the evidence file(s) whose digests must match (none for a hash-only deposit)",
    )
    pdf.add_argument("--trust", required=True, metavar="TRUST.json", help="the trust file")
    _log_option(pdf)
    _common(pdf)
    pdf.set_defaults(run=_run_pdf)
    _add_timestamp_command(commands)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


class _InputError(Exception):
    """An argument names a file that cannot be read."""


def _load_key(value: str) -> VerifierKey:
    """Parse VKEY: a verifier key, or the name of a file holding one."""
    try:
        is_file = Path(value).is_file()
    except OSError:  # e.g. a name too long to be a path: then it is a key
        is_file = False
    if is_file:
        try:
            value = Path(value).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise _InputError(f"cannot read verifier key file {value!r}: {e}") from e
    return VerifierKey.from_text(value)


def _read_old(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            old = f.read(MAX_CHECKPOINT_SIZE + 1)
    except OSError as e:
        raise _InputError(f"cannot read old checkpoint {path!r}: {e.strerror}") from e
    if len(old) > MAX_CHECKPOINT_SIZE:
        raise _InputError(f"old checkpoint {path!r} is not a checkpoint (too large)")
    return old


def _write(out: TextIO, text: str) -> None:
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        # The reader (say, `| head`) left: the verdict is still the exit status.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())


def _run_log(args: argparse.Namespace, out: TextIO) -> int:
    from verifier.logaudit import audit_log
    from verifier.logview import audit_source, certificate_status, revocations

    old = _read_old(args.old)
    if args.trust is None:
        if args.certificate:
            raise _InputError("--certificate needs --trust")
        with progress(None, "log", enabled=None if args.progress else False) as bar:
            report = audit_log(
                args.directory, _load_key(args.vkey), old, workers=args.workers, progress=bar.to
            )
        if args.json:
            _write(out, json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
        else:
            _write(out, _format_audit(report))
        return EXIT_VALID if report.valid else EXIT_INVALID
    trust = read_trust(args.trust)
    certs = [_load_certificate_or_package(p) for p in args.certificate]
    with progress(None, "log", enabled=None if args.progress else False) as bar:
        view = audit_source(
            args.directory,
            trust,
            old_checkpoint=old,
            sizes={c.checkpoint_body.size for c in certs},
            workers=args.workers,
            progress=bar.to,
        )
    audit = view.audit
    checks = [_audit_check(c.name, c.status, c.detail) for c in audit.checks]
    checks.append(_log_witnesses(view, trust))
    for cert in certs:
        status = certificate_status(audit, cert)
        for c in log_view_checks(cert, status):
            checks.append(Check(c.key, c.status, c.reason, c.reason_zh, cert.certificate_id[:16]))
    log_report = Report(
        "log", args.directory, tuple(checks), {"origin": audit.origin, "size": audit.size}
    )
    rate = audit.entries_read / audit.seconds if audit.seconds > 0 else 0.0
    if args.json:
        doc = render_json(log_report, args.lang)
        doc.update(
            entries_read=audit.entries_read,
            seconds=round(audit.seconds, 6),
            entries_per_second=round(rate),
            revoked=revocations(audit),
        )
        _write(out, dumps(doc) + "\n")
    else:
        speed = (
            f"{audit.entries_read} 条，用时 {audit.seconds:.2f} 秒（每秒 {rate:,.0f} 条）\n"
            if args.lang == "zh"
            else f"{audit.entries_read} entries read in {audit.seconds:.2f} s "
            f"({rate:,.0f} entries/s)\n"
        )
        _write(out, render_text(log_report, args.lang) + speed)
    return EXIT_VALID if log_report.valid else EXIT_INVALID


def _audit_check(name: str, status: str, detail: str) -> Check:
    # The log audit reports in English; the Chinese report keeps its detail verbatim.
    return Check(name, status, detail, detail)


def _log_witnesses(view: LogView, trust: Trust) -> Check:
    """Witness quorum on the audited export's checkpoint (check (1) is its log signature)."""
    return witness_check(parse_note(view.checkpoint), trust, view.audit.checks[0].ok)


def _load_certificate_or_package(path: str) -> Certificate:
    data = _read_file(path, MAX_CERTIFICATE_SIZE, "certificate")
    if data[:4] == b"PK\x03\x04":
        with PackageReader(path) as pkg:
            if "certificate.json" not in pkg.by_name:
                raise MalformedError(f"package {path!r}: no certificate.json")
            return Certificate.from_json(pkg.read("certificate.json", MAX_CERTIFICATE_SIZE))
    return Certificate.from_json(data, allow_newline=True)


def _read_file(path: str, limit: int, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise _InputError(f"cannot read {what} {path!r}: {e.strerror}") from e
    if len(data) > limit and not data.startswith(b"PK\x03\x04"):
        raise _InputError(f"{what} {path!r} is larger than {limit} bytes")
    return data


def _log_status(
    args: argparse.Namespace, trust: Trust
) -> Callable[[Certificate], LogStatus] | None:
    """With --log: a function auditing the log view and judging one certificate by it."""
    if args.log is None:
        return None
    source: str = args.log
    workers: int = args.workers

    def status(cert: Certificate) -> LogStatus:
        from verifier.logview import audit_source, certificate_status

        view = audit_source(source, trust, sizes={cert.checkpoint_body.size}, workers=workers)
        return certificate_status(view.audit, cert)

    return status


def _emit(report: Report, args: argparse.Namespace, out: TextIO) -> int:
    if args.json:
        _write(out, dumps(render_json(report, args.lang)) + "\n")
    else:
        _write(out, render_text(report, args.lang))
    return EXIT_VALID if report.valid else EXIT_INVALID


def _run_package(args: argparse.Namespace, out: TextIO) -> int:
    trust = read_trust(args.trust)
    report = verify_package(args.package, trust, log_status=_log_status(args, trust), at=args.at)
    return _emit(report, args, out)


def _run_certificate(args: argparse.Namespace, out: TextIO) -> int:
    trust = read_trust(args.trust)
    data = _read_file(args.certificate, MAX_CERTIFICATE_SIZE, "certificate")
    cert = Certificate.from_json(data, allow_newline=True)
    files: list[FileDigest] = [digest_file(p) for p in args.evidence]
    status_fn = _log_status(args, trust)
    records = [_read_file(p, MAX_RECORD_SIZE, "evidence record") for p in args.evidence_record]
    checks = verify_certificate(
        cert,
        trust,
        files,
        log=status_fn(cert) if status_fn else None,
        evidence_records=records,
        at=args.at,
    )
    report = Report("certificate", args.certificate, tuple(checks), cert.facts())
    return _emit(report, args, out)


# ---------------------------------------------------------------- timestamp


def _add_timestamp_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub = commands.add_parser(
        "timestamp",
        help="verify any RFC 3161 time-stamp token over a file or a digest",
        description=(
            "Verify an RFC 3161 time-stamp token on its own: the TSA's signature,\n"
            "its certificate chain to the given roots at the token's genTime, the\n"
            "critical timeStamping key usage, the ESS signing-certificate binding,\n"
            "and the message imprint against --data or --digest. Tokens as real\n"
            "TSAs send them (BER, unsorted certificate sets, attribute\n"
            "certificates) are normalised to DER first; what was rewritten is shown."
        ),
        epilog=_TIMESTAMP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument("token", metavar="TOKEN_OR_RESPONSE", help="the token or TSA response file")
    what = sub.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", metavar="FILE", help="the file the token stamps")
    what.add_argument("--digest", metavar="HEX", help="the stamped hash of that file, in hex")
    sub.add_argument(
        "--roots",
        required=True,
        metavar="PEM",
        help="PEM file with the trusted TSA root certificate(s)",
    )
    sub.add_argument("--json", action="store_true", help="print the result as JSON")
    sub.set_defaults(run=_run_timestamp)


def _run_timestamp(args: argparse.Namespace, out: TextIO) -> int:
    import hashlib

    from verifier.errors import VerificationError
    from verifier.timestamp import (
        MAX_TOKEN_SIZE,
        imprint_algorithm,
        load_roots,
        read_token,
        verify_token,
    )

    token = read_token(_read_file(args.token, 2 * MAX_TOKEN_SIZE, "token"))
    roots = load_roots([_read_file(args.roots, 1 << 20, "roots")])
    digest: bytes | None = None
    try:
        name = imprint_algorithm(token)
        if args.digest is not None:
            try:
                digest = bytes.fromhex(args.digest)
            except ValueError as e:
                raise _InputError(f"--digest: {args.digest[:80]!r} is not hex") from e
            if len(digest) != hashlib.new(name).digest_size:
                raise _InputError(
                    f"--digest: the token's {name} digest has {hashlib.new(name).digest_size} "
                    f"bytes, got {len(digest)}"
                )
        else:
            digest = _hash_file(args.data, name)
        info = verify_token(token, roots, digest=digest)
    except VerificationError as e:
        doc = {"valid": False, "token": args.token, "error": str(e)}
        _write(out, dumps(doc) + "\n" if args.json else f"INVALID: {e}\n")
        return EXIT_INVALID
    doc = {
        "valid": True,
        "token": args.token,
        "gen_time": info.gen_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tsa": info.tsa,
        "policy": info.policy,
        "serial_number": f"{info.serial_number:#x}",
        "nonce": None if info.nonce is None else f"{info.nonce:#x}",
        "hash_algorithm": info.hash_algorithm,
        "digest": digest.hex(),
        "normalised": list(info.normalised),
    }
    if args.json:
        _write(out, dumps(doc) + "\n")
        return EXIT_VALID
    lines = [f"timestamp {args.token}"]
    for key in ("gen_time", "tsa", "policy", "serial_number", "nonce", "hash_algorithm", "digest"):
        lines.append(f"  {key:<15} {doc[key]}")
    for change in info.normalised:
        lines.append(f"  normalised      {change}")
    lines.append(f"VALID: the data existed at {doc['gen_time']} (genTime)")
    _write(out, "\n".join(lines) + "\n")
    return EXIT_VALID


def _hash_file(path: str, name: str) -> bytes:
    """Hash a file of any size in constant memory."""
    import hashlib

    h = hashlib.new(name)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError as e:
        raise _InputError(f"cannot read data {path!r}: {e.strerror}") from e
    return h.digest()


def _run_pdf(args: argparse.Namespace, out: TextIO) -> int:
    from verifier.pdf import MAX_PDF_SIZE, verify_pdf

    trust = read_trust(args.trust)
    data = _read_file(args.pdf, MAX_PDF_SIZE, "PDF")
    files: list[FileDigest] = [digest_file(p) for p in args.evidence]
    report = verify_pdf(
        data, trust, files, log_status=_log_status(args, trust), name=Path(args.pdf).name
    )
    return _emit(report, args, out)


def _format_audit(report: LogAudit) -> str:
    lines = [f"log audit of {report.directory}", f"origin {report.origin}, size {report.size}"]
    width = max(len(c.name) for c in report.checks)
    for i, c in enumerate(report.checks, 1):
        lines.append(f"{i:3d}. {c.name:<{width}}  {c.status.upper():<7}  {c.detail}")
    rate = report.entries_read / report.seconds if report.seconds > 0 else 0.0
    failed = sum(1 for c in report.checks if not c.ok)
    verdict = "VALID" if report.valid else f"INVALID ({failed} of {len(report.checks)} checks)"
    lines.append(
        f"{verdict}: {report.entries_read} entries read in {report.seconds:.2f} s "
        f"({rate:,.0f} entries/s)"
    )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``evidence-verify``; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on bad arguments
    try:
        status: int = args.run(args, sys.stdout)
    except (Error, _InputError, OSError) as e:
        # OSError: an input vanished or failed while being read (the usual
        # "cannot read" cases are reported above with the file's name).
        message = str(e) if not isinstance(e, OSError) else f"cannot read input: {e}"
        if getattr(args, "json", False):
            json.dump({"valid": False, "error": message}, sys.stdout)
            sys.stdout.write("\n")
        print(f"evidence-verify: error: {message}", file=sys.stderr)
        return EXIT_INPUT
    return status


if __name__ == "__main__":
    sys.exit(main())
