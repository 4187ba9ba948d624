"""What every ``evidence-ledger`` command shares: the root group, opening the
ledger and its services, printing JSON, and one-line errors.

Commands register themselves on :data:`cli` (``@cli.command()`` or
``@cli.group()``) in their own module; :mod:`ledger.cli` imports them all.
User errors print one line (``error: ...``) and exit non-zero: 2 for bad
input or usage, 1 for everything else (including an audit that fails).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from ledger.core import Ledger
from ledger.errors import InvalidInput, LedgerError
from ledger.services import Services
from verifier.display import escape_json, escape_text
from verifier.progress import Progress, progress

__all__ = [
    "bar",
    "cli",
    "emit",
    "fail",
    "friendly",
    "home",
    "open_ledger",
    "open_services",
    "progress_option",
]

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    # Messages quote stored or typed text already escaped: keep its backslashes.
    click.echo("error: " + escape_text(message, keep="\\"), err=True)
    sys.exit(code)


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn ledger errors into one-line messages and exit codes."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except InvalidInput as e:
            fail(str(e), 2)
        except LedgerError as e:
            fail(str(e), 1)
        except OSError as e:
            fail(f"{e.filename or 'io'}: {e.strerror or e}", 1)

    return wrapper


def home(ctx: click.Context) -> Path:
    """The ledger home given with ``--home`` (or ``EVIDENCE_LEDGER_HOME``)."""
    return Path(ctx.find_root().obj["home"])


def open_ledger(ctx: click.Context) -> Ledger:
    """Open the ledger of ``--home`` (a context manager that closes it)."""
    return Ledger.open(home(ctx))


@contextmanager
def open_services(ctx: click.Context) -> Iterator[Services]:
    """The services over the ledger of ``--home``, closed afterwards."""
    with open_ledger(ctx) as ledger:
        services = Services(ledger)
        try:
            yield services
        finally:
            services.close()


def progress_option(fn: Callable[P, R]) -> Callable[P, R]:
    """``--progress/--no-progress``: a bar on stderr (default: only on a terminal)."""
    return click.option(
        "--progress/--no-progress",
        "show_progress",
        default=None,
        help="Progress bar with rate and time left on stderr (default: when stderr is a terminal).",
    )(fn)


def bar(total: int | None, what: str, enabled: bool | None, **kw: Any) -> Progress:
    """A progress bar for a command (see :mod:`verifier.progress`)."""
    return progress(total, what, enabled=enabled, **kw)


def emit(obj: Any) -> None:
    """Print one JSON document on one line (keys sorted, UTF-8 kept; bidi,
    zero-width and other invisible characters as ``\\u`` escapes, the same
    JSON values: :func:`verifier.display.escape_json`)."""
    click.echo(escape_json(json.dumps(obj, ensure_ascii=False, sort_keys=True)))


@click.group()
@click.option(
    "--home",
    envvar="EVIDENCE_LEDGER_HOME",
    default="./var",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Ledger home: config, keys (0600), SQLite database, blobs.",
)
@click.pass_context
def cli(ctx: click.Context, home: str) -> None:
    """Evidence deposit ledger: append-only, hash-chained, Merkle-sealed.

    Example: evidence-ledger --home ./var init --origin example.com/evidence
    """
    ctx.ensure_object(dict)
    ctx.obj["home"] = home
