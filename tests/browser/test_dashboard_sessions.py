"""A login survives a reload and a second tab; logout, tampering and revocation end it.

The same real server and Chromium as ``test_dashboard.py``; the login cookie is
read from (and planted in) the browser context.
"""

from __future__ import annotations

import base64
import http.client
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    UI_TIMEOUT,
    Dashboard,
    health,
    login_in,
    new_page,
    wait_until,
)
from tests.unit.api.helpers import PASSWORDS, SECRET, auth_settings
from tradelab.dashboard.sessions import COOKIE, CookieSigner
from tradelab.store import Store

pytestmark = pytest.mark.slow
# The server drops a Bokeh session 10-12 s after its page went away; on a busy machine later.
DESTROYED_WITHIN = 10.0 + UI_TIMEOUT


@pytest.fixture()
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
    yield ctx
    ctx.close()


def _logged_in(page: Any, user: str = "trader") -> None:
    expect(page.get_by_test_id("role")).to_have_text(user)
    expect(page.get_by_role("button", name="Log in")).to_have_count(0)


def _login_form(page: Any) -> None:
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_test_id("role")).to_have_count(0)


def _cookie(context: Any) -> dict[str, Any] | None:
    found = [c for c in context.cookies() if c["name"] == COOKIE]
    assert len(found) <= 1
    return found[0] if found else None


def _live_sessions(dashboard: Dashboard, user: str) -> set[str]:
    """Ids of ``user``'s store sessions that are not revoked."""
    from sqlalchemy import select

    from tradelab.store.auth_models import AuthSession, User

    s, u = AuthSession.__table__, User.__table__
    store = Store(dashboard.store_url)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(s.c.id).join(u, u.c.id == s.c.user_id)
                                .where(u.c.username == user, s.c.revoked_at.is_(None)))
            return {str(r) for r in rows.scalars()}
    finally:
        store.close()


def test_a_login_shows_the_dashboard_in_place_and_sets_the_cookie(dashboard: Dashboard,
                                                                   context: Any) -> None:
    page = new_page(context)
    page.goto(dashboard.url)
    page.get_by_placeholder("user name").fill("trader")
    page.get_by_placeholder("password").fill(PASSWORDS["trader"])
    loads: list[str] = []
    page.on("framenavigated", lambda frame: loads.append(frame.url)
            if frame == page.main_frame else None)
    page.get_by_role("button", name="Log in").click()
    _logged_in(page)
    expect(page.get_by_test_id("fill-count")).to_be_visible()
    wait_until(lambda: _cookie(context) is not None, "the login cookie set")
    assert loads == []  # no second page: the same document became the dashboard
    page.reload()  # and the cookie it fetched carries the login
    _logged_in(page)


def test_a_reload_keeps_the_login(dashboard: Dashboard, context: Any) -> None:
    before = _live_sessions(dashboard, "trader")
    page = login_in(context, dashboard.url, "trader")
    mine = _live_sessions(dashboard, "trader") - before
    assert len(mine) == 1  # this browser's login, in the store
    page.reload()
    _logged_in(page)
    expect(page.get_by_test_id("fill-count")).to_be_visible()  # the live views, not the form
    # The Bokeh sessions of the pages before the reload end (only this page's is left)...
    wait_until(lambda: health(dashboard)["sessions"] == 1, "earlier pages' sessions destroyed",
               DESTROYED_WITHIN)
    assert mine <= _live_sessions(dashboard, "trader")  # ...and did not log the user out
    page.reload()
    _logged_in(page)


def test_a_second_tab_of_the_browser_is_logged_in(dashboard: Dashboard, context: Any,
                                                  browser: Any) -> None:
    first = login_in(context, dashboard.url, "viewer")
    second = new_page(context)
    second.goto(dashboard.url)
    _logged_in(second, "viewer")
    _logged_in(first, "viewer")
    other = browser.new_context()  # another browser: no login of its own
    try:
        stranger = new_page(other)
        stranger.goto(dashboard.url)
        _login_form(stranger)
    finally:
        other.close()


