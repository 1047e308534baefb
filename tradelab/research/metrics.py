"""Performance metrics: one backtest and a 1,000-column sweep share the same
definitions and the same code.

:func:`compute` is the reference implementation (numpy, from equity and
position arrays). Backtests and sweeps compute the same numbers in one pass over
vectorbt's order records with :func:`tradelab.research._kernels.equity_metrics_nb`
(no ``(bars, columns)`` arrays), plus :func:`trade_stats` on the trade records;
the tests check the two against each other.

Definitions (``V_t`` equity at bar *t*'s close, ``C`` the initial cash,
``n`` the number of bars, ``P`` periods per year):

total_return
    ``V_{n-1} / C - 1``.
cagr
    ``(V_{n-1} / C) ** (P / n) - 1``: compounded per year of *bars* (n / P
    years), consistent with the annualization of Sharpe and Sortino; -1 when
    the equity ends at or below zero.
sharpe
    ``mean(r) / std(r, ddof=1) * sqrt(P)`` over the per-bar returns
    ``r_0 = V_0 / C - 1``, ``r_t = V_t / V_{t-1} - 1``; risk-free rate 0.
    NaN when the returns do not vary.
sortino
    ``mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(P)`` (downside deviation
    against 0 over all bars); NaN when no bar loses.
max_drawdown
    ``min_t(V_t / max(C, V_0..V_t) - 1)``: the deepest peak-to-trough loss as a
    fraction, **zero or negative** (so that "higher is better" holds for every
    metric when ranking a sweep).
win_rate
    Closed trades with ``pnl > 0`` divided by closed trades; NaN without any.
n_trades
    Round trips entered, including one still open at the last bar.
exposure
    Fraction of bars that end with an open position (long or short).
final_equity
    ``V_{n-1}``: cash plus any open position marked at the last close (no exit
    fees deducted).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

METRICS: tuple[str, ...] = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown",
                            "win_rate", "n_trades", "exposure", "final_equity")


def returns(value: np.ndarray, cash: float) -> np.ndarray:
    """Per-bar simple returns of an equity array ``(n,)`` or ``(n, k)``; the first bar
    is measured against the initial cash."""
    prev = np.empty_like(value)
    prev[0] = cash
    prev[1:] = value[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return value / prev - 1.0


def drawdown(value: np.ndarray, cash: float) -> np.ndarray:
    """``V_t / running peak - 1`` (<= 0); the initial cash is the first peak."""
    peak = np.maximum.accumulate(np.maximum(value, cash), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return value / peak - 1.0


def compute(value: np.ndarray, position: np.ndarray, cash: float, ppy: float,
            trade_col: np.ndarray, trade_pnl: np.ndarray, trade_open: np.ndarray
            ) -> dict[str, np.ndarray]:
    """Every metric for each column.

    Parameters
    ----------
    value, position
        Equity and units held at each bar's close, shape ``(n, k)``.
    cash
        Initial cash of every column.
    ppy
        Periods (bars) per year.
    trade_col, trade_pnl, trade_open
        One element per trade: its column, P&L and whether it is still open.

    Returns
    -------
    dict
        Metric name → array of ``k`` values (float; ``n_trades`` int).
    """
    n, k = value.shape
    r = returns(value, cash)
    final = value[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = r.mean(axis=0)
        std = r.std(axis=0, ddof=1) if n > 1 else np.full(k, np.nan)
        sharpe = np.where(std > 0, mean / std * math.sqrt(ppy), np.nan)
        down = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2, axis=0))
        sortino = np.where(down > 0, mean / down * math.sqrt(ppy), np.nan)
        growth = final / cash
        cagr = np.where(growth > 0, np.power(np.maximum(growth, 1e-300), ppy / n) - 1.0, -1.0)
    n_trades, win_rate = trade_stats(k, trade_col, trade_pnl, trade_open)
    return {
        "total_return": final / cash - 1.0,
        "cagr": cagr,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": drawdown(value, cash).min(axis=0),
        "win_rate": win_rate,
        "n_trades": n_trades,
        "exposure": (position != 0).mean(axis=0),
        "final_equity": final.astype(float),
    }


def buy_and_hold(close: np.ndarray, cash: float, ppy: float) -> dict[str, float]:
    """The benchmark of every result: ``cash`` held in the instrument from the first
    bar's close to the last, frictionless (no fees, slippage or whole-unit rounding),
    so it measures the market over the same bars, not an alternative strategy.

    Returns ``total_return, cagr, sharpe, sortino, max_drawdown, final_equity`` as
    :func:`compute` defines them.
    """
    close = np.asarray(close, dtype=float)
    value = (cash * close / close[0]).reshape(-1, 1)
    empty = np.empty(0)
    out = compute(value, np.ones_like(value), cash, ppy, empty.astype(np.int64), empty,
                  empty.astype(bool))
    keys = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "final_equity")
    return {k: float(out[k][0]) for k in keys}


def trade_stats(k: int, trade_col: np.ndarray, trade_pnl: np.ndarray,
                trade_open: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n_trades`` (int) and ``win_rate`` for each of ``k`` columns from per-trade
    column, P&L and open flag."""
    n_trades = np.bincount(trade_col, minlength=k).astype(np.int64)
    closed = ~trade_open
    n_closed = np.bincount(trade_col[closed], minlength=k)
    wins = np.bincount(trade_col[closed & (trade_pnl > 0)], minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        win_rate = np.where(n_closed > 0, wins / np.maximum(n_closed, 1), np.nan)
    return n_trades, win_rate


def json_safe(value: Any) -> Any:
    """Plain Python values for JSON: numpy scalars unwrapped, NaN/inf → None,
    timestamps → ISO strings."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "isoformat"):
        try:
            return None if value != value else value.isoformat()  # NaT != NaT
        except (TypeError, ValueError):
            return value.isoformat()
    return str(value)
