"""Login per browser session, logout, and what happens when a session dies elsewhere."""

from __future__ import annotations

import pytest

from tests.unit.api.helpers import PASSWORDS
from tradelab.auth.errors import InvalidCredentials
from tradelab.dashboard.app import RECHECK_EVERY, DashboardApp
from tradelab.dashboard.login import LoginView, UserSession
from tradelab.dashboard.services import DashboardServices


def _audit_events(services: DashboardServices) -> list[str]:
    from sqlalchemy import select

    from tradelab.store.auth_models import AuditEntry

    t = AuditEntry.__table__
    with services.store.engine.connect() as conn:
        return list(conn.execute(select(t.c.event).order_by(t.c.id)).scalars())


def test_login_then_logout_revokes_the_session(services: DashboardServices) -> None:
    session = UserSession(services.auth)
    principal = session.login("trader", PASSWORDS["trader"])
    assert principal.username == "trader" and principal.role.name == "trader"
    assert session.current() == principal
    sid = principal.session_id
    session.logout()
    assert session.principal is None
    assert services.auth.repo.get_session(sid).revoked_at is not None
    with pytest.raises(InvalidCredentials):
        session.current()
    assert {"login", "logout"} <= set(_audit_events(services))


def test_sessions_are_separate(services: DashboardServices) -> None:
    a, b = DashboardApp(services, live=False), DashboardApp(services, live=False)
    a.login("trader", PASSWORDS["trader"])
    b.login("viewer", PASSWORDS["viewer"])
    assert a.session.principal.username == "trader"
    assert b.session.principal.username == "viewer"
    a.logout()
    assert b.session.current().username == "viewer"


def test_the_form_rejects_a_wrong_password(services: DashboardServices) -> None:
    logged: list[object] = []
    view = LoginView(UserSession(services.auth), logged.append)
    view.username.value, view.password.value = "trader", "wrong-password-123"
    assert view.submit() is None
    assert logged == [] and view.message.visible
    assert view.message.object == "Invalid user name or password."
    assert view.password.value == ""
    view.password.value = PASSWORDS["trader"]
    assert view.submit() is not None and len(logged) == 1 and not view.message.visible


def test_app_shows_login_then_dashboard_then_login(services: DashboardServices) -> None:
    app = DashboardApp(services, live=False)
    assert app.root.objects[0] is not app._dashboard
    app.login_view.username.value = "viewer"
    app.login_view.password.value = PASSWORDS["viewer"]
    app.login_view.submit()
    assert app.root.objects == [app._dashboard]
    assert "viewer" in app.user_badge.object
    app.logout()
    assert app.root.objects[0] is not app._dashboard


def test_a_session_revoked_elsewhere_logs_the_page_out(services: DashboardServices) -> None:
    app = DashboardApp(services, live=False)
    principal = app.login("trader", PASSWORDS["trader"])
    services.auth.logout(principal)  # e.g. "log out everywhere" through the API
    for _ in range(RECHECK_EVERY):
        app.poll()
    assert app.session.principal is None
    assert app.root.objects[0] is not app._dashboard
