"""ControlService.close_position: a trader's request to close one run's position, audit-logged."""

from __future__ import annotations

import pytest

from tests.unit.api.helpers import PASSWORDS
from tradelab.auth import audit as ev
from tradelab.auth.errors import Forbidden
from tradelab.auth.roles import Principal
from tradelab.dashboard.services import DashboardServices
from tradelab.store.auth_repo import AuthRepo
from tradelab.store.close_repo import close_requests
from tradelab.store.errors import StoreError


def _principal(services: DashboardServices, user: str) -> Principal:
    tokens = services.auth.login(user, PASSWORDS[user])
    return services.auth.authenticate(tokens.access_token)


def test_a_trader_requests_a_close_once_and_it_is_audited(services: DashboardServices) -> None:
    run = services.store.runs("paper")[-1].id
    trader = _principal(services, "trader")
    first = services.control.close_position(trader, "paper", run, "SPX")
    again = services.control.close_position(trader, "paper", run, "SPX")  # still pending
    assert first == again
    [req] = close_requests(services.store, "paper", run)
    assert (req.status, req.symbol, req.requested_by, req.client_order_id) == (
        "pending", "SPX", "trader", None)
    entry = AuthRepo(services.store).audit(actor="trader", event=ev.CLOSE_POSITION)[0]
    assert entry.outcome == "ok" and entry.subject == "paper"
    assert entry.detail is not None and entry.detail["symbol"] == "SPX"


def test_a_viewer_cannot_request_a_close(services: DashboardServices) -> None:
    run = services.store.runs("paper")[-1].id
    with pytest.raises(Forbidden):
        services.control.close_position(_principal(services, "viewer"), "paper", run, "SPX")
    assert close_requests(services.store, "paper") == []


def test_a_close_names_a_run_of_the_account(services: DashboardServices) -> None:
    with pytest.raises(StoreError, match="run_id = 999: not a run of account 'paper'"):
        services.control.close_position(_principal(services, "trader"), "paper", 999, "SPX")
