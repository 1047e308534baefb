"""The sweep's direct simulation (vectorbt's kernel on the bars that can trade only, no
Portfolio) against ``vbt.Portfolio.from_signals``: the same order records field for
field, the same metrics and overfitting sums bit for bit, for every trade shape it
takes (sides, short flags, stops); runs it does not take (time stops) keep vectorbt's
Portfolio."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradelab.research._overfit_kernels import block_moments
from tradelab.research._signal_kernels import direct_inputs, simulate_direct
from tradelab.research.conventions import Execution, TradeSpec, from_signals_kwargs
from tradelab.research.metrics import METRICS
from tradelab.research.simulate import (
    chunk_all_signals,
    chunk_metrics,
    portfolio_metrics,
    run_portfolio,
    split_stops,
)
from tradelab.research.sweep import sweep
from tradelab.strategy.base import Signals
from tradelab.strategy.exits import Direction, Stops


def _flags(bars: pd.DataFrame, k: int, seed: int, density: float = 0.03) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.random((len(bars), k)) < rng.uniform(0.002, density, size=k),
                        index=bars.index)


def _signals(bars: pd.DataFrame, k: int, seed: int, shorts: bool) -> Signals:
    flags = [_flags(bars, k, seed + j) for j in range(4 if shorts else 2)]
    return Signals(*flags) if shorts else Signals(flags[0], flags[1])


def _assert_same(execution: Execution, bars: pd.DataFrame, sig: Signals,
                 trade: TradeSpec | None, column_stops: list[Stops] | None = None) -> int:
    """Direct records, metrics and block sums equal vectorbt's; returns the order count."""
    kwargs = from_signals_kwargs(execution, bars, sig.entries, sig.exits, trade, sig,
                                 column_stops)
    inputs = direct_inputs(kwargs)
    assert inputs is not None
    pf = run_portfolio(execution, bars, sig.entries, sig.exits, trade, sig, column_stops)
    records = simulate_direct(inputs)
    assert records.dtype == pf.order_records.dtype
    np.testing.assert_array_equal(records, pf.order_records)
    close = bars["close"].to_numpy(dtype=float)
    n = len(bars)
    edges = np.array([0, n // 6, n // 2, n])  # blocks of the overfitting estimate
    got = chunk_metrics(execution, bars, sig, 252.0, trade, column_stops, edges=edges)
    want = portfolio_metrics(pf, execution.cash, 252.0, close)
    for name, values in want.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)
    np.testing.assert_array_equal(got["blocks"], block_moments(pf, close, execution.cash, edges))
    return len(records)


@pytest.mark.parametrize("execution", [
    Execution(),
    Execution(fees=0.001, fixed_fees=2.5, slippage=0.0005, fill="close"),
    Execution(cash=5_000.0, size=0.5, fractional=True),
    Execution(size=20_000.0, size_type="value", fees=0.0),
    Execution(size=7.0, size_type="amount", fixed_fees=1.0),
    Execution(cash=5_000.0, size=2.0, size_type="amount"),  # unaffordable above 2,500
], ids=["default", "close-fees", "fractional-half", "value", "amount", "rejected"])
@pytest.mark.parametrize("direction", ["long", "short", "both"])
def test_direct_simulation_equals_vectorbt(bars: pd.DataFrame, execution: Execution,
                                           direction: Direction) -> None:
    sig = _signals(bars, 24, seed=len(repr(execution)) + len(direction), shorts=False)
    assert _assert_same(execution, bars, sig, TradeSpec(direction)) > 24


@pytest.mark.parametrize("execution", [
    Execution(),
    Execution(size=10.0, size_type="amount", fees=0.001, fill="close"),
    Execution(size=15_000.0, size_type="value", slippage=0.001),
], ids=["percent", "amount-close", "value"])
@pytest.mark.parametrize("direction", ["long", "short", "both"])
def test_direct_simulation_with_short_flags_equals_vectorbt(bars: pd.DataFrame,
                                                           execution: Execution,
                                                           direction: Direction) -> None:
    """Explicit short entries/exits (vectorbt's LS mode for both sides)."""
    sig = _signals(bars, 16, seed=7 + len(direction), shorts=True)
    assert _assert_same(execution, bars, sig, TradeSpec(direction)) > 16


STOPS = [Stops(sl=0.03), Stops(tp=0.05), Stops(trail=0.04), Stops(sl=0.02, tp=0.03),
         Stops(trail=0.02, tp=0.06)]


@pytest.mark.parametrize("stops", STOPS, ids=["sl", "tp", "trail", "sl-tp", "trail-tp"])
@pytest.mark.parametrize("direction", ["long", "short", "both"])
def test_direct_simulation_with_stops_equals_vectorbt(bars: pd.DataFrame, stops: Stops,
                                                      direction: Direction) -> None:
    """Stop-loss, take-profit and trailing stops: gaps, intrabar hits, reversals."""
    for execution in (Execution(slippage=0.001), Execution(size=5.0, size_type="amount",
                                                           fill="close")):
        sig = _signals(bars, 12, seed=11 + len(direction), shorts=False)
        assert _assert_same(execution, bars, sig, TradeSpec(direction, stops)) > 12


def test_direct_simulation_with_column_and_per_bar_stops_equals_vectorbt(
        bars: pd.DataFrame) -> None:
    """A sweep's stops per column, and a strategy's per-bar stop fractions (with explicit
    short flags), which take precedence over the column stops."""
    sig = _signals(bars, 5, seed=17, shorts=True)
    _assert_same(Execution(), bars, sig, TradeSpec("both"), [*STOPS])
    rng = np.random.default_rng(3)
    per_bar = pd.DataFrame(rng.uniform(0.01, 0.08, size=sig.entries.shape), index=bars.index)
    with_stops = sig._replace(sl_stop=per_bar, tp_stop=per_bar * 2)
    _assert_same(Execution(), bars, with_stops, TradeSpec("both"), [*STOPS])
    _assert_same(Execution(fill="close"), bars, with_stops, TradeSpec("short", Stops(sl=0.05)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(1, 40), k=st.integers(1, 4),
       direction=st.sampled_from(["long", "short", "both"]), shorts=st.booleans(),
       size_type=st.sampled_from(["percent", "amount", "value"]),
       fill=st.sampled_from(["next_open", "close"]), fractional=st.booleans(),
       cash=st.sampled_from([50.0, 3_000.0, 100_000.0]),
       stops=st.sampled_from([Stops(), *STOPS, Stops(sl=0.001), Stops(tp=0.001)]))
def test_direct_simulation_equals_vectorbt_on_any_flags(
        bars: pd.DataFrame, data: st.DataObject, n: int, k: int, direction: Direction,
        shorts: bool, size_type: str, fill: str, fractional: bool, cash: float,
        stops: Stops) -> None:
    """Dense random flags on short series: conflicts, reversals, rejections, a first bar,
    stops hit on the entry's next bar."""
    size = {"percent": 1.0, "amount": 3.0, "value": 4_000.0}[size_type]
    execution = Execution(cash=cash, size=size, size_type=size_type,  # type: ignore[arg-type]
                          fill=fill, fractional=fractional, fees=0.001)  # type: ignore[arg-type]
    start = data.draw(st.integers(0, len(bars) - n))
    window = bars.iloc[start:start + n]
    flags = [pd.DataFrame(np.array(data.draw(st.lists(st.booleans(), min_size=n * k,
                                                      max_size=n * k))).reshape(n, k),
                          index=window.index) for _ in range(4 if shorts else 2)]
    _assert_same(execution, window, Signals(*flags), TradeSpec(direction, stops))


def test_runs_with_a_time_stop_keep_vectorbts_portfolio(bars: pd.DataFrame) -> None:
    """The time stop is a callback of vectorbt's kernel: those runs keep the Portfolio."""
    execution = Execution()
    trade = TradeSpec("both", Stops(sl=0.05, time_bars=5))
    sig = _signals(bars, 2, seed=3, shorts=False)
    kwargs = from_signals_kwargs(execution, bars, sig.entries, sig.exits, trade, sig)
    assert direct_inputs(kwargs) is None
    pf = run_portfolio(execution, bars, sig.entries, sig.exits, trade, sig)
    got = chunk_metrics(execution, bars, sig, 252.0, trade)
    want = portfolio_metrics(pf, execution.cash, 252.0)
    for name, values in want.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)


def test_unknown_arguments_keep_vectorbts_portfolio(bars: pd.DataFrame) -> None:
    """A keyword the direct path does not know (a later convention) is not dropped."""
    sig = _signals(bars, 2, seed=5, shorts=False)
    kwargs = from_signals_kwargs(Execution(), bars, sig.entries, sig.exits)
    assert direct_inputs(kwargs) is not None
    assert direct_inputs({**kwargs, "use_stops": True, "sl_stop": 0.1}) is None  # defaults
    assert direct_inputs({**kwargs, "sl_stop_now": 0.1}) is None
    assert direct_inputs({**kwargs, "fees": np.full((len(bars), 2), 0.001)}) is None


@pytest.mark.parametrize("name, grid, direction", [
    ("sma_cross", {"fast": [5, 10, 20], "slow": [30, 60, 90]}, "long"),
    ("sma_cross", {"fast": [5, 10, 20], "slow": [30, 60, 90]}, "both"),
    ("rsi_reversion", {"window": [7, 14], "lower": [25.0, 35.0]}, "short"),
    ("sma_cross_ls", {"fast": [10, 20], "slow": [50, 80]}, None),  # per-bar ATR stops
    ("sma_cross", {"fast": [5, 10], "slow": [30, 60], "sl": [0.02, 0.05], "tp": [0.1]}, "both"),
])
def test_sweep_table_equals_one_vectorbt_portfolio_bit_for_bit(
        bars: pd.DataFrame, registry, name: str, grid: dict[str, list[float]],
        direction: Direction | None) -> None:
    """The whole sweep (chunks of 4 on two threads) against one ``from_signals`` of every
    combination: the same table, exactly."""
    cls = registry.get(name)
    result = sweep(cls, bars, grid, progress=False, chunk_size=4, workers=2,
                   direction=direction, overfit=False)
    trade = TradeSpec.resolve(cls, direction)
    # the table's rows, in order (the swept stops become each column's stops)
    params, column_stops = split_stops(result.table[list(grid)].to_dict("records"), trade)
    sig = chunk_all_signals(cls, params, bars)
    pf = run_portfolio(Execution(), bars, sig.entries, sig.exits, trade, sig, column_stops)
    want = portfolio_metrics(pf, Execution().cash, result.periods_per_year)
    for metric in METRICS:
        np.testing.assert_array_equal(result.table[metric].to_numpy(), want[metric],
                                      err_msg=metric)
