"""The time stop in research (rule 7 of tradelab.strategy.exits) on vectorbt's callbacks.

Bars held count the bars completed after the entry's bar; the exit is decided on the
close of the bar where that reaches ``time_stop`` and fills like a signal exit.
Hand-made bars script the strategy through their volume: 1 = entry, 2 = exit,
3 = short entry, 4 = short exit (the engine's unit tests use the same bars).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradelab.research._time_stop_kernels import time_stop_kernel
from tradelab.research.backtest import backtest
from tradelab.research.conventions import Execution, TradeSpec
from tradelab.research.sweep import sweep
from tradelab.strategy.exits import Stops
from tradelab.testing import ScriptedLongShort as ScriptedLS
from tradelab.testing import ScriptedStrategy as Scripted
from tradelab.testing import scripted_bars as _bars

EX = Execution(cash=10_000.0, fees=0.0)
FLAT = (100.0, 101.0, 99.0, 100.0, 0)


def _fills(result) -> list[tuple[str, str, float, float]]:
    return [(t.date().isoformat(), side, q, p) for t, side, q, p in
            result.orders[["time", "side", "quantity", "price"]].itertuples(index=False)]


def test_exits_on_the_close_decision_of_the_bar_it_is_due() -> None:
    # the engine's test_time_stop_exits_at_the_close_of_the_bar_it_is_due, in research
    rows = [(100, 101, 99, 100, 1), FLAT,      # bought at bar 1's open
            FLAT,                              # held 1 bar
            FLAT,                              # held 2 bars: exit decided at this close
            (103, 104, 102, 103, 0), (103, 104, 102, 103, 0)]
    result = backtest(Scripted(), _bars(rows), execution=EX, time_stop=2)
    assert _fills(result) == [("2024-01-02", "buy", 100.0, 100.0),
                              ("2024-01-05", "sell", 100.0, 103.0)]
    assert result.trade == TradeSpec("long", Stops(time_bars=2))
    assert list(result.trades["exit_reason"]) == ["time"]


def test_with_close_fills_the_exit_fills_at_that_close() -> None:
    rows = [(100, 101, 99, 100, 1),            # bought at this close
            FLAT, (100, 101, 99, 102, 0),      # held 2 bars at this close: sold at 102
            (100, 101, 99, 105, 0)]
    result = backtest(Scripted(), _bars(rows), execution=EX, fill="close", time_stop=2)
    assert _fills(result) == [("2024-01-01", "buy", 100.0, 100.0),
                              ("2024-01-03", "sell", 100.0, 102.0)]


def test_a_signal_exit_before_the_time_stop_and_a_new_entry_restart_the_count() -> None:
    rows = [(100, 101, 99, 100, 1), FLAT,      # bought at bar 1's open
            (100, 101, 99, 100, 2),            # exit signal after 1 bar
            FLAT,                              # sold at bar 3's open
            (100, 101, 99, 100, 1), FLAT,      # entry again: bought at bar 5's open
            FLAT, FLAT,                        # held 1, 2 bars: exit decided at bar 7
            (104, 105, 103, 104, 0), FLAT]
    result = backtest(Scripted(), _bars(rows), execution=EX, time_stop=2)
    assert [(d, s, p) for d, s, _, p in _fills(result)] == [
        ("2024-01-02", "buy", 100.0), ("2024-01-04", "sell", 100.0),
        ("2024-01-06", "buy", 100.0), ("2024-01-09", "sell", 104.0)]
    assert list(result.trades["exit_reason"]) == ["signal", "time"]


def test_a_stop_that_fills_first_wins_and_drops_the_time_exit() -> None:
    rows = [(100, 101, 99, 100, 1), FLAT,      # bought 100 at 100: stop at 95
            FLAT,                              # held 1 bar: the time exit decided here
            (99, 100, 94, 96, 0),              # the stop fills at 95 before the open order
            FLAT]
    result = backtest(Scripted(), _bars(rows), execution=EX, time_stop=1, sl=0.05)
    assert _fills(result) == [("2024-01-02", "buy", 100.0, 100.0),
                              ("2024-01-04", "sell", 100.0, 95.0)]
    assert list(result.trades["exit_reason"]) == ["sl"]


def test_a_short_is_bought_back_and_an_entry_on_the_due_bar_cancels_the_exit() -> None:
    rows = [(100, 101, 99, 100, 3), FLAT,      # short 100 at bar 1's open
            FLAT,                              # held 1 bar: the cover is decided here
            FLAT, (90, 91, 89, 90, 0), FLAT]
    result = backtest(ScriptedLS(), _bars(rows), execution=EX, direction="both", time_stop=1)
    assert _fills(result) == [("2024-01-02", "sell", 100.0, 100.0),
                              ("2024-01-04", "buy", 100.0, 100.0)]
    # a short entry flag on the due bar: entry + exit of one side cancel (no order),
    # the time stop asks again on the next close
    rows[2] = (100, 101, 99, 100, 3)
    again = backtest(ScriptedLS(), _bars(rows), execution=EX, direction="both", time_stop=1)
    assert _fills(again) == [("2024-01-02", "sell", 100.0, 100.0),
                             ("2024-01-05", "buy", 100.0, 90.0)]
    assert list(again.trades["exit_reason"]) == ["time"]


def test_both_directions_reverse_and_the_reversed_position_counts_afresh() -> None:
    rows = [(100, 101, 99, 100, 1), FLAT,      # long at bar 1's open
            (100, 101, 99, 100, 2),            # held 1 bar; exit flag = short entry
            FLAT,                              # reversed at this open: short from here
            FLAT, FLAT,                        # short held 1, 2 bars: cover decided
            (95, 96, 94, 95, 0)]
    ex = Execution(cash=10_000.0, fees=0.0, size=50, size_type="amount")
    result = backtest(Scripted(), _bars(rows), execution=ex, direction="both", time_stop=2)
    assert _fills(result) == [("2024-01-02", "buy", 50.0, 100.0),
                              ("2024-01-04", "sell", 100.0, 100.0),
                              ("2024-01-07", "buy", 50.0, 95.0)]
    assert list(result.trades["exit_reason"]) == ["signal", "time"]  # the reversal: a signal


@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("direction", ["long", "short", "both"])
def test_no_trade_outlasts_the_time_stop_on_real_bars(registry, bars: pd.DataFrame, fill: str,
                                                     direction: str) -> None:
    strat = registry.create("sma_cross")
    plain = backtest(strat, bars, fill=fill, direction=direction)
    timed = backtest(strat, bars, fill=fill, direction=direction, time_stop=8)
    lag = 1 if fill == "next_open" else 0
    held = timed.portfolio.trades.values
    closed = held[held["status"] == 1]
    assert (closed["exit_idx"] - closed["entry_idx"] <= 8 + lag).all()
    assert (closed["exit_idx"] - closed["entry_idx"] == 8 + lag).sum() >= 10
    assert (plain.portfolio.trades.values["exit_idx"]
            - plain.portfolio.trades.values["entry_idx"]).max() > 8 + lag
    assert timed.stats["final_equity"] != plain.stats["final_equity"]


@pytest.mark.parametrize("kwargs", [
    {}, {"direction": "both", "sl": 0.03}, {"direction": "short", "fill": "close", "trail": 0.04},
])
def test_a_time_stop_that_never_fires_changes_nothing(registry, bars: pd.DataFrame,
                                                     kwargs: dict) -> None:
    """The callback simulation is vectorbt's static one plus the time stop, bit for bit."""
    strat = registry.create("sma_cross")
    plain = backtest(strat, bars, **kwargs)
    timed = backtest(strat, bars, time_stop=len(bars) + 1, **kwargs)
    pd.testing.assert_frame_equal(plain.orders, timed.orders)
    np.testing.assert_array_equal(plain.equity.to_numpy(), timed.equity.to_numpy())


