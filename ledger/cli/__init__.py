"""``evidence-ledger``: the operator's command line, thin over the services.

Each module registers its commands on :data:`ledger.cli.common.cli`:
:mod:`~ledger.cli.core` (init, deposit, seal, export, audit, rebuild, stats,
serve), :mod:`~ledger.cli.certs` (accounts, certificates, trust file),
:mod:`~ledger.cli.anchor` (witnesses, TSA, the witness service) and
:mod:`~ledger.cli.capture` (online capture), :mod:`~ledger.cli.pdf`
(PDF certificates, notaries' X.509 credentials, the public URL) and
:mod:`~ledger.cli.ops` (backup and restore).
"""

from __future__ import annotations

from ledger.cli import anchor, capture, certs, core, ops, pdf
from ledger.cli.common import cli

__all__ = ["anchor", "capture", "certs", "cli", "core", "main", "ops", "pdf"]


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="evidence-ledger")