def test_logout_ends_the_login_for_reloads(dashboard: Dashboard, context: Any) -> None:
    before = _live_sessions(dashboard, "trader")
    page = login_in(context, dashboard.url, "trader")
    mine = _live_sessions(dashboard, "trader") - before
    assert _cookie(context) is not None
    # The click sends the page to /logout, which redirects home: wait for that page to
    # load (a reload while it is still loading aborts the navigation).
    with page.expect_navigation(wait_until="load", timeout=UI_TIMEOUT * 1000):
        page.get_by_role("button", name="Log out").click()
    _login_form(page)
    page.wait_for_url(dashboard.url)
    wait_until(lambda: _cookie(context) is None, "cookie cleared by /logout")
    assert not mine & _live_sessions(dashboard, "trader")  # revoked in the store
    page.reload()
    _login_form(page)


def test_a_tampered_or_forged_cookie_shows_the_login_form(dashboard: Dashboard,
                                                          context: Any) -> None:
    page = login_in(context, dashboard.url, "trader")
    real = _cookie(context)
    assert real is not None
    fields = real["value"].split("|")  # tornado v2: 2|1:0|10:<time>|<name>|<n:b64 sid>|<sig>
    sid = base64.b64decode(fields[4].split(":", 1)[1]).decode()
    flipped = real["value"][:-1] + ("0" if real["value"][-1] != "0" else "1")
    forged = CookieSigner("not-the-server-key-" * 3).sign(sid)  # the right id, wrong key
    for value in (flipped, forged, sid):
        context.clear_cookies()
        context.add_cookies([{"name": COOKIE, "value": value, "url": dashboard.url}])
        page.reload()
        _login_form(page)
    context.clear_cookies()
    context.add_cookies([{"name": COOKIE, "value": real["value"], "url": dashboard.url}])
    page.reload()
    _logged_in(page)  # the genuine cookie still works: only the tampering was refused


def test_a_login_revoked_in_the_store_shows_the_login_form(dashboard: Dashboard,
                                                           context: Any) -> None:
    from tradelab.auth import AuthService

    before = _live_sessions(dashboard, "viewer")
    page = login_in(context, dashboard.url, "viewer")
    mine = _live_sessions(dashboard, "viewer") - before
    store = Store(dashboard.store_url)
    try:
        auth = AuthService(store, auth_settings(), secret=SECRET)
        me = auth.authenticate(auth.login("viewer", PASSWORDS["viewer"]).access_token)
        for session_id in mine:  # "log out that browser" from the API
            auth.revoke_session(me, session_id)
        auth.logout(me)
    finally:
        store.close()
    page.reload()
    _login_form(page)


def test_the_cookie_is_httponly_samesite_strict_and_not_in_the_page(
        dashboard: Dashboard, context: Any) -> None:
    page = login_in(context, dashboard.url, "trader")
    cookie = _cookie(context)
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http on loopback; https sets Secure
    assert cookie["path"] == "/"
    assert COOKIE not in page.evaluate("document.cookie")
    # Bokeh embeds a session token (request headers and cookies) in the page: not ours.
    request = urllib.request.Request(dashboard.url,
                                     headers={"Cookie": f"{COOKIE}={cookie['value']}"})
    with urllib.request.urlopen(request, timeout=UI_TIMEOUT) as r:
        html = r.read().decode()
    from bokeh.util.token import get_token_payload

    token = re.search(r'"token":\s*"([^"]+)"', html)
    assert token is not None
    payload = get_token_payload(token.group(1))
    assert cookie["value"] not in str(payload) and cookie["value"] not in html


def test_a_used_ticket_cannot_be_used_again(dashboard: Dashboard, context: Any,
                                            browser: Any) -> None:
    tickets: list[str] = []
    context.on("request", lambda r: tickets.append(r.url) if "/session?ticket=" in r.url
               else None)
    login_in(context, dashboard.url, "trader")
    assert len(tickets) == 1 and _cookie(context) is not None  # it worked once
    parts = urllib.parse.urlsplit(tickets[0])
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=UI_TIMEOUT)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}")
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 302 and answer.getheader("Location") == "/"
        assert answer.getheader("Set-Cookie") is None
    finally:
        conn.close()
    replay = browser.new_context()
    try:
        page = new_page(replay)
        page.goto(tickets[0])  # redirected to the dashboard, not logged in
        _login_form(page)
        assert not [c for c in replay.cookies() if c["name"] == COOKIE]
    finally:
        replay.close()
