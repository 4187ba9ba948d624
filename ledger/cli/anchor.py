"""``evidence-ledger witness|witnesses|tsa``: anchoring from the command line.

Two sides, both under the global ``--home``:

- ``witness ...`` runs a witness, normally at another institution. Its home
  (``--home``) is a witness home: ``witness.json``, ``keys/witness.key`` (0600)
  and ``witness.db``. It can share a directory with a ledger home (no file
  names collide) but usually lives on another machine.
- ``witnesses ...`` and ``tsa ...`` configure a ledger home: which witnesses
  must cosign (k of n) and which TSAs timestamp each checkpoint (one with
  ``tsa set``; several with ``tsa add`` and ``tsa quorum``, k of n). A running
  ``serve`` reads the configuration when it starts. ``tsa renew`` renews
  checkpoint timestamps before they stop counting (RFC 4998).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ledger.cli.common import cli, emit, friendly, home, open_services
from ledger.config import (
    Config,
    TsaConfig,
    WitnessEntry,
    check_anchoring,
    load_config,
    save_config,
)
from ledger.errors import ConfigError, InvalidInput
from verifier.errors import MalformedError
from verifier.note import ALG_COSIGNATURE_V1, VerifierKey

__all__ = ["tsa", "witness", "witnesses"]

ROOTS_FILE = "tsa-roots.pem"


def _home(ctx: click.Context) -> Path:
    return Path(ctx.obj["home"])


# ---------------------------------------------------------------- witness side


@cli.group()
def witness() -> None:
    """Run a witness that cosigns other logs' checkpoints (C2SP tlog-witness).

    The global --home is the witness home (witness.json, keys/witness.key,
    witness.db). Example: evidence-ledger --home /srv/witness witness init
    --name court.example/witness
    """


@witness.command("init")
@click.option("--name", required=True, help="Witness name, a schema-less URL.")
@click.pass_context
@friendly
def witness_init(ctx: click.Context, name: str) -> None:
    """Create a witness key and state; print its verifier key (type 0x04).

    Example: evidence-ledger --home ./w1 witness init --name notary.example/w1
    """
    from ledger.witness import Witness

    with Witness.init(home(ctx), name) as w:
        click.echo(w.verifier_key.to_text())


@witness.command("follow")
@click.argument("log_vkey")
@click.pass_context
@friendly
def witness_follow(ctx: click.Context, log_vkey: str) -> None:
    """Witness the log whose checkpoints LOG_VKEY signs (its origin is the key name).

    Example: evidence-ledger --home ./w1 witness follow "$(evidence-ledger vkey)"
    """
    from ledger.witness import Witness

    with Witness.open(home(ctx)) as w:
        try:
            key = w.follow(log_vkey)
        except ConfigError as e:
            raise InvalidInput(str(e)) from e
        click.echo(f"following {key.name}", err=True)


@witness.command("vkey")
@click.pass_context
@friendly
def witness_vkey(ctx: click.Context) -> None:
    """Print the witness's verifier key (name+hash+base64, type 0x04).

    Example: evidence-ledger --home ./w1 witness vkey
    """
    from ledger.witness import Witness

    with Witness.open(home(ctx)) as w:
        click.echo(w.verifier_key.to_text())


@witness.command("status")
@click.pass_context
@friendly
def witness_status(ctx: click.Context) -> None:
    """Print the followed logs, the size last cosigned for each, and refusals (JSON).

    Example: evidence-ledger --home ./w1 witness status
    """
    from ledger.witness import Witness

    with Witness.open(home(ctx)) as w:
        logs = []
        for origin, vkey in w.store.logs():
            latest = w.store.latest(origin)
            logs.append(
                {
                    "origin": origin,
                    "vkey": vkey,
                    "size": latest.size if latest else None,
                    "time": latest.time if latest else None,
                    "refused": [
                        {"time": t, "status": s, "reason": r}
                        for _, t, s, r in w.store.refusals(origin)
                    ],
                }
            )
        emit({"name": w.name, "vkey": w.verifier_key.to_text(), "logs": logs})


@witness.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8100, show_default=True, type=click.IntRange(1, 65535), help="TCP port."
)
@click.pass_context
@friendly
def witness_serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve POST /add-checkpoint (C2SP tlog-witness).

    Example: evidence-ledger --home ./w1 witness serve --host 0.0.0.0 --port 8100
    """
    import uvicorn

    from api.server import server_options
    from ledger.config import HttpConfig
    from ledger.witness import Witness

    Witness.open(home(ctx)).close()  # fail fast, with a clear message, on a bad home
    os.environ["EVIDENCE_WITNESS_HOME"] = str(home(ctx).resolve())
    uvicorn.run(
        "api.witness:create_witness_app_from_env",
        factory=True,
        host=host,
        port=port,
        log_level="warning",
        **server_options(HttpConfig()),  # bounded request heads, no proxy headers
    )


# ---------------------------------------------------------------- ledger side


def _policy(entries: tuple[WitnessEntry, ...], quorum: int) -> dict[str, Any]:
    return {
        "quorum": quorum,
        "witnesses": [{"name": w.name, "url": w.url, "vkey": w.vkey} for w in entries],
    }


