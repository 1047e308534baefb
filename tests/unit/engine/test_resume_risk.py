"""A resumed run keeps measuring drawdown from its peak and the day's loss from the last close."""

from __future__ import annotations

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import Execution
from tradelab.store import Store
from tradelab.testing import make_bars


def test_resume_restores_peak_day_start_and_last_equity(registry, store: Store) -> None:
    bars = make_bars(200, seed=3)
    strat = registry.create("sma_cross", fast=3, slow=8)
    first = assemble_engine([(strat, "X")], ReplayFeed(bars.iloc[:120], "X"), Execution(), store=store,
                   config=EngineConfig(account="acct"))
    first.run()
    curve = store.equity_curve("acct", int(first.run_id))
    resumed = assemble_engine([(strat, "X")], ReplayFeed(bars, "X"), Execution(), store=store,
                     config=EngineConfig(account="acct"), resume=int(first.run_id))
    risk = resumed.risk
    assert risk.peak_equity == max(p.equity for p in curve)
    assert risk.last_equity == curve[-1].equity                 # the last close
    assert risk.day_start_equity == curve[-2].equity            # daily bars: the close before it