def test_sweep_applies_it_to_every_column_like_backtest(registry, bars: pd.DataFrame) -> None:
    res = sweep("sma_cross", bars, {"fast": [5, 10], "slow": [30, 50], "sl": [0.02, 0.05]},
                direction="both", time_stop=6, progress=False, registry=registry)
    assert len(res.table) == 8 and res.trade.stops.time_bars == 6
    for row in res.table.itertuples(index=False):
        one = backtest(registry.create("sma_cross", fast=row.fast, slow=row.slow), bars,
                       direction="both", sl=row.sl, time_stop=6)
        assert row.final_equity == one.stats["final_equity"]
        assert row.n_trades == one.stats["n_trades"]
    plain = sweep("sma_cross", bars, {"fast": [5, 10], "slow": [30, 50]}, direction="both",
                  progress=False, registry=registry)
    timed = sweep("sma_cross", bars, {"fast": [5, 10], "slow": [30, 50]}, direction="both",
                  time_stop=6, progress=False, registry=registry)
    assert (timed.table["n_trades"] > plain.table["n_trades"]).all()


def test_the_simulation_is_vectorbts_kernel_disk_cached_with_the_callbacks_bound() -> None:
    import vectorbt.portfolio.nb as vbt_nb

    from tradelab.research import _time_stop_kernels as ts

    time_stop_kernel()
    time_stop_kernel()
    assert vbt_nb.simulate_from_signal_func_nb is ts._routed
    kernel = ts._kernel
    assert type(kernel._cache).__name__ == "FunctionCache" and kernel.targetoptions["nogil"]
    assert kernel.__name__.startswith("simulate_time_stop_")
    # vectorbt's parameters but the three callbacks, which are globals of the copy
    names = kernel.py_func.__code__.co_varnames[:kernel.py_func.__code__.co_argcount]
    theirs = ts._vbt_simulate.py_func.__code__
    assert list(names) == [n for n in theirs.co_varnames[:theirs.co_argcount]
                           if n not in ts._CALLBACKS]
    assert kernel.py_func.__globals__["signal_func_nb"] is ts.time_stop_signal_nb
