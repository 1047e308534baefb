"""A strategy that raises while the engine primes it halts the run before the first bar."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tradelab.app.wiring import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.errors import RunHalted
from tradelab.execution import Execution
from tradelab.store import Store
from tradelab.strategy.base import Param, Signals, Strategy


class Unprimable(Strategy):
    """Raises on any frame of bars: the precomputed mode evaluates it once, up front."""

    name = "unprimable"
    fast = Param(3, low=2, high=50)

    def signals(self, bars: pd.DataFrame) -> Signals:
        raise ZeroDivisionError("unprimable: history it cannot handle")


def test_a_strategy_raising_while_primed_fails_the_run_with_its_reason(
        spx: pd.DataFrame, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'prime.db'}")
    store.upgrade()
    engine = assemble_engine([(Unprimable(), "SPX")], ReplayFeed(spx.iloc[:50], "SPX"),
                             Execution(cash=10_000.0), store=store,
                             config=EngineConfig(account="paper", signal_mode="precomputed",
                                                 flush_seconds=0.0))
    with pytest.raises(RunHalted, match=r"ZeroDivisionError: unprimable: history it cannot "
                                        r"handle \(before the first bar\)"):
        engine.run()
    [run] = store.runs("paper")
    # the run is closed as failed with the reason at once (not left running until its
    # lease expires), and no bar was processed
    assert run.status == "failed"
    assert "before the first bar" in (run.summary or {}).get("stop_reason", "")
    assert engine.bars == 0 and store.fills("paper", run.id) == []
