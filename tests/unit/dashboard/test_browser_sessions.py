"""The server-side login registry behind the dashboard's cookie: expiry, tickets, signing."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from tests.unit.api.helpers import PASSWORDS, SECRET, auth_settings
from tradelab.auth.errors import InvalidCredentials
from tradelab.dashboard.app import RECHECK_EVERY, DashboardApp
from tradelab.dashboard.login import UserSession
from tradelab.dashboard.services import DashboardServices, open_services
from tradelab.dashboard.sessions import BrowserSessions, CookieSigner
from tradelab.errors import ConfigError
from tradelab.strategy.registry import StrategyRegistry


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_idle_entry_is_forgotten_and_use_keeps_it_alive() -> None:
    clock = Clock()
    reg = BrowserSessions(idle_timeout=60, clock=clock)
    sid, other = reg.add("alice"), reg.add("bob")
    assert len(sid) >= 43 and sid != other  # 32 random bytes, URL-safe
    clock.now += 59
    assert reg.get(sid) == "alice"  # used: the idle clock restarts
    clock.now += 59
    assert reg.get(sid) == "alice"
    assert reg.get(other) is None  # 118 s without use
    clock.now += 60
    assert reg.get(sid) is None
    assert len(reg) == 0


def test_an_entry_with_an_open_page_is_not_idle() -> None:
    clock = Clock()
    reg = BrowserSessions(idle_timeout=10, clock=clock)
    sid = reg.add("alice")
    assert reg.attach(sid) == "alice"
    clock.now += 1000
    assert reg.expire() == 0 and reg.get(sid) == "alice"
    reg.detach(sid)
    clock.now += 9
    assert reg.get(sid) == "alice"
    clock.now += 10
    assert reg.expire() == 1 and reg.get(sid) is None
    assert reg.attach(sid) is None


def test_a_ticket_works_once() -> None:
    reg = BrowserSessions(idle_timeout=60, clock=Clock())
    sid = reg.add("alice")
    ticket = reg.issue_ticket(sid, ip="10.0.0.1")
    assert ticket != sid
    assert reg.redeem(ticket, ip="10.0.0.1") == sid
    assert reg.redeem(ticket, ip="10.0.0.1") is None
    assert reg.redeem("made-up", ip="10.0.0.1") is None
    assert reg.redeem(None) is None


def test_a_ticket_expires_within_30_seconds() -> None:
    clock = Clock()
    reg = BrowserSessions(idle_timeout=3600, clock=clock)
    sid = reg.add("alice")
    late = reg.issue_ticket(sid)
    clock.now += 29.9
    fresh = reg.issue_ticket(sid)
    assert reg.redeem(fresh) == sid
    clock.now += 0.1  # the first one is 30 s old now
    assert reg.redeem(late) is None
    with pytest.raises(ValueError):
        BrowserSessions(idle_timeout=60, ticket_ttl=31)


def test_a_ticket_is_bound_to_its_session_and_address() -> None:
    reg = BrowserSessions(idle_timeout=60, clock=Clock())
    sid = reg.add("alice")
    stolen = reg.issue_ticket(sid, ip="10.0.0.1")
    assert reg.redeem(stolen, ip="10.6.6.6") is None
    assert reg.redeem(stolen, ip="10.0.0.1") is None  # the failed attempt used it up
    dropped = reg.issue_ticket(sid, ip="10.0.0.1")
    assert reg.drop(sid) == "alice"
    assert reg.redeem(dropped, ip="10.0.0.1") is None
    with pytest.raises(KeyError):
        reg.issue_ticket(sid)


def test_the_cookie_signature_is_checked() -> None:
    now = [1_700_000_000.0]
    signer = CookieSigner("k" * 32, max_age=3600, clock=lambda: now[0])
    value = signer.sign("the-session-id")
    assert "the-session-id" not in value  # base64 in tornado's format, but signed
    assert signer.verify(value) == "the-session-id"
    assert signer.verify(value[:-1] + ("0" if value[-1] != "0" else "1")) is None
    assert CookieSigner("x" * 32, clock=lambda: now[0]).verify(value) is None
    forged = CookieSigner("x" * 32, clock=lambda: now[0]).sign("the-session-id")
    assert signer.verify(forged) is None
    assert signer.verify("garbage") is None and signer.verify(None) is None
    now[0] += 3601
    assert signer.verify(value) is None
    assert CookieSigner().verify(CookieSigner().sign("x")) is None  # random per server


def test_open_services_caps_the_idle_time_and_checks_the_cookie_secret(store: object) -> None:
    from tradelab.config import Settings

    auth = auth_settings(refresh_ttl=600)
    svc = open_services(store=store, registry=StrategyRegistry(), auth=auth, secret=SECRET)
    assert svc.sessions.idle_timeout == 600
    settings = Settings(dashboard={"session_idle": 10**6, "cookie_secret": "c" * 40})
    svc = open_services(settings, store=store, registry=StrategyRegistry(), auth=auth, secret=SECRET)
    assert svc.sessions.idle_timeout == 600
    assert svc.cookies.verify(CookieSigner("c" * 40).sign("sid")) == "sid"
    short = Settings(dashboard={"cookie_secret": "too-short"})
    with pytest.raises(ConfigError):
        open_services(short, store=store, registry=StrategyRegistry(), auth=auth, secret=SECRET)


def test_a_page_resumes_a_shared_login_and_reports_login_and_logout(
        services: DashboardServices) -> None:
    events: list[tuple[str, object]] = []
    first = DashboardApp(services, live=False, on_login=lambda s: events.append(("in", s)),
                         on_logout=lambda s, by_user: events.append(("out", by_user)))
    first.login("trader", PASSWORDS["trader"])
    assert events == [("in", first.session)]
    second = DashboardApp(services, live=False, session=first.session)  # a reload
    assert second.resume().username == "trader"
    assert second.root.objects == [second._dashboard]
    first.logout()
    assert events[-1] == ("out", True)
    third = DashboardApp(services, live=False, session=first.session)
    assert third.resume() is None
    assert third.root.objects != [third._dashboard]


def test_a_login_revoked_elsewhere_is_reported_as_not_by_the_user(
        services: DashboardServices) -> None:
    events: list[bool] = []
    app = DashboardApp(services, live=False, on_logout=lambda _s, by_user: events.append(by_user))
    principal = app.login("viewer", PASSWORDS["viewer"])
    services.auth.logout(principal)
    for _ in range(RECHECK_EVERY):
        app.poll()
    assert events == [False]


class SlowRefresh:
    """The real AuthService, with a refresh slow enough for two pages to overlap."""

    def __init__(self, auth: object) -> None:
        self._auth = auth

    def __getattr__(self, name: str) -> object:
        return getattr(self._auth, name)

    def refresh(self, *args: object, **kwargs: object) -> object:
        time.sleep(0.2)
        return self._auth.refresh(*args, **kwargs)


def test_pages_sharing_a_login_rotate_its_refresh_token_once(
        services: DashboardServices) -> None:
    session = UserSession(SlowRefresh(services.auth))  # type: ignore[arg-type]
    session.login("trader", PASSWORDS["trader"])
    session._tokens = dataclasses.replace(session._tokens, access_token="expired")
    results: list[object] = []

    def page() -> None:
        try:
            results.append(session.current().username)
        except InvalidCredentials as exc:
            results.append(exc)

    threads = [threading.Thread(target=page) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # Two rotations of one refresh token would look like a stolen token and end the login.
    assert results == ["trader", "trader"]
    assert session.current().username == "trader"
