"""Recorder: write-ahead before the broker, batched snapshots, bulk store writes (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import Execution
from tradelab.store import Store
from tradelab.testing import RecordingBroker, make_bars


@pytest.fixture()
def sqlite_store(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'engine.db'}")
    store.upgrade()
    yield store
    store.close()


class StoreCheckingBroker(RecordingBroker):
    """Records, for every order it receives, whether the store already held it."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.durable_on_arrival: list[bool] = []

    def submit(self, order) -> str:
        row = self.store.get_order(order.client_order_id)
        self.durable_on_arrival.append(row is not None and row.status == "new")
        return super().submit(order)


@pytest.fixture()
def any_store(store_url: str):
    """A migrated store on SQLite and (marked ``postgres``) PostgreSQL."""
    store = Store(store_url)
    store.upgrade()
    yield store
    store.close()


def test_an_order_is_durable_before_the_broker_sees_it(registry, any_store) -> None:
    sqlite_store = any_store
    broker = StoreCheckingBroker(sqlite_store)
    engine = assemble_engine([(registry.create("sma_cross", fast=3, slow=8), "X")],
                    ReplayFeed(make_bars(200, seed=2), "X"), Execution(), broker=broker,
                    store=sqlite_store, config=EngineConfig(account="wal", flush_every=1000))
    engine.run()
    assert broker.durable_on_arrival and all(broker.durable_on_arrival)
    assert engine.recorder.write_ahead_commits == len(broker.sent)
    # The audit trail was completed by the later flush: new → submitted per order.
    for cid in broker.sent:
        assert [(e.from_state, e.to_state) for e in sqlite_store.order_events(cid)] == \
            [(None, "new"), ("new", "submitted")]


def test_snapshots_are_buffered_then_written_in_one_commit(registry, sqlite_store) -> None:
    bars = make_bars(30, seed=4)
    engine = assemble_engine([(registry.create("sma_cross"), "X")], ReplayFeed(bars, "X"), Execution(),
                    store=sqlite_store, config=EngineConfig(account="snap", flush_every=10))
    run_id = engine.run_id
    for i, bar in enumerate(engine.feed):
        engine.step(bar)
        if i == 8:  # nine bars in: nothing routine committed yet
            assert engine.recorder.pending_snapshots == 9
            assert sqlite_store.equity_curve("snap", run_id) == []
            assert sqlite_store.get_run(run_id).last_bar_time is None
        if i == 9:
            assert engine.recorder.pending_snapshots == 0
            curve = sqlite_store.equity_curve("snap", run_id)
            assert [p.at for p in curve] == list(bars.index[:10].to_pydatetime())
            assert sqlite_store.get_run(run_id).last_bar_time == bars.index[9].to_pydatetime()
    engine._shutdown("finished")
    assert len(sqlite_store.equity_curve("snap", run_id)) == len(bars)
    assert sqlite_store.get_run(run_id).status == "finished"


