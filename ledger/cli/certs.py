"""``evidence-ledger account|certificate|trust``: accounts, certificates, trust file.

Every command is a thin wrapper over the account and certificate services,
acting as the operator.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ledger.cli.common import cli, emit, friendly, open_services
from ledger.services import OPERATOR, ROLES
from verifier.display import escape_json

__all__ = ["account", "certificate", "trust"]


@cli.group()
def account() -> None:
    """Create and revoke accounts (rights holders, notaries, auditors, admins);
    set or clear their console passwords.

    Example: evidence-ledger account create --role notary --name "Notary Zhang"
    """


@account.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES), help="The account's role.")
@click.option(
    "--name", required=True, help="Display name (unique among active accounts of a role)."
)
@click.option(
    "--x509-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Notary only: PEM certificate (then chain) from a CA, for PDF signatures.",
)
@click.option(
    "--x509-key", type=click.Path(dir_okay=False, path_type=Path), help="Its PEM private key."
)
@click.pass_context
@friendly
def account_create(
    ctx: click.Context, role: str, name: str, x509_cert: Path | None, x509_key: Path | None
) -> None:
    """Register an account in the log; print it, then its bearer token alone on the
    last line (shown once, stored only as a SHA-256). A notary also gets an
    Ed25519 signing key in HOME/keys (mode 0600), published with key.registered,
    and an X.509 certificate for PDF signatures: the one given, or later one
    from the ledger's local CA.

    Example: evidence-ledger account create --role rights_holder --name "ACME Ltd"
    """
    from ledger.cli.pdf import bind_x509, x509_files

    pems = x509_files(role, x509_cert, x509_key)  # checked before anything is written
    with open_services(ctx) as services:
        created = services.accounts.create(OPERATOR, role, name)
        if pems is not None:
            bind_x509(services.ledger, created.account_id, *pems)
    emit(created.to_json())
    click.echo(created.token)


@account.command("revoke")
@click.argument("account_ref", metavar="ACCOUNT")
@click.option("--role", type=click.Choice(ROLES), help="Role, if the name is ambiguous.")
@click.pass_context
@friendly
def account_revoke(ctx: click.Context, account_ref: str, role: str | None) -> None:
    """Revoke an account (by id or name) and its signing keys.

    Example: evidence-ledger account revoke "Notary Zhang" --role notary
    """
    with open_services(ctx) as services:
        result = services.accounts.revoke(OPERATOR, account_ref, role)
    emit(result)


@account.command("password")
@click.argument("account_ref", metavar="ACCOUNT")
@click.option("--role", type=click.Choice(ROLES), help="Role, if the name is ambiguous.")
@click.option("--clear", is_flag=True, help="Remove the password (the token still logs in).")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the new password from the first line of standard input instead of a prompt.",
)
@click.pass_context
@friendly
def account_password(
    ctx: click.Context, account_ref: str, role: str | None, clear: bool, password_stdin: bool
) -> None:
    """Set (or with --clear remove) the password an account logs in to the web
    console with, besides its token. Only an argon2id hash is stored. The
    operator sets it for any account; an account changes its own on /account,
    giving its current token or password.

    Example: evidence-ledger account password "ACME Ltd"

    Example: printf '%s\\n' "$NEW" | evidence-ledger account password alice --password-stdin
    """
    with open_services(ctx) as services:
        target = services.accounts.find(OPERATOR, account_ref, role)
        if clear:
            done = services.passwords.clear(OPERATOR, account_id=target.account_id)
            click.echo(f"{target.name}: " + ("password removed" if done else "had no password"))
            return
        if password_stdin:
            new = sys.stdin.readline().rstrip("\r\n")
        else:
            new = click.prompt("New password", hide_input=True, confirmation_prompt=True)
        services.passwords.set(OPERATOR, new, account_id=target.account_id)
    click.echo(f"{target.name}: password set")


@cli.group()
def certificate() -> None:
    """Issue, package and revoke deposit certificates (存证证书).

    Example: evidence-ledger certificate issue EVIDENCE_ID --notary "Notary Zhang"
    """


@certificate.command("issue")
@click.argument("evidence_id")
@click.option("--notary", required=True, help="The issuing notary's name or account id.")
@click.option("--statement", help="The notary's statement (default: the standard text).")
@click.pass_context
@friendly
def certificate_issue(
    ctx: click.Context, evidence_id: str, notary: str, statement: str | None
) -> None:
    """Issue a signed certificate for sealed evidence; print its JSON (certificate_id
    names it). Save it with: ... > cert.json

    Example: evidence-ledger certificate issue 0193c1... --notary "Notary Zhang" > cert.json
    """
    with open_services(ctx) as services:
        issued = services.certificates.issue(OPERATOR, evidence_id, statement, notary=notary)
    sys.stdout.buffer.write(issued.data + b"\n")
    sys.stdout.flush()


@certificate.command("show")
@click.argument("certificate_id")
@click.pass_context
@friendly
def certificate_show(ctx: click.Context, certificate_id: str) -> None:
    """Print a certificate's JSON.

    Example: evidence-ledger certificate show 5f3a... > cert.json
    """
    with open_services(ctx) as services:
        data = services.certificates.get(OPERATOR, certificate_id)
    sys.stdout.buffer.write(data + b"\n")
    sys.stdout.flush()


@certificate.command("package")
@click.argument("certificate_id")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--include-private",
    is_flag=True,
    help="Also the capture's private artefacts (WARC records and screenshots of secrets "
    "typed during it), for the rights holder who owns the evidence.",
)
@click.pass_context
@friendly
def certificate_package(
    ctx: click.Context, certificate_id: str, out: Path, include_private: bool
) -> None:
    """Write the evidence package (zip: certificate, file, tlog-proof, README).

    Example: evidence-ledger certificate package 5f3a... evidence.zip

    Example: evidence-ledger certificate package 5f3a... own.zip --include-private
    """
    with open_services(ctx) as services:
        services.certificates.package_to(
            OPERATOR, certificate_id, out, include_private=include_private
        )
    click.echo(f"wrote {out}", err=True)


@certificate.command("revoke")
@click.argument("certificate_id")
@click.option("--reason", required=True, help="Why (kept private in the log).")
@click.pass_context
@friendly
def certificate_revoke(ctx: click.Context, certificate_id: str, reason: str) -> None:
    """Revoke a certificate: appends certificate.revoked to the log.

    Example: evidence-ledger certificate revoke 5f3a... --reason "issued in error"
    """
    with open_services(ctx) as services:
        done = services.certificates.revoke(OPERATOR, certificate_id, reason)
    emit(done.to_json())


@cli.group()
def trust() -> None:
    """The trust file that courts pin (log key, witnesses, notary keys, TSA roots).

    Example: evidence-ledger trust export > trust.json
    """


@trust.command("export")
@click.pass_context
@friendly
def trust_export_cmd(ctx: click.Context) -> None:
    """Print this ledger's trust file (evidence-trust/v1) as JSON.

    Example: evidence-ledger trust export > trust.json
    """
    with open_services(ctx) as services:
        doc = services.trust()
    click.echo(escape_json(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True)))
