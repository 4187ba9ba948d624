"""``evidence-ledger certificate pdf``, ``account x509``, ``public-url``: PDF certificates.

Registered on import by :mod:`ledger.cli`. Every command is a thin wrapper
over :mod:`ledger.pdfcert.service`.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import click

from ledger.cli.certs import account, certificate
from ledger.cli.common import cli, emit, friendly, home, open_ledger
from ledger.config import check_public_url, load_config, save_config
from ledger.errors import InvalidInput
from ledger.pdfcert.service import bind_x509, certificate_pdf, issue_x509, x509_summary
from ledger.pdfcert.x509 import parse_credential

__all__ = ["account_x509", "bind_x509", "certificate_pdf_cmd", "public_url", "x509_files"]

MAX_PEM = 1 << 20


def read_pem(path: Path, what: str) -> bytes:
    """A PEM file's bytes, refused when absent or larger than 1 MiB."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PEM + 1)
    except OSError as e:
        raise InvalidInput(f"x509: cannot read {what} {path} ({e.strerror})") from e
    if len(data) > MAX_PEM:
        raise InvalidInput(f"x509: {what} {path} is larger than {MAX_PEM} bytes")
    return data


def x509_files(role: str, cert: Path | None, key: Path | None) -> tuple[bytes, bytes] | None:
    """``--x509-cert``/``--x509-key`` of ``account create``, read and checked (or None)."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise InvalidInput("x509: --x509-cert and --x509-key go together")
    if role != "notary":
        raise InvalidInput("x509: only a notary has an X.509 certificate")
    pems = read_pem(cert, "certificate"), read_pem(key, "key")
    parse_credential(*pems)
    return pems


@certificate.command("pdf")
@click.argument("certificate_id")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@friendly
def certificate_pdf_cmd(ctx: click.Context, certificate_id: str, out: Path) -> None:
    """Write the signed PDF certificate (存证证书, PDF/A-3b, PAdES) to OUT.

    The page renders the certificate's JSON (attached as certificate.json, with
    proof.txt); the notary's X.509 key signs it, with a signature timestamp when
    a TSA is configured. Check it with: evidence-verify pdf OUT --trust trust.json

    Example: evidence-ledger certificate pdf 5f3a... certificate.pdf
    """
    with open_ledger(ctx) as ledger:
        data = certificate_pdf(ledger, certificate_id)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    click.echo(f"wrote {out} ({len(data)} bytes)", err=True)


@account.command("x509")
@click.argument("account_ref", metavar="NOTARY")
@click.option(
    "--cert",
    "cert_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM: the notary's certificate, then its chain (ECDSA P-256 or RSA, with "
    "digitalSignature or nonRepudiation).",
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM: the certificate's private key (unencrypted; stored with mode 0600).",
)
@click.option("--issue", is_flag=True, help="Issue a new certificate from the local CA.")
@click.pass_context
@friendly
def account_x509(
    ctx: click.Context, account_ref: str, cert_file: Path | None, key_file: Path | None, issue: bool
) -> None:
    """Bind an X.509 certificate and key to a notary (for PDF signatures), or
    issue one from the ledger's local CA; print the certificate's facts.

    Add the CA root of a bound certificate to the trust file's notary_ca_roots
    (trust export lists the local CA and the self-signed roots of bound chains).

    Example: evidence-ledger account x509 "Notary Zhang" --cert zhang.pem --key zhang.key
    """
    if issue == (cert_file is not None or key_file is not None):
        raise InvalidInput("x509: give either --cert and --key, or --issue")
    with open_ledger(ctx) as ledger:
        if issue:
            cred = issue_x509(ledger, account_ref)
        else:
            if cert_file is None or key_file is None:
                raise InvalidInput("x509: --cert and --key go together")
            cred = bind_x509(
                ledger,
                account_ref,
                read_pem(cert_file, "certificate"),
                read_pem(key_file, "key"),
            )
    emit(x509_summary(cred))


@cli.command("public-url")
@click.argument("url", required=False)
@click.option("--clear", is_flag=True, help="Go back to the default (https:// + origin host).")
@click.pass_context
@friendly
def public_url(ctx: click.Context, url: str | None, clear: bool) -> None:
    """Show or set the web console's public base URL (PDF QR codes open URL/c/ID).

    Example: evidence-ledger public-url https://evidence.example.org
    """
    top = home(ctx)
    cfg = load_config(top)
    if url is not None or clear:
        if url is not None and clear:
            raise InvalidInput("public-url: give a URL or --clear, not both")
        cfg = replace(cfg, public_base_url=url)
        try:
            check_public_url(cfg, "public-url")
        except Exception as e:
            raise InvalidInput(str(e)) from e
        save_config(cfg)
    click.echo(
        json.dumps({"public_base_url": cfg.base_url, "default": cfg.public_base_url is None})
    )
