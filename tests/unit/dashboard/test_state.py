"""The change check and the snapshot: cheap polls, refresh only on change, right figures."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.unit.api.helpers import T0
from tradelab.dashboard.state import COLUMNS, DashboardState, load_snapshot, store_version
from tradelab.dashboard.views import LiveViews
from tradelab.store import Store


def _add_fill(store: Store, n: int) -> None:
    at = T0 + timedelta(days=n)
    with store.transaction() as tx:
        tx.upsert_order(f"c-{n}", at=at, account="paper", run_id=1, symbol="SPY", side="sell",
                        type="market", quantity=Decimal("5"), status="filled",
                        filled_quantity=Decimal("5"), avg_fill_price=Decimal("480"))
        tx.add_fill(f"f-{n}", f"c-{n}", "SPY", "sell", Decimal("5"), Decimal("480"),
                    Decimal("0.5"), at)


def test_version_is_stable_without_writes_and_moves_with_a_fill(store: Store) -> None:
    before = store_version(store)
    assert store_version(store) == before
    _add_fill(store, 2)
    assert store_version(store) != before


def test_version_moves_with_the_kill_switch(store: Store) -> None:
    before = store_version(store)
    with store.transaction() as tx:
        tx.set_kill_switch("paper", True, "test", "someone", T0)
    assert store_version(store) != before


def test_poll_rereads_only_when_the_store_changed(store: Store) -> None:
    state = DashboardState(store, account="paper")
    first = state.snapshot
    assert state.poll() is False
    assert state.snapshot is first and state.refreshes == 1
    _add_fill(store, 2)
    assert state.poll() is True
    assert state.refreshes == 2
    assert state.snapshot.fill_count == 2
    assert list(state.snapshot.fills["fill_id"]) == ["f-2", "f-1"]  # newest first


def test_snapshot_figures_come_from_the_store(store: Store) -> None:
    snap = load_snapshot(store, "paper")
    s = snap.summary
    assert s["equity"] == 99998.75
    assert s["pnl"] == -1.25
    assert s["cash"] == 95293.75
    assert s["unrealized"] == 0.0  # positions value 4705 = 10 × 470.5 at cost
    assert s["run"] == 1 and s["open_orders"] == 0
    assert snap.positions.to_dict("records") == [
        {"symbol": "SPY", "quantity": 10.0, "avg_price": 470.5, "mark": 470.5, "unrealized": 0.0,
         "realized_pnl": 0.0}]  # marked at the snapshot's value (no bars recorded)
    assert s["fees"] == 1.25 and s["start_cash"] == 100000.0
    assert snap.risk_events["rule"].tolist() == ["max_position"]
    assert snap.kill_switch.engaged is False
    assert snap.accounts == ("paper",)
    assert snap.equity["equity"].tolist() == [99998.75]


def test_an_unknown_account_gives_an_empty_snapshot_with_columns(store: Store) -> None:
    snap = load_snapshot(store, "nope")
    assert snap.summary == {} and snap.kill_switch is None and snap.fill_count == 0
    assert list(snap.fills.columns) == COLUMNS["fills"]
    assert list(snap.positions.columns) == COLUMNS["positions"]


def test_switching_account_refreshes(store: Store) -> None:
    with store.transaction() as tx:
        tx.ensure_account("other", Decimal("5000"))
    state = DashboardState(store, account="paper")
    state.account = "other"
    assert state.snapshot.account == "other"
    assert state.snapshot.summary["equity"] == 5000.0
    assert state.snapshot.fill_count == 0


def test_views_show_the_last_fill_and_the_halt(store: Store) -> None:
    views = LiveViews()
    views.update(load_snapshot(store, "paper"))
    assert "data-fill-id='f-1'" in views.status.object
    assert "data-state='active'" in views.kill_switch.object
    assert views.fills.value["fill_id"].tolist() == ["f-1"]
    with store.transaction() as tx:
        tx.set_kill_switch("paper", True, "drawdown", "risk", T0)
    views.update(load_snapshot(store, "paper"))
    assert "data-state='halted'" in views.kill_switch.object
    assert "drawdown" in views.kill_switch.object


def test_reconciliations_are_shown_and_refresh_the_view(store: Store) -> None:
    state = DashboardState(store, account="paper")
    assert list(state.snapshot.reconciliations.columns) == COLUMNS["reconciliations"]
    assert len(state.snapshot.reconciliations) == 0
    store.reconcile.record_reconciliation(
        "paper", venue="ccxt", trigger="start", at=T0, ok=False, adopted=False, booked_fills=1,
        findings=[{"kind": "position_mismatch", "symbol": "SPY", "client_order_id": None,
                   "store": "0", "venue": "3", "detail": "SPY: book 0, venue 3"}], run_id=None)
    assert state.poll() is True
    row = state.snapshot.reconciliations.iloc[0]
    assert (row["venue"], row["ok"], row["booked_fills"]) == ("ccxt", "MISMATCH", 1)
    assert row["findings"] == "position_mismatch SPY"
    views = LiveViews()
    views.update(state.snapshot)
    assert len(views.reconciliations.value) == 1


def test_a_data_quality_outcome_alone_refreshes_the_view(store: Store) -> None:
    from tradelab.store.quality_models import QUALITY_KINDS

    before = store_version(store)
    store.quality.record([{"source": "ws", "symbol": "SPY", "kind": QUALITY_KINDS[0],
                           "reason": "not_json", "count": 1, "at": T0}])
    assert store_version(store) != before
