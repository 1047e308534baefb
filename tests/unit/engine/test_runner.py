"""StrategyRunner: per-bar window flags equal full-history signals (both input paths)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradelab.engine.runner import ColumnWindow, StrategyRunner
from tradelab.strategy.base import Param, Signals, Strategy
from tradelab.strategy.indicators import crossed_above, crossed_below, sma
from tradelab.testing import make_bars

SHIPPED = [("sma_cross", {}), ("sma_cross", {"fast": 3, "slow": 7}), ("rsi_reversion", {}),
           ("donchian_breakout", {}), ("donchian_breakout", {"entry": 5, "exit": 3})]


class PandasOnlyCross(Strategy):
    """Uses pandas methods on its input, so it must get the DataFrame window."""

    name = "pandas_only_cross"
    fast = Param(3, low=2, high=50)
    slow = Param(8, low=3, high=100)

    @property
    def warmup(self) -> int:
        return int(self.slow) + 1

    def signals(self, bars: pd.DataFrame) -> Signals:
        close = bars["close"].to_numpy()  # a DataFrame method: fails on numpy columns
        f, s = sma(close, self.fast), sma(close, self.slow)
        return Signals(crossed_above(f, s), crossed_below(f, s))


def _per_bar(runner: StrategyRunner, bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    out = [runner.update(t.to_pydatetime(), *row)
           for t, row in zip(bars.index, bars[["open", "high", "low", "close", "volume"]].to_numpy(),
                             strict=True)]
    return np.array([e for e, _ in out]), np.array([x for _, x in out])


@pytest.mark.parametrize("numpy_path", [True, False], ids=["numpy-columns", "dataframe"])
@pytest.mark.parametrize(("name", "params"), SHIPPED)
def test_window_flags_equal_full_history_signals(registry, spx, name, params, numpy_path) -> None:
    strategy = registry.create(name, **params)
    bars = spx.iloc[:1000]
    runner = StrategyRunner(strategy, "SPX", numpy_path=numpy_path)
    assert runner.numpy_path is numpy_path  # the shipped strategies opt in
    entries, exits = _per_bar(runner, bars)
    full = strategy.generate(bars)
    assert entries.sum() > 3
    np.testing.assert_array_equal(entries, full.entries.to_numpy())
    np.testing.assert_array_equal(exits, full.exits.to_numpy())


def test_strategy_without_opt_in_gets_a_dataframe_and_the_same_flags() -> None:
    bars = make_bars(400, seed=3)
    strategy = PandasOnlyCross()
    runner = StrategyRunner(strategy, "X")
    assert not runner.numpy_path
    entries, exits = _per_bar(runner, bars)
    full = strategy.generate(bars)
    np.testing.assert_array_equal(entries, full.entries.to_numpy())
    np.testing.assert_array_equal(exits, full.exits.to_numpy())


def test_ring_buffer_wraps_many_times_without_changing_flags(registry) -> None:
    strategy = registry.create("sma_cross", fast=2, slow=3)  # warmup 4 → capacity 256
    bars = make_bars(2000, seed=11)
    runner = StrategyRunner(strategy, "X")
    entries, _ = _per_bar(runner, bars)
    np.testing.assert_array_equal(entries, strategy.generate(bars).entries.to_numpy())


def test_precomputed_flags_equal_window_flags(registry, spx) -> None:
    strategy = registry.create("rsi_reversion")
    bars = spx.iloc[:800]
    pre = StrategyRunner(strategy, "SPX")
    pre.precompute(bars)
    assert pre.mode == "precomputed"
    window = StrategyRunner(strategy, "SPX")
    assert [a.tolist() for a in _per_bar(pre, bars)] == [a.tolist() for a in _per_bar(window, bars)]


def test_prime_then_update_equals_uninterrupted(registry, spx) -> None:
    strategy = registry.create("sma_cross")
    bars = spx.iloc[:600]
    cut = 300
    resumed = StrategyRunner(strategy, "SPX")
    resumed.prime(bars.iloc[cut - strategy.warmup + 1:cut])
    entries, exits = _per_bar(resumed, bars.iloc[cut:])
    full = strategy.generate(bars)
    np.testing.assert_array_equal(entries, full.entries.to_numpy()[cut:])
    np.testing.assert_array_equal(exits, full.exits.to_numpy()[cut:])


def test_the_window_is_read_only_and_maps_columns(registry) -> None:
    seen: dict[str, object] = {}

    class Spy(Strategy):
        name = "spy"
        numpy_columns = True

        @property
        def warmup(self) -> int:
            return 3

        def signals(self, bars):  # type: ignore[no-untyped-def]
            seen["window"] = bars
            seen["close"] = bars["close"].copy()
            with pytest.raises(ValueError):
                bars["close"][0] = 0.0
            return np.zeros(len(bars), bool), np.zeros(len(bars), bool)

    runner = StrategyRunner(Spy(), "X")
    for i, t in enumerate(pd.date_range("2024-01-01", periods=5, tz="UTC")):
        runner.update(t.to_pydatetime(), 1.0 + i, 2.0 + i, 0.5 + i, 1.5 + i, 10.0)
    window = seen["window"]
    assert isinstance(window, ColumnWindow) and len(window) == 3 and "volume" in window
    np.testing.assert_array_equal(seen["close"], [3.5, 4.5, 5.5])


def test_batch_strategies_and_unknown_modes_are_refused(registry) -> None:
    batch = type(registry.create("sma_cross")).batch({"fast": [5, 10], "slow": [20, 30]})
    with pytest.raises(ValueError, match="one parameter set"):
        StrategyRunner(batch, "X")
    with pytest.raises(ValueError, match="window or precomputed"):
        StrategyRunner(registry.create("sma_cross"), "X", mode="fast")
