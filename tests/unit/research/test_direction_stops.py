"""Shorts and declared exits in research: the intrabar rule equals vectorbt's, the
replayed equity and metrics hold for negative positions, per-bar stops are read at the
decision bar, and the keywords fail clearly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vectorbt.portfolio.nb import get_stop_price_nb

from tradelab.errors import ParameterError
from tradelab.research import metrics
from tradelab.research.backtest import backtest
from tradelab.research.conventions import Execution, TradeSpec, from_signals_kwargs
from tradelab.research.sweep import sweep
from tradelab.strategy.base import Param, Signals, Strategy
from tradelab.strategy.exits import Stops, stop_price
from tradelab.strategy.indicators import crossed_above, crossed_below, sma

PRICE = st.floats(1.0, 1_000.0, allow_nan=False, allow_infinity=False)


@st.composite
def bars_and_stop(draw: st.DrawFn) -> tuple[int, float, float, float, float, float, bool]:
    low = draw(PRICE)
    high = draw(st.floats(low, low * 1.5))
    open_ = draw(st.floats(low, high))
    # the reference (entry or trailing price) may sit anywhere around the bar
    reference = draw(st.floats(low * 0.7, high * 1.3))
    stop = draw(st.floats(0.0, 0.5))
    side = draw(st.sampled_from([-1, 1]))
    return side, reference, stop, open_, low, high, draw(st.booleans())


@settings(max_examples=500, deadline=None)
@given(bars_and_stop())
def test_stop_price_is_vectorbt_get_stop_price(case: tuple) -> None:
    side, reference, stop, open_, low, high, below = case
    ours = stop_price(side, reference, stop, open_, low, high, below)
    theirs = get_stop_price_nb(float(side), reference, stop, open_, low, high, below)
    assert (math.isnan(ours) and math.isnan(theirs)) or ours == theirs


@pytest.mark.parametrize("kwargs", [
    {"direction": "short"},
    {"direction": "short", "sl": 0.04, "tp": 0.08},
    {"direction": "both", "size_type": "value", "size": 50_000.0},
    {"direction": "both", "trail": 0.05, "size_type": "amount", "size": 20.0, "fees": 0.001},
    {"direction": "both", "sl": 0.03},
])
def test_equity_replay_with_short_positions(registry, bars: pd.DataFrame,
                                            kwargs: dict) -> None:
    result = backtest(registry.create("sma_cross"), bars, **kwargs)
    pf = result.portfolio
    value = pf.value().to_numpy()
    assets = pf.assets().to_numpy()
    assert (assets < 0).any(), "the run must hold short positions"
    # the order-record replay (kernel) is vectorbt's own valuation, bit for bit
    np.testing.assert_array_equal(result.equity.to_numpy(), value)
    assert result.stats["final_equity"] == value[-1]
    trades = pf.trades.values
    want = metrics.compute(value[:, None], assets[:, None], result.execution.cash,
                           result.periods_per_year, np.zeros(len(trades), dtype=np.int64),
                           trades["pnl"], trades["status"] == 0)
    for name in metrics.METRICS:
        got, expected = result.stats[name], want[name][0]
        assert got == expected or (math.isnan(got) and math.isnan(expected)), name
    assert result.stats["exposure"] == pytest.approx((assets != 0).mean())
    sides = set(result.trades["side"])
    assert sides == ({"short"} if kwargs["direction"] == "short" else {"long", "short"})


def test_long_only_arguments_unchanged(bars: pd.DataFrame) -> None:
    entries = pd.Series(False, index=bars.index)
    plain = from_signals_kwargs(Execution(), bars, entries, entries)
    same = from_signals_kwargs(Execution(), bars, entries, entries, TradeSpec())
    assert set(plain) == set(same)
    assert all(plain[k] is same[k] or repr(plain[k]) == repr(same[k]) for k in plain)
    assert plain["direction"] == "longonly" and plain["use_stops"] is False


def test_opposite_entry_reverses_unless_percent(bars: pd.DataFrame) -> None:
    flags = pd.Series(False, index=bars.index)
    both = TradeSpec("both")
    assert from_signals_kwargs(Execution(), bars, flags, flags, both)[
        "upon_opposite_entry"] == "close"
    assert from_signals_kwargs(Execution(size_type="value", size=1e4), bars, flags, flags,
                               both)["upon_opposite_entry"] == "reverse"


class _PerBarStop(Strategy):
    """sma_cross whose stop-loss fraction is given per bar, only on entry-decision bars."""

    name = "per_bar_stop"
    frac = Param(0.03, low=0.001, high=0.5)

    @property
    def warmup(self) -> int:
        return 31

    def signals(self, bars: pd.DataFrame) -> Signals:
        fast, slow = sma(bars["close"], 10), sma(bars["close"], 30)
        entries = pd.Series(np.asarray(crossed_above(fast, slow)), index=bars.index)
        exits = pd.Series(np.asarray(crossed_below(fast, slow)), index=bars.index)
        # NaN on every other bar: only a fraction read at the decision bar can work
        sl = pd.Series(np.where(entries, self.frac, np.nan), index=bars.index)
        return Signals(entries, exits, sl_stop=sl)


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_per_bar_stop_read_at_the_decision_bar(registry, bars: pd.DataFrame,
                                               fill: str) -> None:
    per_bar = backtest(_PerBarStop(frac=0.03), bars, fill=fill)
    scalar = backtest(registry.create("sma_cross"), bars, sl=0.03, fill=fill)
    plain = backtest(registry.create("sma_cross"), bars, fill=fill)
    pd.testing.assert_frame_equal(per_bar.orders, scalar.orders)
    assert not per_bar.orders.equals(plain.orders)  # the stops did fire


def test_stops_fill_at_the_level_or_the_open(registry, bars: pd.DataFrame) -> None:
    """Every stop exit of a long fills at entry * (1 - sl) or at an open below it."""
    sl = 0.02
    result = backtest(registry.create("sma_cross"), bars, sl=sl, fees=0.0)
    plain = backtest(registry.create("sma_cross"), bars, fees=0.0)
    signal_exits = set(plain.trades["exit_time"].dropna())
    stopped = result.trades[result.trades["status"].eq("closed")
                            & ~result.trades["exit_time"].isin(signal_exits)]
    assert len(stopped) >= 3
    for row in stopped.itertuples():
        level = row.entry_price * (1 - sl)
        bar = bars.loc[row.exit_time]
        assert row.exit_price == pytest.approx(min(level, bar["open"]), rel=1e-12)
        assert row.exit_price <= level + 1e-9
    # the exit reason names exactly these trades (a stop on a signal bar would be "sl"
    # too: check that none of the signal exits hit the level)
    closed = result.trades[result.trades["status"].eq("closed")]
    by_signal = closed[closed["exit_reason"].eq("signal")]
    assert set(closed.loc[closed["exit_reason"].eq("sl"), "exit_time"]) >= set(stopped["exit_time"])
    for row in by_signal.itertuples():
        assert bars.loc[row.exit_time, "low"] > row.entry_price * (1 - sl)
    assert result.trades.loc[result.trades["status"].eq("open"), "exit_reason"].isna().all()


@pytest.mark.parametrize(("kwargs", "reasons"), [
    ({"direction": "short", "sl": 0.03, "tp": 0.05}, {"sl", "tp", "signal"}),
    ({"direction": "long", "trail": 0.03}, {"trail", "signal"}),
    ({}, {"signal"}),
])
def test_exit_reasons(registry, bars: pd.DataFrame, kwargs: dict, reasons: set) -> None:
    result = backtest(registry.create("sma_cross"), bars, **kwargs)
    closed = result.trades[result.trades["status"].eq("closed")]
    assert set(closed["exit_reason"]) == reasons
    sign = np.where(closed["side"].eq("long"), 1.0, -1.0)
    for reason, frac in (("sl", kwargs.get("sl")), ("tp", kwargs.get("tp"))):
        rows = closed[closed["exit_reason"].eq(reason)]
        if frac is None or rows.empty:
            continue
        s = sign[closed["exit_reason"].eq(reason).to_numpy()]
        level = rows["entry_price"] * (1 - s * frac if reason == "sl" else 1 + s * frac)
        opens = rows["exit_time"].map(bars["open"])
        # a stop fills at its level, or at the open it gapped through
        at_level = np.isclose(rows["exit_price"], level, rtol=1e-12)
        at_open = np.isclose(rows["exit_price"], opens, rtol=1e-12)
        assert (at_level | at_open).all(), reason


def test_unknown_keyword_names_the_accepted_ones(registry, bars: pd.DataFrame) -> None:
    with pytest.raises(TypeError, match=r"sl_stop.*accepted:.*\bsl\b.*\btrail\b"):
        backtest(registry.create("sma_cross"), bars, sl_stop=0.05)
    with pytest.raises(TypeError, match=r"sweep\(\): unknown keyword argument\(s\) tp_stop"):
        sweep("sma_cross", bars, {"fast": [5]}, tp_stop=0.1, progress=False,
              registry=registry)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"direction": "sideways"}, "direction 'sideways'"),
    ({"sl": 1.5}, r"sl = 1.5: must be a fraction in \(0, 1\)"),
    ({"sl": 0.02, "trail": 0.05}, "give one of them"),
    ({"time_stop": 0}, "time_bars = 0: must be a whole number >= 1"),
])
def test_bad_trade_keywords(registry, bars: pd.DataFrame, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        backtest(registry.create("sma_cross"), bars, **kwargs)


def test_strategy_defaults_and_overrides(bars: pd.DataFrame, registry) -> None:
    base = registry.get("sma_cross")
    short_cls = type("ShortCross", (base,), {"name": "short_cross", "direction": "short",
                                             "stops": Stops(sl=0.04)})
    own = backtest(short_cls(), bars)
    assert own.trade == TradeSpec("short", Stops(sl=0.04))
    assert set(own.trades["side"]) == {"short"}
    explicit = backtest(base(), bars, direction="short", sl=0.04)
    pd.testing.assert_frame_equal(own.orders, explicit.orders)
    trailed = backtest(short_cls(), bars, trail=0.04)  # the trail replaces the strategy's sl
    assert trailed.trade.stops == Stops(trail=0.04)
    assert own.to_dict()["direction"] == "short"
    assert own.to_dict()["stops"] == {"sl": 0.04, "tp": None, "trail": None, "time_bars": None}


def test_sweep_applies_direction_and_stops(registry, bars: pd.DataFrame) -> None:
    grid = {"fast": [5, 10], "slow": [30]}
    result = sweep("sma_cross", bars, grid, direction="both", sl=0.03, size_type="value",
                   size=50_000.0, progress=False, registry=registry, workers=1,
                   overfit=False)
    for row in result.table.itertuples():
        one = backtest(registry.create("sma_cross", fast=row.fast, slow=row.slow), bars,
                       direction="both", sl=0.03, size_type="value", size=50_000.0)
        assert row.final_equity == one.stats["final_equity"]
        assert row.n_trades == one.stats["n_trades"]
    plain = sweep("sma_cross", bars, grid, progress=False, registry=registry, workers=1,
                  overfit=False)
    assert not np.array_equal(plain.table["final_equity"], result.table["final_equity"])


def test_sweep_result_reruns_with_its_direction_and_stops(registry, bars: pd.DataFrame) -> None:
    result = sweep("sma_cross", bars, {"fast": [5, 10]}, direction="short", tp=0.05,
                   progress=False, registry=registry, workers=1, overfit=False)
    assert result.trade == TradeSpec("short", Stops(tp=0.05))
    again = result.backtest()
    assert again.trade == result.trade
    assert again.stats["final_equity"] == result.best()["final_equity"]
    out = result.to_dict()
    assert out["direction"] == "short" and out["stops"]["tp"] == 0.05


def test_sweep_grid_over_stops(registry, bars: pd.DataFrame) -> None:
    grid = {"fast": [5, 10], "sl": [0.02, 0.05]}
    result = sweep("sma_cross", bars, grid, direction="short", tp=0.08, progress=False,
                   registry=registry, workers=1, overfit=False, chunk_size=3)
    assert list(result.table[["fast", "sl"]].itertuples(index=False, name=None)) == [
        (5, 0.02), (5, 0.05), (10, 0.02), (10, 0.05)]
    for row in result.table.itertuples():
        one = backtest(registry.create("sma_cross", fast=row.fast), bars, direction="short",
                       sl=row.sl, tp=0.08)
        assert row.final_equity == one.stats["final_equity"], row
    assert result.table["final_equity"].nunique() == 4
    best = result.backtest()
    assert best.trade.stops == Stops(sl=float(result.best()["sl"]), tp=0.08)
    assert best.stats["final_equity"] == result.best()["final_equity"]


def test_sweep_grid_over_stops_refuses_sl_with_trail(registry, bars: pd.DataFrame) -> None:
    with pytest.raises(ParameterError, match=r"sl = 0\.02 and trail = 0\.03.*give one of them"):
        sweep("sma_cross", bars, {"sl": [0.02], "trail": [0.03]}, progress=False,
              registry=registry, workers=1, overfit=False)


def test_sweep_of_per_bar_stop_strategy_equals_backtests(registry, bars: pd.DataFrame) -> None:
    grid = {"fast": [10, 20], "atr_k": [2.0, 3.0]}
    result = sweep("sma_cross_ls", bars, grid, size_type="value", size=40_000.0,
                   progress=False, registry=registry, workers=1, overfit=False)
    for row in result.table.itertuples():
        one = backtest(registry.create("sma_cross_ls", fast=row.fast, atr_k=row.atr_k), bars,
                       size_type="value", size=40_000.0)
        assert row.final_equity == one.stats["final_equity"], row
        assert row.n_trades == one.stats["n_trades"]
    assert result.table["final_equity"].nunique() == 4


def test_walk_forward_trades_with_the_sweeps_direction(registry, bars: pd.DataFrame) -> None:
    grid = {"fast": [5, 10], "slow": [30, 50]}
    common = {"progress": False, "registry": registry, "workers": 1, "walk_forward": 3}
    short = sweep("sma_cross", bars, grid, direction="short", sl=0.03, **common)
    plain = sweep("sma_cross", bars, grid, **common)
    assert short.walk_forward is not None and plain.walk_forward is not None
    assert not short.walk_forward.equity.equals(plain.walk_forward.equity)
    # a fold's out-of-sample run is the chosen combination traded short with the stop
    fold = short.walk_forward.folds.iloc[-1]
    assert fold["oos_round_trips"] >= 1