T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def test_bulk_snapshots_and_lean_order_writes(store_url: str) -> None:
    store = Store(store_url)
    store.upgrade()
    try:
        with store.transaction() as tx:
            aid = tx.ensure_account("bulk", Decimal("1000"))
            run = tx.start_run("bulk", "s", symbol="X", source="t", mode="replay", started_at=T0)
        rows = [{"account": "bulk", "at": T0 + timedelta(minutes=i), "cash": Decimal("1000"),
                 "positions_value": Decimal(i), "equity": Decimal(1000 + i) / 3,
                 "drawdown": Decimal(0), "run_id": run} for i in range(5)]
        with store.transaction() as tx:
            tx.known_account("bulk", aid)
            assert tx.add_equity_snapshots(rows) == 5
            assert tx.add_equity_snapshots([]) == 0
            oid = tx.save_order("c1", at=T0, account="bulk", run_id=run, symbol="X", side="buy",
                                type="market", quantity=Decimal(2))
            assert tx.save_order("c1", at=T0 + timedelta(minutes=1), order_id=oid,
                                 status="submitted") == oid
            assert tx.add_order_events_by_id([(oid, None, "new", T0, None),
                                              (oid, "new", "submitted", T0, None)]) == 2
            fill = ("f1", "X", "buy", Decimal(2), Decimal("10.5"), Decimal("0.01"), T0)
            assert tx.add_fill_by_id(oid, *fill) is True
            assert tx.add_fill_by_id(oid, *fill) is False  # a fill id is booked once
            with pytest.raises(ValueError, match="to_state"):
                tx.add_order_events_by_id([(oid, "new", "bogus", T0, None)])
            assert tx.upsert_order_id("c1", at=T0, account="bulk", symbol="X", side="buy",
                                      type="market", quantity=Decimal(2)) == oid
        curve = store.equity_curve("bulk", run)
        assert [p.equity for p in curve] == [(Decimal(1000 + i) / 3).quantize(Decimal("1e-10"))
                                            for i in range(5)]
        assert [(f.fill_id, f.client_order_id, f.price) for f in store.fills("bulk")] == \
            [("f1", "c1", Decimal("10.5"))]
        order = store.get_order("c1")
        assert (order.status, order.quantity, order.run_id) == ("submitted", Decimal(2), run)
        assert [(e.from_state, e.to_state) for e in store.order_events("c1")] == \
            [(None, "new"), ("new", "submitted")]
        with store.transaction() as tx, pytest.raises(ValueError, match="needs"):
            tx.upsert_order_id("c2", at=T0, account="bulk", symbol="X")
    finally:
        store.close()


def test_side_connection_writes_what_the_transaction_api_writes(any_store) -> None:
    from tradelab.store.sideconn import SideConnection

    with any_store.transaction() as tx:
        aid = tx.ensure_account("side", Decimal("1000"))
        tx.upsert_order("ref", at=T0, account="side", symbol="X", side="buy", type="market",
                        quantity=Decimal("3"), reason="sized at fill")
    side = SideConnection(any_store, aid)
    try:
        fields = {"account": "side", "symbol": "X", "side": "buy", "type": "market",
                  "quantity": Decimal("3"), "status": "new", "time_in_force": "gtc",
                  "reason": "sized at fill", "limit_price": None, "stop_price": None, "run_id": None}
        oid = side.insert_order("fast", T0, fields)
        assert isinstance(oid, int)
        assert side.insert_order("fast", T0, fields) is None  # exists: caller takes the checked path
        assert side.kill_switch() == (False, "", "")
        with any_store.transaction() as tx:
            tx.set_kill_switch("side", True, "halt", "ops", T0)
        assert side.kill_switch() == (True, "halt", "ops")  # sees another connection's commit
        side.checkpoint()
    finally:
        side.close()
    ref, fast = any_store.get_order("ref"), any_store.get_order("fast")
    from dataclasses import asdict

    assert {**asdict(ref), "client_order_id": "-"} == {**asdict(fast), "client_order_id": "-"}


def test_an_external_halt_is_stamped_with_the_time_the_engine_saw_it(registry, sqlite_store) -> None:
    from tradelab.clock import LiveClock

    with sqlite_store.transaction() as tx:
        tx.ensure_account("halted", Decimal("100000"))
        tx.set_kill_switch("halted", True, "operator halt", "operator:test", LiveClock().now())
    before = LiveClock().now()
    engine = assemble_engine([(registry.create("sma_cross", fast=3, slow=8), "X")],
                             ReplayFeed(make_bars(50, seed=3), "X"), Execution(), store=sqlite_store,
                             config=EngineConfig(account="halted"))
    engine.run()
    alerts = [e for e in sqlite_store.risk_events("halted") if e.rule == "kill_switch"]
    seen = [e for e in alerts if e.severity == "critical"]  # "run N halted: ..." when it noticed
    assert seen and all(e.at >= before - timedelta(seconds=1) for e in seen)
    # Denials are stamped with the bar they denied; nothing with the epoch.
    assert all(e.at.year >= 2020 for e in alerts)