def _save_checked(cfg: Any) -> None:
    try:
        check_anchoring(cfg, "new configuration")
    except ConfigError as e:
        raise InvalidInput(str(e).removeprefix("config: new configuration: ")) from e
    save_config(cfg)


@cli.group()
def witnesses() -> None:
    """Configure the witnesses that must cosign each checkpoint (k of n).

    Example: evidence-ledger witnesses add --url http://w1.example:8100 --vkey "$W1"
    """


@witnesses.command("add")
@click.option("--url", required=True, help="The witness's URL prefix (http or https).")
@click.option("--vkey", required=True, help="The witness's verifier key (type 0x04).")
@click.pass_context
@friendly
def witnesses_add(ctx: click.Context, url: str, vkey: str) -> None:
    """Add a witness (named by its key); the first one sets the quorum to 1.

    Example: evidence-ledger witnesses add --url http://127.0.0.1:8100 --vkey "$W1"
    """
    cfg = load_config(home(ctx))
    try:
        key = VerifierKey.from_text(vkey)
    except MalformedError as e:
        raise InvalidInput(str(e)) from e
    if key.alg != ALG_COSIGNATURE_V1:
        raise InvalidInput("verifier key: not a witness key (cosignature type 0x04)")
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"witness URL: {url!r} must start with http:// or https://")
    if any(w.name == key.name for w in cfg.witnesses):
        raise InvalidInput(f"witness {key.name!r} is already configured")
    entries = (*cfg.witnesses, WitnessEntry(key.name, url, key.to_text()))
    cfg = replace(cfg, witnesses=entries, quorum=cfg.quorum or 1)
    _save_checked(cfg)
    emit(_policy(cfg.witnesses, cfg.quorum))


@witnesses.command("remove")
@click.argument("name")
@click.pass_context
@friendly
def witnesses_remove(ctx: click.Context, name: str) -> None:
    """Remove witness NAME; refused if the quorum could no longer be met.

    Example: evidence-ledger witnesses remove notary.example/w1
    """
    cfg = load_config(home(ctx))
    entries = tuple(w for w in cfg.witnesses if w.name != name)
    if len(entries) == len(cfg.witnesses):
        raise InvalidInput(f"witness {name!r} is not configured")
    quorum = cfg.quorum if entries else 0
    if quorum > len(entries):
        raise InvalidInput(
            f"quorum {cfg.quorum} needs {cfg.quorum} witnesses; lower it first "
            f"(evidence-ledger witnesses quorum {len(entries)})"
        )
    cfg = replace(cfg, witnesses=entries, quorum=quorum)
    _save_checked(cfg)
    emit(_policy(cfg.witnesses, cfg.quorum))


def _check_quorum(what: str, k: int, n: int, of: str) -> None:
    """A quorum of ``k`` among ``n`` (1..n; 0 only when there are none)."""
    low = 1 if n else 0
    if not low <= k <= n:
        raise InvalidInput(f"{what} {k} must be between {low} and {n} (the number of {of})")


@witnesses.command("quorum")
@click.argument("k", type=int)
@click.pass_context
@friendly
def witnesses_quorum(ctx: click.Context, k: int) -> None:
    """Require K cosignatures (1 <= K <= number of witnesses) before publishing.

    Example: evidence-ledger witnesses quorum 2
    """
    cfg = load_config(home(ctx))
    _check_quorum("quorum", k, len(cfg.witnesses), "witnesses")
    cfg = replace(cfg, quorum=k)
    _save_checked(cfg)
    emit(_policy(cfg.witnesses, cfg.quorum))


@witnesses.command("list")
@click.pass_context
@friendly
def witnesses_list(ctx: click.Context) -> None:
    """Print the witness policy as JSON.

    Example: evidence-ledger witnesses list
    """
    cfg = load_config(home(ctx))
    emit(_policy(cfg.witnesses, cfg.quorum))


@cli.group()
def tsa() -> None:
    """Configure the RFC 3161 time-stamping authorities for checkpoints.

    Example: evidence-ledger tsa set https://tsa.example/ --roots tsa-root.pem
    (one TSA); for several, k of n: tsa add URL --roots PEM for each, then
    tsa quorum K.
    """


@tsa.command("set")
@click.argument("url")
@click.option(
    "--roots",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM file with the root certificate(s) the TSA's tokens must chain to.",
)
@click.pass_context
@friendly
def tsa_set(ctx: click.Context, url: str, roots: Path) -> None:
    """Timestamp every checkpoint at URL; copies the roots into the home.

    Example: evidence-ledger tsa set http://127.0.0.1:8200/ --roots ca.pem
    """
    from ledger.anchoring import load_tsa_roots

    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"TSA URL: {url!r} must start with http:// or https://")
    top = home(ctx)
    cfg = load_config(top)
    try:
        certs = load_tsa_roots(roots)
    except ConfigError as e:
        raise InvalidInput(str(e)) from e
    _copy_roots(roots, top / ROOTS_FILE)
    cfg = replace(cfg, tsas=(TsaConfig(url=url, roots=ROOTS_FILE),), tsa_quorum=1)
    _save_checked(cfg)
    emit({"url": url, "roots": [c.subject.rfc4514_string() for c in certs]})


