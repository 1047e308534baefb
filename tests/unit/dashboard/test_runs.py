"""One run at a time: with a finished and a running run on one account, every tile is the
selected run's (as the store has it) or labelled account-wide."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert

from tests.unit.api.helpers import T0
from tradelab.dashboard.runview import daily_pnl
from tradelab.dashboard.state import DashboardState, load_snapshot, pick_run
from tradelab.dashboard.views import LiveViews
from tradelab.store import Store
from tradelab.store.bar_sql import RB

D = Decimal
T1 = T0 + timedelta(days=3)


@pytest.fixture()
def two_runs(store: Store) -> tuple[int, int]:
    """Run 1 (seeded: bought 10 SPY at 470.5) sells at 480 and finishes; run 2 buys 5 QQQ
    at 400, is marked at 410 by its last bar and has an order still working."""
    first = store.runs("paper")[0].id
    with store.transaction() as tx:
        tx.upsert_order("c-2", at=T0 + timedelta(days=1), account="paper", run_id=first,
                        symbol="SPY", side="sell", type="market", quantity=D("10"),
                        status="filled", filled_quantity=D("10"), avg_fill_price=D("480"))
        tx.add_fill("f-2", "c-2", "SPY", "sell", D("10"), D("480"), D("1.5"),
                    T0 + timedelta(days=1))
        tx.add_equity_snapshot("paper", T0 + timedelta(days=1), D("100092.25"), D("0"),
                               D("100092.25"), D("0"), run_id=first)
        tx.finish_run(first, "finished", {}, finished_at=T0 + timedelta(days=1))
        second = tx.start_run("paper", "sma_cross", symbol="QQQ", source="sample", mode="paper",
                              started_at=T1, params={})
        tx.upsert_order("c-3", at=T1, account="paper", run_id=second, symbol="QQQ", side="buy",
                        type="market", quantity=D("5"), status="filled", filled_quantity=D("5"),
                        avg_fill_price=D("400"))
        tx.add_fill("f-3", "c-3", "QQQ", "buy", D("5"), D("400"), D("1"), T1)
        tx.upsert_order("c-4", at=T1, account="paper", run_id=second, symbol="QQQ", side="buy",
                        type="limit", quantity=D("1"), status="submitted", limit_price=D("390"))
        # The account row holds whatever the last writer left: not the run's figures.
        tx.set_cash("paper", D("97999"))
        tx.set_position("paper", "SPY", D("0"), D("0"), D("95"))
        tx.set_position("paper", "QQQ", D("5"), D("400"), D("0"))
        tx.add_equity_snapshot("paper", T1, D("97999"), D("2050"), D("100049"), D("0.001"),
                               run_id=second)
    with store.engine.begin() as conn:
        conn.execute(insert(RB).values(run_id=second, symbol="QQQ", at=T1, open=400.0,
                                       high=411.0, low=399.0, close=410.0, volume=1000.0))
    return first, second


def test_the_running_run_is_shown_by_default(store: Store, two_runs: tuple[int, int]) -> None:
    first, second = two_runs
    assert pick_run(store.runs("paper"), None).id == second
    snap = load_snapshot(store, "paper")
    assert snap.summary["run"] == second
    assert [rid for _, rid in snap.run_options] == [second, first]  # newest first


def test_every_tile_of_the_running_run_is_what_the_store_says(
        store: Store, two_runs: tuple[int, int]) -> None:
    _, second = two_runs
    s = load_snapshot(store, "paper", run_id=second).summary
    last = store.equity_curve("paper", second)[-1]
    fills = store.fills("paper", second)
    assert s["equity"] == float(last.equity) == 100049.0
    assert s["cash"] == float(last.cash)
    assert s["drawdown"] == float(last.drawdown)
    assert s["unrealized"] == float(last.positions_value) - 5 * 400.0 == 50.0  # not valued at 0
    assert s["realized"] == 0.0 and s["fees"] == 1.0
    assert s["start_cash"] == 100000.0 and s["pnl"] == 49.0  # 50 unrealized - 1 fee
    assert s["fills"] == len(fills) == 1
    working = [o for o in store.open_orders("paper") if o.run_id == second]
    assert s["open_orders"] == len(working) == 1


def test_tables_and_account_wide_figures(store: Store, two_runs: tuple[int, int]) -> None:
    first, second = two_runs
    snap = load_snapshot(store, "paper")
    assert snap.positions.to_dict("records") == [
        {"symbol": "QQQ", "quantity": 5.0, "avg_price": 400.0, "mark": 410.0,
         "unrealized": 50.0, "realized_pnl": 0.0}]
    assert snap.fills[["run", "fill_id"]].values.tolist() == [[second, "f-3"]]
    assert snap.orders["client_order_id"].tolist() == ["c-4"]
    assert len(snap.trades) == 0  # the QQQ position is still open
    assert snap.account_summary == {"cash": 97999.0, "open_orders": 1, "open_positions": 1,
                                    "runs": 2, "running": 1}
    old = load_snapshot(store, "paper", run_id=first)
    s = old.summary
    assert s["run"] == first and s["run_status"] == "finished"
    assert s["equity"] == 100092.25 and s["unrealized"] == 0.0
    assert s["realized"] == 95.0 and s["fees"] == 2.75 and s["pnl"] == pytest.approx(92.25)
    assert len(old.positions) == 0 and len(old.orders) == 0
    assert old.fills["run"].tolist() == [first, first]
    trade = old.trades.to_dict("records")[0]
    assert (trade["symbol"], trade["entry_price"], trade["exit_price"]) == ("SPY", 470.5, 480.0)
    assert trade["pnl"] == pytest.approx(95.0 - 2.75)
    assert old.daily.to_dict("records") == [{"day": T0.strftime("%Y-%m-%d"), "pnl": -1.25},
                                            {"day": (T0 + timedelta(days=1)).strftime("%Y-%m-%d"),
                                             "pnl": 93.5}]


def _tiles(views: LiveViews) -> dict[str, str]:
    html = f"{views.kpis.object}{views.account.object}{views.status.object}"
    return dict(re.findall(r"data-testid='([\w-]+)'[^>]*>([^<]*)<", html))


def test_the_tiles_show_the_selected_run(store: Store, two_runs: tuple[int, int]) -> None:
    first, _ = two_runs
    state = DashboardState(store, account="paper")
    views = LiveViews()
    views.update(state.snapshot)
    t = _tiles(views)
    assert (t["equity"], t["unrealized"], t["cash"], t["open-orders"], t["fill-count"]) == (
        "100,049.00 USD", "50.00", "97,999.00", "1", "1")
    assert t["account-cash"] == "97,999.00 USD" and t["account-positions"] == "1"
    assert t["last-fill"] == "buy 5 QQQ @ 400.00"
    state.run = first
    views.update(state.snapshot)
    t = _tiles(views)
    assert (t["equity"], t["realized"], t["unrealized"], t["open-orders"], t["fill-count"]) == (
        "100,092.25 USD", "95.00", "0.00", "0", "2")
    assert t["last-fill"] == "sell 10 SPY @ 480.00"
    assert f"run {first}" in t["run-label"]


def test_daily_pnl_starts_from_the_start_cash() -> None:
    import pandas as pd

    curve = pd.DataFrame({"at": pd.to_datetime(["2024-01-02 15:00", "2024-01-02 21:00",
                                                "2024-01-03 21:00"], utc=True),
                          "equity": [100.0, 103.0, 101.0]})
    assert daily_pnl(curve, 100.0)["pnl"].tolist() == [3.0, -2.0]


def test_the_views_update_a_rendered_page_between_runs(store: Store,
                                                       two_runs: tuple[int, int]) -> None:
    """Bokeh models exist (as when served): the plots' ranges follow empty → data → empty."""
    import panel as pn

    from tradelab.dashboard.state import Snapshot

    first, second = two_runs
    views = LiveViews()
    pn.Column(views.kpis, views.positions, views.trades, views.daily_plot, views.fills,
              views.equity_plot).get_root()
    for snap in (Snapshot(account="paper"), load_snapshot(store, "paper", run_id=first),
                 Snapshot(account="paper"), load_snapshot(store, "paper", run_id=second)):
        views.update(snap)
    assert views.fills.value["run"].tolist() == [second]


def test_recent_events_are_the_runs_orders_and_data_quality(
        store: Store, two_runs: tuple[int, int]) -> None:
    first, second = two_runs
    with store.transaction() as tx:
        tx.add_order_event("c-4", None, "new", T1, None)
        tx.add_order_event("c-4", "new", "submitted", T1, "sent")
    store.quality.record([{"source": "sample", "symbol": "QQQ", "kind": "rejected",
                           "reason": "nan_close", "count": 2, "at": T1, "run_id": second}])
    events = load_snapshot(store, "paper", run_id=second).events
    assert events[["kind", "event", "detail"]].values.tolist() == [  # newest first
        ["order", "buy c-4: new → submitted", "sent"], ["order", "buy c-4: new → new", ""],
        ["data rejected", "nan_close ×2", ""]]
    old = load_snapshot(store, "paper", run_id=first).events
    assert "data rejected" not in set(old["kind"])
