"""Operations commands: backup and restore of a ledger home."""

from __future__ import annotations

from pathlib import Path

import click

from ledger.cli.common import bar, cli, emit, friendly, home, progress_option

__all__ = ["backup", "restore"]


@cli.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@progress_option
@click.pass_context
@friendly
def backup(ctx: click.Context, dest: Path, show_progress: bool | None) -> None:
    """Back up the ledger into DEST (new or empty), consistently, while it serves.

    DEST gets the SQLite database (one online snapshot), config.json, keys
    (mode 0600), the blob files and manifest.json with every file's SHA-256.
    On PostgreSQL, dump the database with pg_dump as well (docs/operations.md).

    Example: evidence-ledger backup /srv/backups/ledger-2025-06-01
    """
    from ledger.backup import backup as do_backup

    with bar(None, "backup", show_progress, byte_units=True) as shown:
        manifest = do_backup(home(ctx), dest, shown.to)
    cp = manifest["checkpoint"]
    emit(
        {
            "backup": str(dest),
            "database": manifest["database"]["kind"],
            "files": len(manifest["files"]),
            "bytes": sum(f["size"] for f in manifest["files"]),
            "log_size": manifest["log_size"],
            "checkpoint_size": cp["size"] if cp else None,
        }
    )


@cli.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--database-url",
    help="PostgreSQL: the database the dump was restored into (default: the one in the "
    "backup's config.json). SQLite backups always use HOME/ledger.db.",
)
@progress_option
@click.pass_context
@friendly
def restore(
    ctx: click.Context, src: Path, database_url: str | None, show_progress: bool | None
) -> None:
    """Restore the backup SRC into --home, which must be new or empty.

    Every file is checked against the manifest's digests first. Run
    'evidence-ledger audit' afterwards.

    Example: evidence-ledger --home /srv/ledger restore /srv/backups/ledger-2025-06-01
    """
    from ledger.backup import restore as do_restore

    with bar(None, "restore", show_progress, byte_units=True) as shown:
        emit(do_restore(src, home(ctx), database_url, shown.to))
