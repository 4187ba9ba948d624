"""The ledger's own commands: init, vkey, deposit, seal, export, audit, rebuild, stats, serve."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import click

from ledger.cli.common import (
    bar,
    cli,
    emit,
    friendly,
    home,
    open_ledger,
    open_services,
    progress_option,
)
from ledger.core import Ledger
from ledger.errors import InvalidInput
from ledger.events import evidence_deposited
from ledger.services import OPERATOR, HashDeposit

__all__ = ["audit", "deposit", "export", "init", "rebuild", "seal", "serve", "stats", "vkey"]

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


@cli.command()
@click.option("--origin", help="Checkpoint origin, a schema-less URL (e.g. example.com/log).")
@click.option("--database-url", help="sqlite:///PATH (default: HOME/ledger.db) or postgresql://...")
@click.option(
    "--blobs",
    type=click.Choice(["fs", "postgresql"]),
    help="Where deposited files go: HOME/blobs, or the PostgreSQL database (shared by "
    "every host). Default: postgresql with a PostgreSQL database, fs otherwise.",
)
@click.pass_context
@friendly
def init(
    ctx: click.Context, origin: str | None, database_url: str | None, blobs: str | None
) -> None:
    """Create a ledger and its log key; print the log's verifier key.

    Example: evidence-ledger init --origin court-evidence.example/log
    """
    with Ledger.init(home(ctx), origin, database_url, blobs) as ledger:
        click.echo(ledger.verifier_key.to_text())


@cli.command()
@click.pass_context
@friendly
def vkey(ctx: click.Context) -> None:
    """Print the log's verifier key (name+hash+key).

    Example: evidence-ledger vkey > log.vkey
    """
    with open_ledger(ctx) as ledger:
        click.echo(ledger.verifier_key.to_text())


def _hash_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their line numbers; a non-ASCII line is bad input."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("ascii").strip()
            except UnicodeDecodeError:
                raise InvalidInput(f"{path}:{n}: not a hex SHA-256 (non-ASCII bytes)") from None
            if line:
                yield n, line


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title", help="Title recorded (privately) with the evidence.")
@click.option("--sha256", "sha256", help="Hash-only deposit: SHA-256 of the content (hex).")
@click.option("--sm3", help="With --sha256: SM3 of the content (hex).")
@click.option(
    "--hashes-from",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Bulk hash-only deposits: a file with one hex SHA-256 per line.",
)
@click.option(
    "--owner",
    help="Deposit on behalf of a rights holder (account name or id); it then sees "
    "the evidence through the API.",
)
@progress_option
@click.pass_context
@friendly
def deposit(
    ctx: click.Context,
    files: tuple[Path, ...],
    title: str | None,
    sha256: str | None,
    sm3: str | None,
    hashes_from: Path | None,
    owner: str | None,
    show_progress: bool | None,
) -> None:
    """Deposit files or hashes; print one JSON receipt per line once durable.

    Examples: evidence-ledger deposit contract.pdf --title "Contract v2";
    evidence-ledger deposit --sha256 9f86d0... --owner alice;
    evidence-ledger deposit --hashes-from list.txt
    """
    modes = sum((bool(files), sha256 is not None, hashes_from is not None))
    if modes != 1:
        raise click.UsageError("give FILE..., --sha256 HEX or --hashes-from FILE (exactly one)")
    if sm3 is not None and sha256 is None:
        raise click.UsageError("--sm3 needs --sha256")
    with open_services(ctx) as services:
        deposits = services.deposits
        if sha256 is not None:
            plan = deposits.plan_hash(OPERATOR, HashDeposit(sha256, sm3, title), owner=owner)
            emit(deposits.commit(plan).receipts[0].to_json())
        elif hashes_from is not None:
            # Validate the whole file first: a bad line must not leave half a batch.
            total = 0
            for n, line in _hash_lines(hashes_from):
                if not _HEX64.fullmatch(line):
                    raise InvalidInput(f"{hashes_from}:{n}: not a hex SHA-256: {line[:80]!r}")
                total += 1
            owner_id = deposits.resolve_owner(OPERATOR, owner)
            drafts = (
                evidence_deposited(kind="hash", sha256=h, title=title, owner=owner_id)
                for _, h in _hash_lines(hashes_from)
            )
            out = sys.stdout
            with bar(total, "deposit", show_progress, unit="deposits") as shown:
                for receipt in deposits.bulk(drafts):
                    out.write(json.dumps(receipt.to_json(), sort_keys=True) + "\n")
                    shown.update()
            out.flush()
        else:
            for path in files:
                with path.open("rb") as f:
                    plan = deposits.plan_stream(
                        OPERATOR, f, file_name=path.name, title=title, owner=owner
                    )
                emit(deposits.commit(plan).receipts[0].to_json())


@cli.command()
@click.option("--batch-max", type=click.IntRange(min=1), help="Entries per checkpoint.")
@click.pass_context
@friendly
def seal(ctx: click.Context, batch_max: int | None) -> None:
    """Integrate everything pending and publish a checkpoint; print it.

    Example: evidence-ledger seal
    """
    with open_ledger(ctx) as ledger:
        click.echo(ledger.seal(batch_max).note, nl=False)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--private", is_flag=True, help="Also write private bodies (for an auditor).")
@progress_option
@click.pass_context
@friendly
def export(ctx: click.Context, directory: Path, private: bool, show_progress: bool | None) -> None:
    """Write the public log as static C2SP tlog-tiles files.

    Example: evidence-ledger export /srv/www/log
    """
    from ledger.export import export as do_export
    from ledger.export import file_count

    with open_ledger(ctx) as ledger:
        cp = ledger.latest_checkpoint()
        total = file_count(cp.size, private)
        with bar(total, "export", show_progress, unit="files") as shown:
            n = do_export(ledger.store, directory, cp, private, shown.to)
        click.echo(f"exported {cp.size} entries in {n} files to {directory}", err=True)


@cli.command()
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=os.cpu_count() or 1,
    show_default=True,
    help="Processes for the per-entry checks (0: all in this process).",
)
@click.option(
    "--files/--no-files",
    default=True,
    show_default=True,
    help="Also re-read every stored file and capture artefact against its digests.",
)
@progress_option
@click.pass_context
@friendly
def audit(ctx: click.Context, workers: int, files: bool, show_progress: bool | None) -> None:
    """Re-verify everything; exit 1 naming the first thing that fails.

    The log and its tiles, the sequence of checkpoints and publications,
    every projection row against a replay of the log, and every stored file.

    Example: evidence-ledger audit --workers 2
    """
    from ledger.audit import audit_ledger

    with open_ledger(ctx) as ledger:
        with bar(ledger.store.size(), "audit", show_progress) as shown:
            report = audit_ledger(ledger, workers=workers, files=files, progress=shown.to)
        emit(report)


@cli.command()
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="Seconds: only writes stalled, and files stored, at least this long ago.",
)
@click.pass_context
@friendly
def sweep(ctx: click.Context, older_than: float) -> None:
    """Remove interrupted uploads and stored files no deposit or capture refers to.

    Example: evidence-ledger sweep --older-than 86400
    """
    from ledger.blobs.audit import referenced

    with open_ledger(ctx) as ledger:
        swept = ledger.blobs.sweep(older_than, referenced(ledger.store, ledger.blobs))
        emit({"partials": swept.partials, "orphans": swept.orphans})


@cli.command()
@progress_option
@click.pass_context
@friendly
def rebuild(ctx: click.Context, show_progress: bool | None) -> None:
    """Drop the projections and replay them from the log.

    Example: evidence-ledger rebuild
    """
    with open_ledger(ctx) as ledger, bar(ledger.store.size(), "rebuild", show_progress) as shown:
        n = ledger.store.rebuild(shown.to)
        emit({"replayed": n})


@cli.command()
@click.pass_context
@friendly
def stats(ctx: click.Context) -> None:
    """Print sizes, pending entries and storage use as JSON.

    Example: evidence-ledger stats
    """
    with open_services(ctx) as services:
        emit(services.stats())


def _metrics_where(value: str) -> str | tuple[str, int]:
    """``main``, ``off`` or a ``HOST:PORT`` to serve ``/metrics`` on instead."""
    if value in ("main", "off"):
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter("expected main, off or HOST:PORT", param_hint="--metrics")
    return host.strip("[]"), int(port)


def _exit_on_signal(signum: int, frame: object) -> None:
    # uvicorn re-raises SIGTERM after its graceful shutdown: a stop asked for
    # and carried out, so a success for service managers (systemd and others).
    raise SystemExit(0)


@contextmanager
def _multiprocess_metrics() -> Iterator[str]:
    """A fresh directory for the workers' metrics, in ``PROMETHEUS_MULTIPROC_DIR``.

    An operator's own directory is emptied first (counters of an earlier run
    must not add up with this one's); otherwise a temporary one is made and
    removed afterwards. Set before ``prometheus_client`` picks its value store.
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink()
        made = None
    else:
        made = path = Path(tempfile.mkdtemp(prefix="evidence-ledger-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    import prometheus_client.values as values

    # prometheus_client picks its value store when first imported: pick again.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    try:
        yield str(path)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="TCP port to listen on.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes.",
)
@click.option("--no-sealer", is_flag=True, help="Do not run the background sealer.")
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log one line per request: route template, status, duration, request id "
    "(never the query string).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text or as one JSON object per line.",
)
@click.option(
    "--metrics",
    "metrics",
    default="main",
    show_default=True,
    metavar="main|off|HOST:PORT",
    help="Serve Prometheus /metrics on the main port, not at all, or on another address.",
)
@click.option(
    "--ready-max-lag",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Seconds an entry may wait for a published checkpoint before /readyz fails.",
)
@click.pass_context
@friendly
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    no_sealer: bool,
    access_log: bool,
    log_format: str,
    metrics: str,
    ready_max_lag: float,
) -> None:
    """Serve the HTTP API and the C2SP tlog-tiles endpoints (and seal pending entries).

    Also /healthz, /readyz and /metrics (see docs/operations.md). Request
    heads, bodies, trusted proxies and rate limits follow the home's ``http``
    settings (config.json).

    Example: evidence-ledger serve --host 0.0.0.0 --port 8000 --workers 4 --log-format json
    """
    where = _metrics_where(metrics)
    # uvicorn re-raises SIGTERM once it has shut down; as an exception here
    # (not the default action, which ends the process at once) it lets the
    # clean-up below run: the metrics directory, the metrics listener.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with ExitStack() as stack:
        if where != "off":
            stack.enter_context(_multiprocess_metrics())
        import uvicorn

        from api.observability import log_config
        from api.server import server_options

        with Ledger.open(home(ctx)) as opened:  # fail fast, with a clear message, on a bad home
            http = opened.config.http
        os.environ["EVIDENCE_LEDGER_HOME"] = str(home(ctx).resolve())
        os.environ["EVIDENCE_LEDGER_SEALER"] = "0" if no_sealer else "1"
        os.environ["EVIDENCE_LEDGER_ACCESS_LOG"] = "1" if access_log else "0"
        os.environ["EVIDENCE_LEDGER_READY_MAX_LAG"] = repr(ready_max_lag)
        os.environ["EVIDENCE_LEDGER_METRICS"] = where if isinstance(where, str) else "elsewhere"
        if isinstance(where, tuple):
            from api.metrics import serve_metrics
            from ledger.services import Services

            ledger = stack.enter_context(Ledger.open(home(ctx)))
            server = serve_metrics(where[0], where[1], Services(ledger))
            stack.callback(server.shutdown)
        uvicorn.run(
            "api.app:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=log_config(log_format),
            # Never uvicorn's: it logs query strings. api.observability logs instead.
            access_log=False,
            **server_options(http),
        )
