"""Close requests (the dashboard's "Close" on one position) acted on by a store-backed engine."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import Execution
from tradelab.orders.model import client_order_id
from tradelab.risk.manager import FLATTEN
from tradelab.store import Store
from tradelab.store.close_repo import close_requests, finish_close, request_close
from tradelab.store.errors import StoreError
from tradelab.strategy.base import Signals, Strategy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class EnterOnce(Strategy):
    """Enters at the first bar (volume 1) and never exits: only a close request ends it."""

    name = "enter_once"
    numpy_columns = True

    def signals(self, bars: pd.DataFrame) -> Signals:
        code = np.asarray(bars["volume"])
        return Signals(code == 1, code == 2)


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'close.db'}")
    s.upgrade()
    return s


@pytest.mark.parametrize(("direction", "opening", "closing"),
                         [("long", "buy", "sell"), ("short", "sell", "buy")])
def test_the_engine_closes_a_requested_position_once(store: Store, direction: str, opening: str,
                                                     closing: str) -> None:
    rows = [(100, 101, 99, 100, 1)] + [(100 + n, 101 + n, 99 + n, 100 + n, 0) for n in range(6)]
    bars = pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], dtype=float,
                        index=pd.date_range("2024-01-01", periods=len(rows), freq="D", tz="UTC"))
    engine = assemble_engine([(EnterOnce(), "X")], ReplayFeed(bars, "X"),
                             Execution(cash=10_000.0, fees=0.0), store=store,
                             config=EngineConfig(direction=direction, kill_poll_seconds=0.0))
    engine.store = store
    asked: list[int] = []

    def ask(bar: object) -> None:
        if engine.bars == 3 and not asked:  # held since bar 2's open
            assert engine.portfolio.position("X") != 0
            asked.append(request_close(store, "paper", int(engine.run_id), "X", "trader", NOW))
            # A second click while pending is the same request.
            asked.append(request_close(store, "paper", int(engine.run_id), "X", "trader", NOW))

    result = engine.run(on_bar=ask)
    assert asked[0] == asked[1]
    sides = [(f.side, f.quantity) for f in result.fills]
    assert [s for s, _ in sides] == [opening, closing]
    assert sides[0][1] == sides[1][1] > 0
    assert engine.portfolio.position("X") == 0
    [req] = close_requests(store, "paper", int(engine.run_id))
    # Decided at bar 4 (the poll after the request), filled at bar 5's open.
    expected = client_order_id(str(engine.run_id), FLATTEN, "X", bars.index[3].to_pydatetime(),
                               closing)
    assert (req.status, req.client_order_id, req.symbol) == ("done", expected, "X")
    assert result.fills[-1].client_order_id == expected
    assert engine.orders.orders[expected].strategy == FLATTEN
    assert not finish_close(store, req.id, "nothing", None, NOW)  # acted on once only


def test_a_request_when_nothing_is_held_is_marked_nothing(store: Store) -> None:
    bars = pd.DataFrame([(1.0, 1.0, 1.0, 1.0, 0.0)] * 4, columns=["open", "high", "low", "close",
                                                                 "volume"],
                        index=pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC"))
    engine = assemble_engine([(EnterOnce(), "X")], ReplayFeed(bars, "X"),
                             Execution(cash=1_000.0, fees=0.0), store=store,
                             config=EngineConfig(kill_poll_seconds=0.0))
    engine.store = store
    rid = request_close(store, "paper", int(engine.run_id), "X", "trader", NOW)
    other = request_close(store, "paper", int(engine.run_id), "Y", "trader", NOW)
    result = engine.run()
    by_id = {r.id: r for r in close_requests(store, "paper")}
    assert (by_id[rid].status, by_id[rid].client_order_id) == ("nothing", None)
    assert by_id[other].status == "pending"  # no bar of Y: never priced, never acted on
    assert result.fills == []


def test_a_request_names_a_run_of_the_account_and_a_symbol(store: Store) -> None:
    with store.transaction() as tx:
        tx.ensure_account("a", Decimal(1))
        tx.ensure_account("b", Decimal(1))
        run = tx.start_run("a", "s", symbol="X", source="x", mode="paper", started_at=NOW)
    with pytest.raises(StoreError, match=f"run_id = {run}: not a run of account 'b'"):
        request_close(store, "b", run, "X", "trader", NOW)
    with pytest.raises(StoreError, match="symbol = '': a close request needs a symbol"):
        request_close(store, "a", run, "", "trader", NOW)
    with pytest.raises(ValueError, match="status"):
        finish_close(store, 1, "pending", None, NOW)
