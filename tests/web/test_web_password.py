"""Password login: set and clear on /account (current token or password required),
log in with name and password, rate limits, hashes at rest only; the CLI command."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from playwright.sync_api import expect

from ledger.accounts import create_account
from ledger.cli import cli
from ledger.core import Ledger
from ledger.errors import Conflict, Forbidden, InvalidInput
from ledger.services import OPERATOR, Services
from ledger.services.policy import Actor

from .test_web_security import Client
from .web_support import Pages, World, run_axe

PASSWORD = "correct horse battery staple 马"


def _actor(ledger: Ledger, name: str) -> Actor:
    record = Services(ledger).reads.active_accounts_by_name(name)[0]
    return Actor(record.account_id, record.role, record.name)


def test_set_login_clear_and_only_a_hash_at_rest(ledger: Ledger) -> None:
    token = create_account(ledger, "rights_holder", "pw-holder").token
    services = Services(ledger)
    me = _actor(ledger, "pw-holder")
    with pytest.raises(Forbidden):  # the current credential is required
        services.passwords.set(me, PASSWORD, current="elt_not-mine")
    with pytest.raises(InvalidInput):
        services.passwords.set(me, "short", current=token)
    with pytest.raises(InvalidInput):
        services.passwords.set(me, token, current=token)  # a token is not a password
    services.passwords.set(me, PASSWORD, current=token)
    assert services.passwords.has_password(me)
    (row,) = ledger.store.query("select hash from account_passwords")
    assert row["hash"].startswith("$argon2id$")
    assert PASSWORD not in str(ledger.store.dump_projections())
    assert PASSWORD not in row["hash"]

    assert services.passwords.login("pw-holder", PASSWORD) == me
    assert services.passwords.login("pw-holder", PASSWORD + "x") is None
    assert services.passwords.login("nobody", PASSWORD) is None
    # The current password proves who changes it, as the token does.
    services.passwords.set(me, PASSWORD + " 2", current=PASSWORD)
    assert services.passwords.login("pw-holder", PASSWORD) is None
    other = create_account(ledger, "rights_holder", "someone-else")
    with pytest.raises(Forbidden):  # only one's own password
        services.passwords.set(me, PASSWORD, current=token, account_id=other.account_id)
    assert services.passwords.clear(me, current=PASSWORD + " 2")
    assert ledger.store.query("select * from account_passwords") == []
    assert services.passwords.login("pw-holder", PASSWORD + " 2") is None


def test_a_name_logs_in_one_account_and_revoked_accounts_do_not(ledger: Ledger) -> None:
    services = Services(ledger)
    create_account(ledger, "rights_holder", "shared")
    notary = create_account(ledger, "notary", "shared")
    holder = services.accounts.find(OPERATOR, "shared", "rights_holder")
    services.passwords.set(OPERATOR, PASSWORD, account_id=holder.account_id)
    with pytest.raises(Conflict):
        services.passwords.set(OPERATOR, PASSWORD + "!", account_id=notary.account_id)
    assert services.passwords.login("shared", PASSWORD).role == "rights_holder"  # type: ignore[union-attr]
    services.accounts.revoke(OPERATOR, holder.account_id)
    assert services.passwords.login("shared", PASSWORD) is None


def test_password_login_through_the_form_is_rate_limited_by_address_and_name(
    ledger: Ledger,
) -> None:
    create_account(ledger, "rights_holder", "limited")
    Services(ledger).passwords.set(
        OPERATOR, PASSWORD, account_id=_actor(ledger, "limited").account_id
    )
    c = Client(ledger, host="10.1.1.1")

    def attempt(client: Client, name: str, password: str) -> int:
        client.http.cookies.clear()
        csrf = client.csrf()
        data = {"username": name, "password": password, "csrf": csrf}
        return client.post("/login", data=data, headers={"Origin": client.base}).status_code

    assert attempt(c, "limited", PASSWORD) == 303
    assert attempt(c, "limited", "wrong password!!") == 401
    assert attempt(c, "", "") == 401
    # Guessing one name from many addresses: the name's own budget runs out.
    budget = 10
    statuses = []
    for i in range(budget + 1):
        other = Client(ledger, host=f"10.2.0.{i}")
        other.app.state.web = c.app.state.web
        statuses.append(attempt(other, "limited", f"guess number {i}"))
    assert statuses[: budget - 1] == [401] * (budget - 1) and statuses[-1] == 429
    fresh = Client(ledger, host="10.3.0.1")
    fresh.app.state.web = c.app.state.web
    assert attempt(fresh, "limited", PASSWORD) == 429  # the name waits, even with the password


def test_cli_sets_and_clears_a_password(ledger: Ledger) -> None:
    create_account(ledger, "rights_holder", "cli-holder")
    home = str(ledger.config.home)
    runner = CliRunner()
    r = runner.invoke(
        cli,
        ["--home", home, "account", "password", "cli-holder", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert r.exit_code == 0, r.output
    assert "password set" in r.output
    services = Services(ledger)
    assert services.passwords.login("cli-holder", PASSWORD) is not None
    r = runner.invoke(
        cli, ["--home", home, "account", "password", "cli-holder", "--password-stdin"], input="x\n"
    )
    assert r.exit_code == 2 and "12 to 1024 characters" in r.output
    r = runner.invoke(cli, ["--home", home, "account", "password", "cli-holder", "--clear"])
    assert r.exit_code == 0 and "password removed" in r.output
    assert services.passwords.login("cli-holder", PASSWORD) is None
    r = runner.invoke(cli, ["--home", home, "account", "password", "nobody", "--clear"])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_account_page_sets_a_password_that_logs_in(pages: Pages, world: World, lang: str) -> None:
    name = f"carol-{lang}"
    ledger = Ledger.open(world.home)
    try:
        token = create_account(ledger, "rights_holder", name).token
    finally:
        ledger.close()
    page = pages.new(lang)
    pages.login(page, token)
    page.goto("/account")
    expect(page.locator("#password-state")).to_contain_text("未开启" if lang == "zh" else "off")
    assert not run_axe(page)

    # A wrong current credential is refused with a readable message.
    page.fill("#current", "elt_wrong")
    page.fill("#new", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("#set-password [type=submit]")
    expect(page.locator("#account-error")).to_be_visible()

    page.fill("#current", token)
    page.fill("#new", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("#set-password [type=submit]")
    expect(page).to_have_url(re.compile(r"/account\?done=set$"))
    expect(page.locator("#password-state")).to_contain_text("已开启" if lang == "zh" else "on")

    # Log out, then in with name and password.
    page.click("header form[action='/logout'] [type=submit]")
    page.goto("/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD + "?")
    page.click("main [type=submit]")
    expect(page.locator("#login-error")).to_be_visible()
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("main [type=submit]")
    expect(page).to_have_url(re.compile(r"/console$"))

    # Remove it with the current password: the password no longer logs in.
    page.goto("/account")
    page.fill("#clear-current", PASSWORD)
    page.click("#clear-password [type=submit]")
    expect(page.locator("#password-state")).to_contain_text("未开启" if lang == "zh" else "off")
    page.click("header form[action='/logout'] [type=submit]")
    page.goto("/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("main [type=submit]")
    expect(page.locator("#login-error")).to_be_visible()
