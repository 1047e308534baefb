"""The research kernels: numpy-exact sums, metrics from order records equal to the
numpy reference on vectorbt's own equity, and the disk-cached simulation kernel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradelab.research import metrics
from tradelab.research._kernels import equity_metrics, pairwise_sum_nb, simulation_kernel
from tradelab.research.backtest import portfolio_metrics, run_portfolio
from tradelab.research.conventions import Execution


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 255, 256, 1000, 5031, 8193, 100_003])
def test_pairwise_sum_is_numpys_sum_bit_for_bit(n: int) -> None:
    values = np.random.default_rng(n).standard_normal(n) * 1e-2
    assert pairwise_sum_nb(values, 0, n) == values.sum()
    if n > 3:
        assert pairwise_sum_nb(values, 3, n - 3) == values[3:].sum()


def _random_signals(bars: pd.DataFrame, k: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    density = rng.uniform(0.002, 0.05, size=k)
    entries = rng.random((len(bars), k)) < density
    exits = rng.random((len(bars), k)) < density
    return (pd.DataFrame(entries, index=bars.index), pd.DataFrame(exits, index=bars.index))


@pytest.mark.parametrize("execution", [
    Execution(),
    Execution(fees=0.001, fixed_fees=2.5, slippage=0.0005, fill="close"),
    Execution(cash=5_000.0, size=0.5, fractional=True),
    Execution(size=20_000.0, size_type="value", fees=0.0),
    Execution(size=7.0, size_type="amount", fixed_fees=1.0),
], ids=["default", "close-fees", "fractional-half", "value", "amount"])
def test_metrics_from_order_records_equal_the_numpy_reference(bars: pd.DataFrame,
                                                              execution: Execution) -> None:
    entries, exits = _random_signals(bars, 40, seed=len(repr(execution)))
    pf = run_portfolio(execution, bars, entries, exits)
    cash, position = pf.cash().to_numpy(), pf.assets().to_numpy()
    close = bars["close"].to_numpy()
    value = cash + position * close[:, None]
    np.testing.assert_array_equal(value, pf.value().to_numpy())
    trades = pf.trades.values
    want = metrics.compute(np.asfortranarray(value), np.asfortranarray(position), execution.cash,
                           252.0, trades["col"].astype(np.int64), trades["pnl"],
                           trades["status"] == 0)
    got = portfolio_metrics(pf, execution.cash, 252.0)
    assert list(got) == list(metrics.METRICS)
    for name in metrics.METRICS:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    # one column at a time (how backtest() sees it) gives the same numbers
    for j in (0, 17, 39):
        one = run_portfolio(execution, bars, entries[j], exits[j])
        single = portfolio_metrics(one, execution.cash, 252.0)
        for name in metrics.METRICS:
            np.testing.assert_array_equal(single[name], got[name][j : j + 1], err_msg=name)


def test_equity_metrics_without_orders_is_flat_cash() -> None:
    no_orders = np.zeros(0, dtype=[("id", "i8"), ("col", "i8"), ("idx", "i8"), ("size", "f8"),
                                   ("price", "f8"), ("fees", "f8"), ("side", "i8")])
    out = equity_metrics(no_orders, (np.zeros(0, np.int64), np.zeros(3, np.int64)),
                         np.linspace(10.0, 20.0, 50), 1_000.0, 252.0)
    np.testing.assert_array_equal(out["final_equity"], [1_000.0] * 3)
    np.testing.assert_array_equal(out["total_return"], [0.0] * 3)
    np.testing.assert_array_equal(out["max_drawdown"], [0.0] * 3)
    assert np.isnan(out["sharpe"]).all() and np.isnan(out["sortino"]).all()


def test_simulation_kernel_is_vectorbts_own_code_cached_and_installed_once() -> None:
    import vectorbt.portfolio.nb as vbt_nb

    kernel = simulation_kernel()
    assert simulation_kernel() is kernel and vbt_nb.simulate_from_signals_nb is kernel
    assert kernel.targetoptions["nogil"] and type(kernel._cache).__name__ == "FunctionCache"
    assert kernel.py_func.__module__ == "vectorbt.portfolio.nb"
