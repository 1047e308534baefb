"""StrategyRunner delivers a strategy's short flags and per-bar stop fractions of the last row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradelab.engine.runner import NO_EXTRA, StrategyRunner
from tradelab.strategy.base import Param, Signals, Strategy
from tradelab.strategy.indicators import crossed_above, crossed_below, sma
from tradelab.testing import make_bars


class CrossLS(Strategy):
    """Long and short crosses with a per-bar stop from the bar's range."""

    name = "cross_ls"
    numpy_columns = True
    fast = Param(3, low=2, high=50)
    slow = Param(8, low=3, high=100)

    @property
    def warmup(self) -> int:
        return int(self.slow) + 1

    def signals(self, bars: pd.DataFrame) -> Signals:
        close = np.asarray(bars["close"])
        f, s = sma(close, self.fast), sma(close, self.slow)
        up, down = crossed_above(f, s), crossed_below(f, s)
        spread = (np.asarray(bars["high"]) - np.asarray(bars["low"])) / close
        return Signals(up, down, short_entries=down, short_exits=up, sl_stop=2 * spread)


def _rows(runner: StrategyRunner, bars: pd.DataFrame) -> list:
    out = []
    for t, row in zip(bars.index, bars[["open", "high", "low", "close", "volume"]].to_numpy(),
                      strict=True):
        runner.update(t.to_pydatetime(), *row)
        out.append(runner.extra)
    return out


@pytest.mark.parametrize("mode", ["numpy-columns", "dataframe", "precomputed"])
def test_extra_fields_equal_full_history_signals(mode) -> None:
    bars = make_bars(300, seed=11)
    strategy = CrossLS()
    runner = StrategyRunner(strategy, "X", numpy_path=mode == "numpy-columns")
    assert runner.plain  # long-only until the strategy shows its short side
    if mode == "precomputed":
        runner.precompute(bars, check=False)
    extra = _rows(runner, bars)
    full = strategy.generate(bars)
    assert not runner.plain and runner.has_extra
    short_entries = np.array([bool(e[0]) for e in extra])  # None before the warmup: no flag
    np.testing.assert_array_equal(short_entries, full.short_entries.to_numpy())
    np.testing.assert_array_equal(np.array([bool(e[1]) for e in extra]), full.short_exits.to_numpy())
    assert short_entries.sum() > 3
    warm = strategy.warmup - 1  # the window runner evaluates nothing before its warmup
    sl = np.array([np.nan if e[2] is None else e[2] for e in extra])
    np.testing.assert_allclose(sl[warm:], full.sl_stop.to_numpy()[warm:], rtol=0, atol=0)
    assert all(e[3] is None for e in extra)  # no tp_stop given


def test_a_long_only_strategy_leaves_no_extra(registry) -> None:
    runner = StrategyRunner(registry.create("sma_cross", fast=3, slow=8), "X")
    extra = _rows(runner, make_bars(100, seed=2))
    assert set(extra) == {NO_EXTRA} and runner.plain


def test_a_direction_or_stops_leave_the_long_only_path(registry) -> None:
    from tradelab.strategy.exits import Stops

    strategy = registry.create("sma_cross")
    assert not StrategyRunner(strategy, "X", direction="short").plain
    assert not StrategyRunner(strategy, "X", stops=Stops(sl=0.02)).plain
    with pytest.raises(ValueError, match="direction 'sideways'"):
        StrategyRunner(strategy, "X", direction="sideways")
