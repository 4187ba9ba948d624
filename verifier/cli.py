"""``evidence-verify``: the offline verifier's command line.

Thin over the library: each command parses its arguments, calls one library
function and prints its report. Exit status: 0 valid, 1 invalid (a check
failed), 2 an input could not be read or parsed (including bad arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from verifier.errors import Error
from verifier.logaudit import MAX_CHECKPOINT_SIZE, LogAudit, audit_log
from verifier.note import VerifierKey

__all__ = ["EXIT_INPUT", "EXIT_INVALID", "EXIT_VALID", "build_parser", "main"]

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_INPUT = 2

_LOG_EPILOG = """\
example:
  evidence-verify log ./export --vkey 'ledger.example/log+1a2b3c4d+AcfM...'
  evidence-verify log ./export --vkey log.vkey --from old-checkpoint.txt --json

DIR holds a C2SP tlog-tiles export: DIR/checkpoint, DIR/tile/<L>/<N>[.p/<W>]
and DIR/tile/entries/<N>[.p/<W>].

exit status: 0 valid, 1 invalid, 2 input unreadable or malformed.
"""


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
    log.add_argument("directory", metavar="DIR", help="the export directory")
    log.add_argument(
        "--vkey",
        required=True,
        metavar="VKEY",
        help="the log's verifier key (name+hash+base64) or a file that contains it",
    )
    log.add_argument(
        "--from",
        dest="old",
        metavar="OLD_CHECKPOINT_FILE",
        help="an older signed checkpoint of the same log, to check for a rollback or rewrite",
    )
    log.add_argument("--json", action="store_true", help="print the report as JSON")
    log.add_argument(
        "--workers",
        type=_positive_int,
        default=min(os.cpu_count() or 1, 8),
        metavar="N",
        help="processes that parse entries in parallel (default: one per CPU, at most 8)",
    )
    log.set_defaults(run=_run_log)
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


def _run_log(args: argparse.Namespace, out: TextIO) -> int:
    key = _load_key(args.vkey)
    old: bytes | None = None
    if args.old is not None:
        try:
            with open(args.old, "rb") as f:
                old = f.read(MAX_CHECKPOINT_SIZE + 1)
        except OSError as e:
            raise _InputError(f"cannot read old checkpoint {args.old!r}: {e.strerror}") from e
        if len(old) > MAX_CHECKPOINT_SIZE:
            raise _InputError(f"old checkpoint {args.old!r} is not a checkpoint (too large)")
    report = audit_log(args.directory, key, old, workers=args.workers)
    try:
        if args.json:
            json.dump(report.to_json(), out, indent=2, ensure_ascii=False)
            out.write("\n")
        else:
            _print_report(report, out)
        out.flush()
    except BrokenPipeError:
        # The reader (say, `| head`) left: the verdict is still the exit status.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return EXIT_VALID if report.valid else EXIT_INVALID


def _print_report(report: LogAudit, out: TextIO) -> None:
    out.write(f"log audit of {report.directory}\n")
    out.write(f"origin {report.origin}, size {report.size}\n")
    width = max(len(c.name) for c in report.checks)
    for i, c in enumerate(report.checks, 1):
        out.write(f"{i:3d}. {c.name:<{width}}  {c.status.upper():<7}  {c.detail}\n")
    rate = report.entries_read / report.seconds if report.seconds > 0 else 0.0
    failed = sum(1 for c in report.checks if not c.ok)
    verdict = "VALID" if report.valid else f"INVALID ({failed} of {len(report.checks)} checks)"
    out.write(
        f"{verdict}: {report.entries_read} entries read in {report.seconds:.2f} s "
        f"({rate:,.0f} entries/s)\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``evidence-verify``; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on bad arguments
    try:
        status: int = args.run(args, sys.stdout)
    except (Error, _InputError) as e:
        if getattr(args, "json", False):
            json.dump({"valid": False, "error": str(e)}, sys.stdout)
            sys.stdout.write("\n")
        print(f"evidence-verify: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    return status


if __name__ == "__main__":
    sys.exit(main())