@tsa.command("clear")
@click.pass_context
@friendly
def tsa_clear(ctx: click.Context) -> None:
    """Stop timestamping checkpoints (every TSA is removed).

    Example: evidence-ledger tsa clear
    """
    cfg = load_config(home(ctx))
    save_config(replace(cfg, tsas=(), tsa_quorum=0))
    emit({"url": None})


def _copy_roots(source: Path, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(source.read_bytes())
    os.replace(tmp, target)


def _tsa_policy(cfg: Config) -> dict[str, Any]:
    from ledger.anchoring import load_tsa_roots

    tsas = [
        {
            "url": t.url,
            "roots": [c.subject.rfc4514_string() for c in load_tsa_roots(cfg.home / t.roots)],
        }
        for t in cfg.tsas
    ]
    return {"quorum": cfg.tsa_quorum, "tsas": tsas}


@tsa.command("add")
@click.argument("url")
@click.option(
    "--roots",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM file with the root certificate(s) this TSA's tokens must chain to.",
)
@click.pass_context
@friendly
def tsa_add(ctx: click.Context, url: str, roots: Path) -> None:
    """Add a TSA (the first one sets the TSA quorum to 1); copies its roots into the home.

    Example: evidence-ledger tsa add https://tsa.example.cn/ --roots cn-root.pem
    """
    from ledger.anchoring import load_tsa_roots

    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"TSA URL: {url!r} must start with http:// or https://")
    top = home(ctx)
    cfg = load_config(top)
    if any(t.url == url for t in cfg.tsas):
        raise InvalidInput(f"TSA {url!r} is already configured")
    try:
        load_tsa_roots(roots)
    except ConfigError as e:
        raise InvalidInput(str(e)) from e
    name = f"tsa-roots-{hashlib.sha256(url.encode()).hexdigest()[:12]}.pem"
    _copy_roots(roots, top / name)
    entries = (*cfg.tsas, TsaConfig(url=url, roots=name))
    cfg = replace(cfg, tsas=entries, tsa_quorum=cfg.tsa_quorum or 1)
    _save_checked(cfg)
    emit(_tsa_policy(cfg))


@tsa.command("remove")
@click.argument("url")
@click.pass_context
@friendly
def tsa_remove(ctx: click.Context, url: str) -> None:
    """Remove the TSA at URL; refused if the TSA quorum could no longer be met.

    Example: evidence-ledger tsa remove https://tsa.example.cn/
    """
    cfg = load_config(home(ctx))
    entries = tuple(t for t in cfg.tsas if t.url != url)
    if len(entries) == len(cfg.tsas):
        raise InvalidInput(f"TSA {url!r} is not configured")
    quorum = cfg.tsa_quorum if entries else 0
    if quorum > len(entries):
        raise InvalidInput(
            f"TSA quorum {cfg.tsa_quorum} needs {cfg.tsa_quorum} TSAs; lower it first "
            f"(evidence-ledger tsa quorum {len(entries)})"
        )
    cfg = replace(cfg, tsas=entries, tsa_quorum=quorum)
    _save_checked(cfg)
    emit(_tsa_policy(cfg))


@tsa.command("quorum")
@click.argument("k", type=int)
@click.pass_context
@friendly
def tsa_quorum(ctx: click.Context, k: int) -> None:
    """Require tokens from K TSAs (1 <= K <= number of TSAs) before publishing.

    Example: evidence-ledger tsa quorum 2
    """
    cfg = load_config(home(ctx))
    _check_quorum("TSA quorum", k, len(cfg.tsas), "TSAs")
    cfg = replace(cfg, tsa_quorum=k)
    _save_checked(cfg)
    emit(_tsa_policy(cfg))


@tsa.command("list")
@click.pass_context
@friendly
def tsa_list(ctx: click.Context) -> None:
    """Print the TSA policy as JSON: the quorum, each TSA's URL and root subjects.

    Example: evidence-ledger tsa list
    """
    emit(_tsa_policy(load_config(home(ctx))))


@tsa.command("renew")
@click.option(
    "--window-days",
    type=float,
    default=None,
    help="Renew what stops counting within this many days (default: renewal.window_days).",
)
@click.option("--dry-run", is_flag=True, help="Only count what is due and lapsed.")
@click.pass_context
@friendly
def tsa_renew(ctx: click.Context, window_days: float | None, dry_run: bool) -> None:
    """Renew checkpoint timestamps before their TSA certificate expires or their
    hash algorithm is retired (RFC 4998 archive timestamps); prints JSON.

    Idempotent: a second run finds nothing due. Records that already stopped
    counting are listed as lapsed (a renewal now would leave a gap).

    Example: evidence-ledger tsa renew --window-days 90
    """
    with open_services(ctx) as services:
        report = services.renewals.renew(window_days=window_days, dry_run=dry_run)
    for lapsed in report["lapsed"]:
        click.echo(f"warning: lapsed: {lapsed}", err=True)
    emit(report)
