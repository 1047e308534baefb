"""The Store API, run against SQLite and PostgreSQL (``store_url`` is parametrized)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

import pytest

from tradelab.store import (
    OrderConflictError,
    Store,
    StoreError,
    UnknownAccountError,
    UnknownOrderError,
)
from tradelab.store.records import KillSwitchState

from .conftest import at

D = Decimal
ORDER = {"account": "paper", "symbol": "SPY", "side": "buy", "type": "limit",
         "quantity": D("10"), "limit_price": D("401.25")}


def _order(store: Store, coid: str = "o1", minute: int = 0, **fields: object) -> None:
    with store.transaction() as tx:
        tx.upsert_order(coid, at=at(minute), **{**ORDER, **fields})


# -- accounts -------------------------------------------------------------

def test_ensure_account_is_idempotent_and_keeps_existing_cash(store: Store) -> None:
    with store.transaction() as tx:
        first = tx.ensure_account("paper", D("100000"))
        tx.set_cash("paper", D("99000.5"))
        assert tx.ensure_account("paper", D("1")) == first
    acct = store.get_account("paper")
    assert acct is not None and store.get_account(first) == acct
    assert (acct.name, acct.currency, acct.initial_cash, acct.cash) == (
        "paper", "USD", D("100000"), D("99000.5"))


def test_ensure_account_refuses_another_currency(store: Store, account: str) -> None:
    with pytest.raises(StoreError, match="currency USD, not EUR"), store.transaction() as tx:
        tx.ensure_account(account, D("1"), currency="EUR")


def test_unknown_account_is_a_clear_error(store: Store) -> None:
    assert store.get_account("nope") is None
    with pytest.raises(UnknownAccountError, match="'nope'"):
        store.positions("nope")
    with pytest.raises(UnknownAccountError), store.transaction() as tx:
        tx.set_cash("nope", D(1))


def test_account_names_are_every_account_sorted(store: Store) -> None:
    assert store.account_names() == []
    with store.transaction() as tx:
        tx.ensure_account("zeta", D(1))
        tx.ensure_account("alpha", D(1))
    assert store.account_names() == ["alpha", "zeta"]


# -- runs -----------------------------------------------------------------

def test_run_lifecycle(store: Store, account: str) -> None:
    with store.transaction() as tx:
        run = tx.start_run(account, "sma_cross", symbol="SPY", source="sample", mode="paper",
                           started_at=at(0), params={"fast": 10, "slow": 30, "size": D("0.5")})
        tx.set_run_progress(run, at(5))
    assert store.get_run(run).status == "running"  # type: ignore[union-attr]
    with store.transaction() as tx:
        tx.finish_run(run, "finished", {"equity": D("100123.45"), "trades": 3}, finished_at=at(9))
    (rec,) = store.runs(account)
    assert rec == store.get_run(run)
    assert (rec.id, rec.account, rec.strategy, rec.mode, rec.status) == (
        run, account, "sma_cross", "paper", "finished")
    # JSON has no Decimal: it is stored as its exact string.
    assert rec.params == {"fast": 10, "slow": 30, "size": "0.5"}
    assert rec.summary == {"equity": "100123.45", "trades": 3}
    assert (rec.started_at, rec.last_bar_time, rec.finished_at) == (at(0), at(5), at(9))
    assert store.runs() == [rec]


def test_run_rejects_bad_mode_status_and_unknown_ids(store: Store, account: str) -> None:
    with pytest.raises(ValueError, match="mode='backtest'"), store.transaction() as tx:
        tx.start_run(account, "s", symbol="X", source="s", mode="backtest", started_at=at(0))
    with store.transaction() as tx:
        run = tx.start_run(account, "s", symbol="X", source="s", mode="replay", started_at=at(0))
    with pytest.raises(ValueError, match="status='running'"), store.transaction() as tx:
        tx.finish_run(run, "running", finished_at=at(1))
    with pytest.raises(StoreError, match="unknown run id 999"), store.transaction() as tx:
        tx.set_run_progress(999, at(1))


# -- orders ---------------------------------------------------------------

def test_upsert_order_creates_with_defaults_then_updates(store: Store, account: str) -> None:
    _order(store)
    new = store.get_order("o1")
    assert new is not None
    assert (new.status, new.filled_quantity, new.time_in_force) == ("new", D(0), "gtc")
    assert (new.created_at, new.updated_at) == (at(0), at(0))
    with store.transaction() as tx:
        upd = tx.upsert_order("o1", at=at(1), status="submitted", broker_order_id="B-1")
    assert (upd.status, upd.broker_order_id, upd.created_at, upd.updated_at) == (
        "submitted", "B-1", at(0), at(1))
    assert upd.quantity == D(10) and upd.limit_price == D("401.25")
    assert store.get_order("o1") == upd


def test_upsert_order_is_idempotent(store: Store, account: str) -> None:
    _order(store)
    _order(store)
    assert len(store.orders(account)) == 1
    assert store.get_order("o1") == store.orders(account)[0]


def test_upsert_order_refuses_reuse_of_a_client_id_for_another_order(
        store: Store, account: str) -> None:
    _order(store)
    with pytest.raises(OrderConflictError, match="side='buy', not 'sell'"):
        _order(store, side="sell")


@pytest.mark.parametrize(("fields", "message"), [
    ({"colour": "red"}, "unknown order field"),
    ({"type": "iceberg"}, "type='iceberg'"),
    ({"status": "done"}, "status='done'"),
])
def test_upsert_order_validates_fields(store: Store, account: str, fields: dict[str, str],
                                       message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _order(store, **fields)


def test_new_order_needs_its_identity(store: Store, account: str) -> None:
    with pytest.raises(ValueError, match="needs symbol, side, type, quantity"), \
            store.transaction() as tx:
        tx.upsert_order("o9", at=at(0), account=account)


def test_open_orders_and_orders_by_run(store: Store, account: str) -> None:
    with store.transaction() as tx:
        run = tx.start_run(account, "s", symbol="SPY", source="s", mode="paper", started_at=at(0))
    for i, status in enumerate(["new", "submitted", "partially_filled", "filled", "cancelled",
                                "rejected", "expired"]):
        _order(store, f"o{i}", minute=i, status=status, run_id=run if i % 2 else None)
    assert [o.client_order_id for o in store.open_orders(account)] == ["o0", "o1", "o2"]
    assert [o.client_order_id for o in store.orders(account)] == [f"o{i}" for i in range(7)]
    assert [o.client_order_id for o in store.orders(account, run_id=run)] == ["o1", "o3", "o5"]


def test_str_enum_states_are_stored_as_their_values(store: Store, account: str) -> None:
    class State(StrEnum):
        NEW = "new"
        SUBMITTED = "submitted"

    _order(store, status=State.NEW)
    with store.transaction() as tx:
        tx.add_order_event("o1", State.NEW, State.SUBMITTED, at(1))
        rec = tx.upsert_order("o1", at=at(1), status=State.SUBMITTED)
    assert type(rec.status) is str and rec.status == "submitted"
    (event,) = store.order_events("o1")
    assert (type(event.from_state), event.from_state, event.to_state) == (str, "new", "submitted")


def test_order_events_keep_recording_order(store: Store, account: str) -> None:
    _order(store)
    with store.transaction() as tx:
        tx.add_order_event("o1", None, "new", at(0))
        tx.add_order_event("o1", "new", "submitted", at(0))  # same instant: id breaks the tie
        tx.add_order_event("o1", "submitted", "cancelled", at(1), reason="user")
    events = store.order_events("o1")
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, "new"), ("new", "submitted"), ("submitted", "cancelled")]
    assert events[-1].reason == "user" and events[-1].at == at(1)
    with pytest.raises(UnknownOrderError), store.transaction() as tx:
        tx.add_order_event("zz", None, "new", at(0))


# -- fills ----------------------------------------------------------------

def test_duplicate_fill_is_ignored_and_reported(store: Store, account: str) -> None:
    _order(store)
    args = ("F-1", "o1", "SPY", "buy", D("4"), D("401.25"), D("0.80"), at(2))
    with store.transaction() as tx:
        assert tx.add_fill(*args) is True
    with store.transaction() as tx:
        assert tx.add_fill(*args) is False
        assert tx.add_fill(*args[:4], D("9"), *args[5:]) is False  # same id, other data
    (fill,) = store.fills(account)
    assert (fill.fill_id, fill.client_order_id, fill.quantity, fill.price, fill.fees, fill.at) == (
        "F-1", "o1", D(4), D("401.25"), D("0.8"), at(2))


def test_fill_must_match_its_order(store: Store, account: str) -> None:
    _order(store)
    with pytest.raises(StoreError, match="sell SPY but order 'o1' is buy SPY"), \
            store.transaction() as tx:
        tx.add_fill("F-1", "o1", "SPY", "sell", D(1), D(1), D(0), at(1))
    with pytest.raises(UnknownOrderError), store.transaction() as tx:
        tx.add_fill("F-2", "nope", "SPY", "buy", D(1), D(1), D(0), at(1))


def test_fills_by_run(store: Store, account: str) -> None:
    with store.transaction() as tx:
        run = tx.start_run(account, "s", symbol="SPY", source="s", mode="paper", started_at=at(0))
    _order(store, "a", run_id=run)
    _order(store, "b")
    with store.transaction() as tx:
        tx.add_fill("F-b", "b", "SPY", "buy", D(1), D(2), D(0), at(1))
        tx.add_fill("F-a", "a", "SPY", "buy", D(1), D(2), D(0), at(2))
    assert [f.fill_id for f in store.fills(account)] == ["F-b", "F-a"]
    assert [f.fill_id for f in store.fills(account, run_id=run)] == ["F-a"]


def test_a_failing_transaction_applies_nothing_of_the_fill(store: Store, account: str) -> None:
    _order(store)
    with pytest.raises(RuntimeError, match="crash"), store.transaction() as tx:
        assert tx.add_fill("F-1", "o1", "SPY", "buy", D(10), D("401.25"), D(1), at(1))
        tx.set_cash(account, D("95986.5"))
        tx.set_position(account, "SPY", D(10), D("401.25"), D(0))
        tx.upsert_order("o1", at=at(1), status="filled", filled_quantity=D(10))
        tx.add_order_event("o1", "new", "filled", at(1))
        raise RuntimeError("crash between the fill and the commit")
    assert store.fills(account) == []
    assert store.positions(account) == []
    assert store.get_account(account).cash == D("100000")  # type: ignore[union-attr]
    assert store.get_order("o1").status == "new"  # type: ignore[union-attr]
    assert store.order_events("o1") == []
    # ... so the redelivered fill is applied, exactly once.
    with store.transaction() as tx:
        assert tx.add_fill("F-1", "o1", "SPY", "buy", D(10), D("401.25"), D(1), at(1))


# -- portfolio, risk, kill switch -----------------------------------------

def test_positions_upsert_per_symbol(store: Store, account: str) -> None:
    with store.transaction() as tx:
        tx.set_position(account, "SPY", D(10), D("400"), D(0))
        tx.set_position(account, "QQQ", D("-2.5"), D("300.1"), D(0))
        tx.set_position(account, "SPY", D(0), D(0), D("12.34"))
    got = {p.symbol: p for p in store.positions(account)}
    assert (got["SPY"].quantity, got["SPY"].realized_pnl) == (D(0), D("12.34"))
    assert got["QQQ"].quantity == D("-2.5")
    assert [p.symbol for p in store.positions(account, include_flat=False)] == ["QQQ"]


def test_equity_curve(store: Store, account: str) -> None:
    with store.transaction() as tx:
        run = tx.start_run(account, "s", symbol="SPY", source="s", mode="paper", started_at=at(0))
        for minute in (2, 1, 3):  # stored out of order, read in time order
            tx.add_equity_snapshot(account, at(minute), D(100), D(minute), D(100 + minute),
                                   D("-0.01"), run_id=run if minute > 1 else None)
    assert [p.at for p in store.equity_curve(account)] == [at(1), at(2), at(3)]
    assert [p.equity for p in store.equity_curve(account, run_id=run)] == [D(102), D(103)]


def test_risk_events_and_kill_switch(store: Store, account: str) -> None:
    assert store.kill_switch(account) == KillSwitchState()
    with store.transaction() as tx:
        tx.add_risk_event(account, "max_drawdown", "critical", "drawdown 21% > 20%", at(1),
                          strategy="sma_cross")
        tx.set_kill_switch(account, True, "max drawdown", "risk", at(1))
    assert store.kill_switch(account) == KillSwitchState(True, "max drawdown", "risk", at(1))
    with store.transaction() as tx:
        tx.set_kill_switch(account, False, "reviewed", "alice", at(2))
    assert store.kill_switch(account) == KillSwitchState(False, "reviewed", "alice", at(2))
    (event,) = store.risk_events(account)
    assert (event.rule, event.severity, event.strategy, event.at) == (
        "max_drawdown", "critical", "sma_cross", at(1))
    with pytest.raises(ValueError, match="severity='fatal'"), store.transaction() as tx:
        tx.add_risk_event(account, "x", "fatal", "m", at(1))


def test_account_state_has_everything_to_recover(store: Store, account: str) -> None:
    with store.transaction() as tx:
        old = tx.start_run(account, "s", symbol="SPY", source="s", mode="paper", started_at=at(0))
        tx.finish_run(old, "stopped", finished_at=at(1))
        run = tx.start_run(account, "s", symbol="SPY", source="s", mode="paper", started_at=at(2))
        tx.set_run_progress(run, at(7))
        tx.set_cash(account, D("95000"))
        tx.set_position(account, "SPY", D(10), D(500), D(0))
        tx.add_equity_snapshot(account, at(7), D("95000"), D(5010), D(100010), D(0), run_id=run)
        tx.set_kill_switch(account, True, "manual", "ops", at(3))
    _order(store, "done", status="filled")
    _order(store, "working", minute=5, status="submitted")
    state = store.account_state(account)
    assert state.account.cash == D("95000")
    assert [(p.symbol, p.quantity) for p in state.positions] == [("SPY", D(10))]
    assert [o.client_order_id for o in state.open_orders] == ["working"]
    assert state.kill_switch.engaged is True
    assert state.last_run is not None
    assert (state.last_run.id, state.last_run.status, state.last_run.last_bar_time) == (
        run, "running", at(7))
    assert state.last_equity is not None and state.last_equity.equity == D(100010)
    with pytest.raises(UnknownAccountError):
        store.account_state("nope")


def test_reads_inside_a_transaction_see_its_own_writes(store: Store, account: str) -> None:
    with store.transaction() as tx:
        tx.set_cash(account, D(1))
        assert tx.get_account(account).cash == D(1)  # type: ignore[union-attr]
        assert tx.lock_account(account).cash == D(1)


def test_timestamps_refuse_naive_datetimes(store: Store, account: str) -> None:
    with pytest.raises(ValueError, match="naive"), store.transaction() as tx:
        tx.set_kill_switch(account, True, "x", "y", datetime(2024, 1, 1))
    assert store.kill_switch(account).at is None
    with store.transaction() as tx:
        tx.set_kill_switch(account, True, "x", "y", datetime(2024, 1, 1, tzinfo=UTC))


@pytest.mark.postgres
def test_postgres_session_time_zone_does_not_leak(pg_db_url: str) -> None:
    # Production servers often run in local time; results must still be UTC.
    store = Store(pg_db_url + "?options=-c%20TimeZone%3DAsia/Kolkata")
    store.upgrade()
    with store.transaction() as tx:
        tx.ensure_account("a", D(1))
        tx.set_kill_switch("a", True, None, None, at(0))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "Asia/Kolkata"
    got = store.kill_switch("a").at
    assert got == at(0) and got.tzinfo is UTC  # type: ignore[union-attr]
    store.close()
