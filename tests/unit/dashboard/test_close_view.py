"""The dashboard's "Close position": trader+, confirmed, kept across refreshes, withdrawn
when what it names is gone; the equity chart's data is the selected run's curve."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from tests.unit.api.helpers import PASSWORDS, T0
from tradelab.dashboard.app import DashboardApp
from tradelab.dashboard.charts import EquityChart
from tradelab.dashboard.closeview import quantity_text
from tradelab.dashboard.services import DashboardServices
from tradelab.store import Store
from tradelab.store.close_repo import close_requests

D = Decimal


def _app(services: DashboardServices, user: str) -> DashboardApp:
    app = DashboardApp(services, live=False)
    app.login(user, PASSWORDS[user])
    return app


def _run(store: Store) -> int:
    return store.runs("paper")[-1].id


def _new_bar(store: Store, run: int, n: int) -> None:
    """An engine's next bar: one more equity snapshot of ``run`` (the store changed)."""
    with store.transaction() as tx:
        tx.add_equity_snapshot("paper", T0 + timedelta(days=n), D("95293.75"), D("4705"),
                               D("99998.75"), D(0), run_id=run)


def test_a_trader_closes_a_position_after_confirming(services: DashboardServices) -> None:
    store, run = services.store, _run(services.store)
    app = _app(services, "trader")
    c = app.closer
    assert list(c.symbol.options) == ["SPY"] and c.symbol.value == "SPY"
    assert not c.close.disabled and not c.step.confirm.disabled
    assert c.ask_close() is True
    assert c.step.shown
    assert "data-symbol='SPY' data-quantity='10'" in c.step.question.object
    assert f"Close the SPY position of run {run}: sell 10 SPY?" in c.step.question.object
    assert close_requests(store, "paper") == []  # nothing before confirming
    c.step.confirm.clicks += 1  # what a click in the browser does
    [req] = close_requests(store, "paper", run)
    assert (req.symbol, req.status, req.requested_by) == ("SPY", "pending", "trader")
    assert not c.step.shown and c.message.alert_type == "success"
    assert f"request {req.id}" in c.message.object
    # Refreshed at once: the page lists the request without waiting for a poll.
    assert "data-testid='close-request' data-symbol='SPY' data-status='pending'" \
        in c.note.object


def test_the_confirmation_survives_refreshes(services: DashboardServices) -> None:
    store, run = services.store, _run(services.store)
    app = _app(services, "trader")
    c = app.closer
    widgets = (c.symbol, c.close, c.step.box, c.step.confirm, c.panel)
    option_sets: list[object] = []
    c.symbol.param.watch(lambda e: option_sets.append(e.new), "options")
    c.ask_close()
    for n in range(1, 4):  # an engine trading: a new bar per poll
        _new_bar(store, run, n)
        assert app.state.poll() is True
        assert c.step.shown
    assert (c.symbol, c.close, c.step.box, c.step.confirm, c.panel) == widgets
    assert option_sets == []  # the same open symbols: the picker was left alone
    assert c.do_close() is True
    assert [r.symbol for r in close_requests(store, "paper", run)] == ["SPY"]


def test_cancel_leaves_the_position_and_no_request(services: DashboardServices) -> None:
    store = services.store
    c = _app(services, "trader").closer
    c.ask_close()
    c.step.cancel.clicks += 1
    assert not c.step.shown
    assert c.do_close() is False  # a confirm after the cancel has nothing to act on
    assert close_requests(store, "paper") == []
    assert [(p.symbol, p.quantity) for p in store.positions("paper", include_flat=False)] == [
        ("SPY", D("10"))]


def test_a_viewer_cannot_close(services: DashboardServices) -> None:
    c = _app(services, "viewer").closer
    assert c.close.disabled and c.symbol.disabled and c.step.confirm.disabled
    c.ask_close()  # a forged click: the service is the gate
    assert c.do_close() is False
    assert c.message.alert_type == "danger" and "needs role trader" in c.message.object
    assert close_requests(services.store, "paper") == []


def test_the_confirmation_is_withdrawn_when_its_position_closes(
        services: DashboardServices) -> None:
    store, run = services.store, _run(services.store)
    app = _app(services, "trader")
    c = app.closer
    c.ask_close()
    with store.transaction() as tx:  # the strategy sold on its own meanwhile
        at = T0 + timedelta(days=1)
        tx.upsert_order("c-2", at=at, account="paper", run_id=run, symbol="SPY", side="sell",
                        type="market", quantity=D("10"), status="filled",
                        filled_quantity=D("10"), avg_fill_price=D("471"))
        tx.add_fill("f-2", "c-2", "SPY", "sell", D("10"), D("471"), D("1.25"), at)
        tx.add_equity_snapshot("paper", at, D("100002.5"), D(0), D("100002.5"), D(0),
                               run_id=run)
    assert app.state.poll() is True
    assert not c.step.shown
    assert list(c.symbol.options) == [] and c.close.disabled
    assert "data-count='0'" in c.note.object
    assert c.do_close() is False and close_requests(store, "paper") == []


def test_the_confirmation_is_withdrawn_when_the_page_switches_run(
        services: DashboardServices) -> None:
    store, first = services.store, _run(services.store)
    with store.transaction() as tx:
        other = tx.start_run("paper", "sma_cross", symbol="QQQ", source="sample",
                             mode="paper", started_at=T0, params={})
    app = _app(services, "trader")
    app.state.run = first
    c = app.closer
    c.ask_close()
    app.state.run = other  # no fills: nothing held in this run
    assert not c.step.shown and c.close.disabled
    app.state.run = first
    assert not c.step.shown  # not asked again by itself


@pytest.mark.parametrize(("quantity", "text"), [(100.0, "100"), (0.0125, "0.0125"),
                                                (1_000_000.0, "1,000,000"), (-3.0, "-3")])
def test_quantities_are_named_in_plain_digits(quantity: float, text: str) -> None:
    assert quantity_text(quantity) == text


def test_the_equity_chart_shows_the_selected_runs_curve(services: DashboardServices) -> None:
    store, first = services.store, _run(services.store)
    with store.transaction() as tx:
        second = tx.start_run("paper", "sma_cross", symbol="QQQ", source="sample",
                              mode="paper", started_at=T0, params={})
        for n, equity in enumerate(("100000", "100250.5", "99875.25")):
            tx.add_equity_snapshot("paper", T0 + timedelta(days=n), D(equity), D(0), D(equity),
                                   D(0), run_id=second)
    app = _app(services, "trader")
    for run in (second, first, second):
        app.state.run = run
        data = app.views.equity.source.data
        curve = store.equity_curve("paper", run)
        assert [pd.Timestamp(t).tz_localize("UTC") for t in data["at"]] == [p.at for p in curve]
        assert list(data["equity"]) == [float(p.equity) for p in curve]
    empty = EquityChart.columns(pd.DataFrame({"at": [], "equity": []}))
    assert len(empty["at"]) == 0 and empty["at"].dtype == np.dtype("datetime64[ns]")
