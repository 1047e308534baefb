"""Flatten from the dashboard: trader+, confirmed, the engines' flatten mark, audit-logged."""

from __future__ import annotations

from tests.unit.api.helpers import PASSWORDS
from tradelab.auth import audit as ev
from tradelab.dashboard.app import DashboardApp
from tradelab.dashboard.services import DashboardServices
from tradelab.risk.manager import FLATTEN_MARK
from tradelab.store.auth_repo import AuthRepo


def _app(services: DashboardServices, user: str) -> DashboardApp:
    app = DashboardApp(services, live=False)
    app.login(user, PASSWORDS[user])
    return app


def test_a_trader_flattens_only_after_confirming(services: DashboardServices) -> None:
    c = _app(services, "trader").controls
    assert not c.flatten.disabled
    c.ask_flatten()
    assert c.flatten_box.visible
    assert services.store.kill_switch("paper").engaged is False  # nothing before confirming
    c.cancel_flatten_box()
    assert not c.flatten_box.visible
    c.ask_flatten()
    c.flatten_reason.value = "close it all"
    assert c.do_flatten() is True
    ks = services.store.kill_switch("paper")
    # What `tradelab risk halt --flatten` stores: the reason the engines act on.
    assert ks.engaged and ks.by == "trader" and ks.reason == FLATTEN_MARK + "close it all"
    assert c.flatten.disabled and not c.flatten_box.visible  # asked for once
    entry = AuthRepo(services.store).audit(actor="trader", event=ev.KILL_SWITCH)[0]
    assert entry.outcome == "ok" and entry.subject == "paper"
    assert entry.detail is not None and entry.detail["flatten"] is True


def test_a_halt_can_still_become_a_flatten(services: DashboardServices) -> None:
    c = _app(services, "trader").controls
    assert c.confirm_engage() is True
    assert not c.flatten.disabled
    assert c.do_flatten() is True
    assert services.store.kill_switch("paper").reason.startswith(FLATTEN_MARK)


def test_a_viewer_cannot_flatten(services: DashboardServices) -> None:
    c = _app(services, "viewer").controls
    assert c.flatten.disabled and c.confirm_flatten.disabled
    assert c.do_flatten() is False  # the service refuses even a forged click
    assert "needs role trader" in c.message.object
    assert services.store.kill_switch("paper").engaged is False
