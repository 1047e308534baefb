"""One vectorized backtest of a strategy on vectorbt, under the execution convention."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradelab.errors import TradelabError
from tradelab.research import metrics
from tradelab.research.conventions import (
    Execution,
    from_signals_kwargs,
)
from tradelab.research.conventions import (
    periods_per_year as infer_periods_per_year,
)
from tradelab.strategy.base import Strategy

if TYPE_CHECKING:  # pragma: no cover
    from tradelab.research.result import BacktestResult
    from tradelab.strategy.registry import StrategyRegistry

_EXECUTION_FIELDS = frozenset(f.name for f in fields(Execution))
_BAR_COLUMNS = ("open", "high", "low", "close", "volume")


def resolve_execution(execution: Execution | None = None, **overrides: Any) -> Execution:
    """``execution`` (default ``Execution()``) with the non-``None`` overrides replaced."""
    unknown = sorted(set(overrides) - _EXECUTION_FIELDS)
    if unknown:
        raise TypeError(f"unknown execution setting(s): {', '.join(unknown)}")
    base = execution if execution is not None else Execution()
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(base, **given) if given else base


def strategy_class(strategy: Strategy | type[Strategy] | str,
                   registry: StrategyRegistry | None = None) -> type[Strategy]:
    """The class behind an instance, a class or a registry name."""
    if isinstance(strategy, Strategy):
        return type(strategy)
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy
    if isinstance(strategy, str):
        if registry is None:
            from tradelab.app import build_registry
            from tradelab.config import load_config

            registry = build_registry(load_config())
        return registry.get(strategy)
    raise TypeError(f"strategy must be a Strategy, a Strategy subclass or a name, not {strategy!r}")


def resolve_strategy(strategy: Strategy | type[Strategy] | str,
                     params: dict[str, Any] | None = None,
                     registry: StrategyRegistry | None = None) -> Strategy:
    """A single-parameter-set instance; ``params`` override an instance's own values."""
    if isinstance(strategy, Strategy):
        if strategy._batch is not None:
            raise TradelabError("backtest() takes one parameter set; use sweep() for a batch")
        return type(strategy)(**{**strategy.params, **(params or {})}) if params else strategy
    return strategy_class(strategy, registry)(**(params or {}))


def check_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """Refuse bars that break the contract in ways that would corrupt a backtest."""
    missing = [c for c in ("open", "close") if c not in bars.columns]
    if missing:
        raise TradelabError(f"bars lack column(s) {', '.join(missing)}")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise TradelabError("bars need a DatetimeIndex")
    if len(bars) < 2:
        raise TradelabError(f"need at least 2 bars, got {len(bars)}")
    if not bars.index.is_monotonic_increasing or bars.index.has_duplicates:
        raise TradelabError("bars must be strictly increasing in time")
    prices = bars[["open", "close"]].to_numpy(dtype=float)
    if not (np.isfinite(prices).all() and (prices > 0).all()):
        raise TradelabError("bars hold NaN or non-positive open/close prices; validate them first")
    return bars


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


def backtest(strategy: Strategy | type[Strategy] | str, bars: pd.DataFrame,
             params: dict[str, Any] | None = None, *, execution: Execution | None = None,
             cash: float | None = None, fees: float | None = None,
             fixed_fees: float | None = None, slippage: float | None = None,
             size: float | None = None, size_type: str | None = None,
             fill: str | None = None, fractional: bool | None = None,
             periods_per_year: float | None = None,
             registry: StrategyRegistry | None = None) -> BacktestResult:
    """Backtest one parameter set of a strategy on bars with vectorbt.

    Parameters
    ----------
    strategy
        A :class:`~tradelab.strategy.base.Strategy` instance, a subclass, or a
        registry name (looked up in ``registry``, else in the registry built from
        the project configuration).
    bars
        Contract bars (``open, high, low, close, volume``, increasing UTC index).
    params
        Parameter values; they override an instance's own values.
    execution
        The convention (default ``Execution()``); the keyword arguments ``cash``
        … ``fractional`` replace single fields of it.
    periods_per_year
        Bars per year for annualized metrics; default inferred from the bar
        spacing (252 for daily bars, see :mod:`tradelab.research.conventions`).
    registry
        Where strategy names are looked up.

    Returns
    -------
    BacktestResult
        Stats, trades, orders, equity and plots.

    Raises
    ------
    ParameterError
        Unknown or invalid parameters.
    UnknownStrategyError
        A name the registry does not know.
    ValueError
        An invalid execution setting.
    """
    from tradelab.research.result import BacktestResult

    strat = resolve_strategy(strategy, params, registry)
    ex = resolve_execution(execution, cash=cash, fees=fees, fixed_fees=fixed_fees,
                           slippage=slippage, size=size, size_type=size_type, fill=fill,
                           fractional=fractional)
    bars = check_bars(bars)
    ppy = infer_periods_per_year(bars.index, periods_per_year)
    signals = strat.generate(bars)
    pf = run_portfolio(ex, bars, signals.entries, signals.exits)
    return BacktestResult.from_portfolio(pf, strategy=strat, bars=bars, execution=ex,
                                         periods_per_year=ppy, signals=signals)
