"""The simulation every backtest and sweep shares: signals → vectorbt → metrics.

This module sits below :mod:`~tradelab.research.backtest`,
:mod:`~tradelab.research.result`, :mod:`~tradelab.research.sweep` and
:mod:`~tradelab.research.distributed` and imports none of them, so each of those can
use it without importing another (a result computes its metrics here, a Dask worker
runs a chunk here). vectorbt and the numba kernels are imported when a simulation
first runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tradelab.research import metrics
from tradelab.research.conventions import Execution, from_signals_kwargs
from tradelab.strategy.base import Strategy

__all__ = ["ENGINE", "chunk_signals", "portfolio_metrics", "run_chunk", "run_portfolio"]

#: vectorbt engine of every simulation. numba, pinned (installing ``vectorbt-rust``
#: would otherwise switch ``engine="auto"`` to Rust): results are identical, but
#: vectorbt-rust 1.2.0 simulates about half as fast, and the numba kernel is
#: disk-cached and runs sweep chunks on threads (see :mod:`tradelab.research._kernels`).
ENGINE = "numba"


def run_portfolio(execution: Execution, bars: pd.DataFrame,
                  entries: pd.Series | pd.DataFrame, exits: pd.Series | pd.DataFrame) -> Any:
    """``vbt.Portfolio.from_signals`` under the convention (one or many columns)."""
    import vectorbt as vbt

    from tradelab.research._kernels import simulation_kernel

    if ENGINE == "numba":
        simulation_kernel()  # the disk-cached copy of vectorbt's kernel
    return vbt.Portfolio.from_signals(**from_signals_kwargs(execution, bars, entries, exits),
                                      engine=ENGINE)


def portfolio_metrics(pf: Any, init_cash: float, ppy: float,
                      close: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every metric of :mod:`tradelab.research.metrics` for each column of ``pf``.

    Equity is cash + units * close, which is exactly vbt's ``value()`` for bars
    without NaN closes (``check_bars`` guarantees that); it is replayed from the
    order records by :func:`tradelab.research._kernels.equity_metrics` rather than
    built as ``(bars, columns)`` arrays. ``close``: the bars' close (default: the
    portfolio's first column of close).
    """
    from tradelab.research._kernels import equity_metrics

    if close is None:
        close = pf.close.to_numpy()
        close = close[:, 0] if close.ndim == 2 else close
    out = equity_metrics(pf.order_records, pf.orders.col_mapper.col_map, close, init_cash, ppy)
    trades = pf.trades.values
    n_trades, win_rate = metrics.trade_stats(pf.wrapper.shape_2d[1],
                                             trades["col"].astype(np.int64), trades["pnl"],
                                             trades["status"] == 0)
    return {name: n_trades if name == "n_trades" else win_rate if name == "win_rate"
            else out[name] for name in metrics.METRICS}


def chunk_signals(cls: type[Strategy], combos: Sequence[dict[str, Any]],
                  bars: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """2-D entries and exits, one column per combination (plain integer columns)."""
    if cls.vectorized_params:
        names = list(combos[0])
        sig = cls.batch({n: [c[n] for c in combos] for n in names}).generate(bars)
        entries, exits = sig.entries.to_numpy(), sig.exits.to_numpy()
    else:
        singles = [cls(**c).generate(bars) for c in combos]
        entries = np.column_stack([s.entries.to_numpy() for s in singles])
        exits = np.column_stack([s.exits.to_numpy() for s in singles])
    columns = pd.RangeIndex(len(combos))
    return (pd.DataFrame(entries, index=bars.index, columns=columns),
            pd.DataFrame(exits, index=bars.index, columns=columns))


def run_chunk(cls: type[Strategy], combos: Sequence[dict[str, Any]], bars: pd.DataFrame,
              execution: Execution, ppy: float,
              close: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Metrics of one chunk of combinations: signals, one vectorbt call, metrics.

    The one per-chunk function of every sweep (sequential, threaded and on Dask
    workers), so that they all give the same values.
    """
    if close is None:
        close = bars["close"].to_numpy(dtype=float)
    entries, exits = chunk_signals(cls, combos, bars)
    pf = run_portfolio(execution, bars, entries, exits)
    return portfolio_metrics(pf, execution.cash, ppy, close)
