"""Security of the console without a browser: headers, cookies, CSRF, rate limits,
roles, sessions at rest; and the session service on both databases."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.web.csp import POLICY, serialise
from api.web.i18n import negotiate, parse_accept_language
from ledger.accounts import create_account, revoke_account
from ledger.core import Ledger
from ledger.services import OPERATOR, Services
from ledger.services.sessions import LoginFailed, Sessions, csrf_token, session_digest

PAGES = ["/", "/login", "/verify", "/log", "/logout", "/docs", "/no-such-page", "/static/app.css"]


def _run(coro: Any) -> httpx.Response:
    """Run ``coro`` on a loop of its own thread: the browser tests' Playwright
    keeps an event loop running on this one."""
    with ThreadPoolExecutor(1) as pool:
        result: httpx.Response = pool.submit(asyncio.run, coro).result()
    return result


class Client:
    """An in-process client of the app with one client address."""

    def __init__(self, ledger: Ledger, host: str = "127.0.0.1", https: bool = False) -> None:
        self.app = create_app(ledger)
        transport = httpx.ASGITransport(app=self.app, client=(host, 4321))
        scheme = "https" if https else "http"
        self.http = httpx.AsyncClient(
            transport=transport, base_url=f"{scheme}://testserver", follow_redirects=False
        )
        self.base = f"{scheme}://testserver"

    def get(self, path: str, **kw: object) -> httpx.Response:
        return _run(self.http.get(path, **kw))  # type: ignore[arg-type]

    def post(self, path: str, **kw: object) -> httpx.Response:
        return _run(self.http.post(path, **kw))  # type: ignore[arg-type]

    def csrf(self, path: str = "/login") -> str:
        page = self.get(path)
        m = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert m, page.text[:500]
        return m[1]

    def login(self, token: str) -> httpx.Response:
        csrf = self.csrf()
        return self.post(
            "/login", data={"token": token, "csrf": csrf}, headers={"Origin": self.base}
        )


@pytest.fixture
def tokens(ledger: Ledger) -> dict[str, str]:
    out = {}
    for role, name in [("rights_holder", "rh"), ("notary", "nt"), ("admin", "ad")]:
        out[name] = create_account(ledger, role, name).token
    return out


@pytest.fixture
def client(ledger: Ledger) -> Client:
    return Client(ledger)


def test_every_page_has_the_policy_and_security_headers(client: Client) -> None:
    policy = client.get("/").headers["content-security-policy"]
    assert policy == serialise(POLICY)
    assert policy.startswith("default-src 'none'; frame-ancestors 'none'")
    for path in PAGES:
        r = client.get(path, headers={"Accept": "text/html"})
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0], path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        if r.headers["content-type"].startswith("text/html"):
            assert "<script>" not in r.text and " on" not in re.sub(r"<[^>]*>", "", "")
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), path
            assert not re.search(r"\son[a-z]+=", r.text), path  # no inline handlers


def test_https_cookies_are_secure_and_host_prefixed(ledger: Ledger, tokens: dict[str, str]) -> None:
    c = Client(ledger, https=True)
    r = c.login(tokens["rh"])
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-el_session=")
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    assert "Path=/" in cookie and "Domain" not in cookie
    assert r.headers["strict-transport-security"].startswith("max-age=")


def test_sessions_are_stored_hashed_and_end_on_logout(
    client: Client, ledger: Ledger, tokens: dict[str, str]
) -> None:
    r = client.login(tokens["rh"])
    assert r.status_code == 303 and r.headers["location"] == "/console"
    sid = client.http.cookies["el_session"]
    rows = ledger.store.query("select * from sessions")
    assert [row["id_sha256"] for row in rows] == [session_digest(sid)]
    assert sid not in repr(rows) and tokens["rh"] not in repr(rows)
    assert client.get("/console").status_code == 200
    csrf = csrf_token(sid)
    r = client.post("/logout", data={"csrf": csrf}, headers={"Origin": client.base})
    assert r.status_code == 303
    assert ledger.store.query("select * from sessions") == []
    client.http.cookies.set("el_session", sid)  # a copy of the old cookie
    r = client.get("/console")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/console")


def test_state_changing_forms_need_the_csrf_token(
    client: Client, ledger: Ledger, tokens: dict[str, str]
) -> None:
    # No token, a wrong token, another origin: refused before anything happens.
    r = client.post("/login", data={"token": tokens["rh"]})
    assert r.status_code == 403 and "csrf" in r.text
    assert ledger.store.query("select count(*) as n from sessions")[0]["n"] == 0
    client.login(tokens["ad"])
    sid = client.http.cookies["el_session"]
    good = csrf_token(sid)
    before = ledger.store.size()
    for data, headers in [
        ({"role": "rights_holder", "name": "x1"}, {}),
        ({"role": "rights_holder", "name": "x2", "csrf": "forged"}, {}),
        ({"role": "rights_holder", "name": "x3", "csrf": good}, {"Origin": "https://evil.example"}),
    ]:
        r = client.post("/admin/accounts", data=data, headers=headers)
        assert r.status_code == 403, data
    assert ledger.store.size() == before
    r = client.post(
        "/admin/accounts",
        data={"role": "rights_holder", "name": "x4", "csrf": good},
        headers={"Origin": client.base},
    )
    assert r.status_code == 201 and "elt_" in r.text
    assert r.headers["cache-control"] == "no-store"
    # Uploads from the console's script carry the token in a header.
    r = client.post("/console/deposit", files={"file": ("a.txt", b"abc")})
    assert r.status_code == 403


def test_cross_role_requests_are_refused_by_the_services(
    client: Client, ledger: Ledger, tokens: dict[str, str]
) -> None:
    client.login(tokens["rh"])
    csrf = csrf_token(client.http.cookies["el_session"])
    origin = {"Origin": client.base}
    before = ledger.store.size()
    assert (
        client.post(
            "/admin/accounts", data={"role": "admin", "name": "me", "csrf": csrf}, headers=origin
        ).status_code
        == 403
    )
    r = Services(ledger).deposits.deposit_hash(OPERATOR, "ab" * 32)
    assert (
        client.post(
            f"/notary/evidence/{r.evidence_id}/issue", data={"csrf": csrf}, headers=origin
        ).status_code
        == 403
    )
    assert ledger.store.size() == before + 1  # only the deposit made above


def test_login_is_rate_limited(ledger: Ledger, tokens: dict[str, str]) -> None:
    c = Client(ledger, host="10.9.8.7")
    for _ in range(15):  # right tokens cost nothing
        assert c.login(tokens["rh"]).status_code == 303
        c.http.cookies.clear()
    statuses = []
    for _ in range(12):
        statuses.append(c.login("elt_wrong").status_code)
    assert statuses[:10] == [401] * 10
    assert statuses[-1] == 429
    last = c.login(tokens["rh"])  # blocked, whatever the token
    assert last.status_code == 429 and int(last.headers["retry-after"]) >= 1
    other = Client(ledger, host="10.9.8.8")
    other.app.state.web = c.app.state.web  # same limiter, another address
    assert other.login(tokens["rh"]).status_code == 303


def test_deposit_check_answers_one_word_and_is_rate_limited(ledger: Ledger) -> None:
    import hashlib

    receipt = Services(ledger).deposits.deposit_hash(
        OPERATOR, hashlib.sha256(b"doc").hexdigest(), title="secret title"
    )
    c = Client(ledger, host="10.1.1.1")
    csrf = c.csrf("/verify")

    def check(no: str, digest: str) -> httpx.Response:
        return c.post(
            "/verify/deposit",
            data={"deposit_no": no, "sha256": digest, "csrf": csrf},
            headers={"Origin": c.base},
        )

    ok = check(receipt.deposit_no, hashlib.sha256(b"doc").hexdigest())
    assert ok.status_code == 200 and 'class="answer match"' in ok.text
    assert "secret title" not in ok.text
    assert 'class="answer mismatch"' in check(receipt.deposit_no, "00" * 32).text
    assert 'class="answer unknown"' in check("EL-20200101-0000099999", "00" * 32).text
    wrong_date = receipt.deposit_no.replace(receipt.deposit_no[3:11], "20000101")
    assert 'class="answer unknown"' in check(wrong_date, "00" * 32).text
    bad = check("not a number", "00" * 32)
    assert bad.status_code == 400
    statuses = [check(receipt.deposit_no, "00" * 32).status_code for _ in range(25)]
    assert 429 in statuses


def test_errors_are_pages_for_browsers_and_problems_for_the_api(client: Client) -> None:
    page = client.get("/nothing-here", headers={"Accept": "text/html", "Accept-Language": "en"})
    assert page.status_code == 404 and "<h1>Not found</h1>" in page.text
    assert "&#34;status&#34;: 404" in page.text or '"status": 404' in page.text
    api = client.get("/v1/nothing-here", headers={"Accept": "text/html"})
    assert api.headers["content-type"] == "application/problem+json"
    bad = client.get("/log?old=x&new=1", headers={"Accept-Language": "zh"})
    assert bad.status_code == 422 and "请求无法处理" in bad.text


def test_language_negotiation_order() -> None:
    assert parse_accept_language("en-US,en;q=0.9,zh-CN;q=0.8") == ["en", "zh"]
    assert parse_accept_language("fr, zh-Hant;q=0.5, en;q=0") == ["zh"]
    assert parse_accept_language("en;q=abc, zh;q=2") == []
    assert negotiate(None, None, None) == "zh"
    assert negotiate(None, None, "fr") == "zh"
    assert negotiate(None, None, "en") == "en"
    assert negotiate(None, "zh", "en") == "zh"
    assert negotiate("en", "zh", "zh") == "en"
    assert negotiate("xx", "en", "zh") == "en"


def test_explicit_language_is_remembered_in_a_cookie(client: Client) -> None:
    r = client.get("/?lang=en", headers={"Accept-Language": "zh"})
    assert '<html lang="en">' in r.text and "el_lang=en" in r.headers["set-cookie"]
    r = client.get("/", headers={"Accept-Language": "zh"})
    assert '<html lang="en">' in r.text


def test_catalogues_are_complete() -> None:
    from api.web.catalogue import check

    assert check() == []


# -- the session service, on SQLite and PostgreSQL ---------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_session_service_timeouts_and_revocation(ledger: Ledger) -> None:
    acct = create_account(ledger, "rights_holder", "sess")
    clock = Clock()
    sessions = Sessions(ledger, idle=600, lifetime=3600, touch_every=60, clock=clock)
    with pytest.raises(LoginFailed):
        sessions.login("elt_nope")
    sid, s = sessions.login(acct.token)
    assert s.account_id == acct.account_id and s.csrf == csrf_token(sid)
    assert len(sid) >= 43 and sessions.resume(sid) is not None
    # Activity keeps it open; the last-seen time is written at most once a minute.
    for _ in range(7):
        clock.now += 500
        assert sessions.resume(sid) is not None
    # Past the lifetime it ends, however active (idle only 200 s here).
    clock.now += 200
    assert sessions.resume(sid) is None
    assert sessions.count(acct.account_id) == 0
    # Idle too long: ended.
    sid2, _ = sessions.login(acct.token)
    clock.now += 601
    assert sessions.resume(sid2) is None
    # Revoking the account ends its sessions at once.
    sid3, _ = sessions.login(acct.token)
    sid4, _ = sessions.login(acct.token)
    revoke_account(ledger, acct.account_id)
    assert sessions.resume(sid3) is None
    assert sessions.end_account(acct.account_id) == 2
    assert sessions.resume(sid4) is None
    with pytest.raises(LoginFailed):
        sessions.login(acct.token)
    # Garbage never matches.
    for junk in ["", "x" * 500, sid[:-1]]:
        assert sessions.resume(junk) is None


def test_sessions_are_shared_by_service_instances(ledger: Ledger) -> None:
    a, b = Sessions(ledger), Sessions(ledger)
    acct = create_account(ledger, "notary", "twice")
    sid, _ = a.login(acct.token)
    assert b.resume(sid) is not None
    assert b.purge() == 0
    assert a.end(sid) and not a.end(sid)


def test_package_data_lists_templates_and_catalogues() -> None:
    root = Path(__file__).resolve().parents[2]
    text = (root / "pyproject.toml").read_text()
    assert '"api.web" = ["templates/*.html", "static/**/*", "locale/*/LC_MESSAGES/*.po"]' in text


def test_fast_dates_equal_babel() -> None:
    import random
    from datetime import UTC, datetime, timedelta

    from api.web.i18n import _ZONES, Formatter, format_medium

    rng = random.Random(7)
    for _ in range(500):
        when = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(2**31))
        for lang in ("zh", "en"):
            zone, label = _ZONES[lang]
            local = when.astimezone(zone)
            assert Formatter(lang).datetime(when) == f"{format_medium(lang, local)} ({label})"
