"""One vectorized backtest of a strategy on vectorbt, under the execution convention."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradelab.errors import TradelabError
from tradelab.research.conventions import Execution, TradeSpec
from tradelab.research.conventions import periods_per_year as infer_periods_per_year
from tradelab.research.result import BacktestResult

# The simulation moved to :mod:`tradelab.research.simulate` (shared with results and
# sweeps without import cycles); these names stay importable from here.
from tradelab.research.simulate import portfolio_metrics as portfolio_metrics
from tradelab.research.simulate import run_portfolio as run_portfolio
from tradelab.strategy.base import Strategy

if TYPE_CHECKING:  # pragma: no cover
    from tradelab.strategy.registry import StrategyRegistry

_EXECUTION_FIELDS = frozenset(f.name for f in fields(Execution))
_BAR_COLUMNS = ("open", "high", "low", "close", "volume")


#: Keywords of backtest() and sweep() besides the execution fields (named in errors).
TRADE_KEYWORDS = ("direction", "sl", "tp", "trail", "time_stop")


def resolve_execution(execution: Execution | None = None, _caller: str = "backtest",
                      **overrides: Any) -> Execution:
    """``execution`` (default ``Execution()``) with the non-``None`` overrides replaced.

    An unknown keyword is a TypeError naming it and the accepted names (``sl_stop=``
    is vectorbt's spelling; tradelab's is ``sl=``).
    """
    unknown = sorted(set(overrides) - _EXECUTION_FIELDS)
    if unknown:
        accepted = [*sorted(_EXECUTION_FIELDS), "periods_per_year", "registry",
                    *TRADE_KEYWORDS]
        raise TypeError(f"{_caller}(): unknown keyword argument(s) {', '.join(unknown)}; "
                        f"accepted: {', '.join(accepted)}")
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
            from tradelab.config import load_config
            from tradelab.strategy.registry import StrategyRegistry

            registry = StrategyRegistry.from_settings(load_config())
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


def backtest(strategy: Strategy | type[Strategy] | str, bars: pd.DataFrame,
             params: dict[str, Any] | None = None, *, execution: Execution | None = None,
             cash: float | None = None, fees: float | None = None,
             fixed_fees: float | None = None, slippage: float | None = None,
             size: float | None = None, size_type: str | None = None,
             fill: str | None = None, fractional: bool | None = None,
             borrow_fee: float | None = None, periods_per_year: float | None = None,
             registry: StrategyRegistry | None = None, direction: str | None = None,
             sl: float | None = None, tp: float | None = None, trail: float | None = None,
             time_stop: int | None = None, **unknown: Any) -> BacktestResult:
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
        … ``borrow_fee`` replace single fields of it. ``borrow_fee`` (an annual rate)
        charges shorts their accrued borrow when they are bought back (see
        :mod:`tradelab.research.borrow`); the stats then gain ``borrow_fees`` (charged)
        and ``borrow_accrued`` (accrued by a short still open at the end, not charged).
    periods_per_year
        Bars per year for annualized metrics; default inferred from the bar
        spacing (252 for daily bars, see :mod:`tradelab.research.conventions`).
    registry
        Where strategy names are looked up.
    direction
        ``"long"``, ``"short"`` or ``"both"`` (default: the strategy's own
        :attr:`~tradelab.strategy.base.Strategy.direction`); see
        :mod:`tradelab.strategy.exits`.
    sl, tp, trail
        Stop-loss, take-profit and trailing stop as fractions of the entry's fill
        price (default: the strategy's own :attr:`~tradelab.strategy.base.Strategy.stops`;
        ``trail`` replaces ``sl``). Per-bar ``Signals.sl_stop``/``tp_stop`` of the
        strategy take precedence. Intrabar rules: :mod:`tradelab.strategy.exits`.
    time_stop
        Exit after the position was held this many bars after its entry bar: the
        exit is decided on that bar's close and fills like a signal exit (rule 7 of
        :mod:`tradelab.strategy.exits`; the engine's semantics, see ``tradelab parity``).

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
        An invalid execution setting, direction or stop.
    TypeError
        An unknown keyword argument (the message lists the accepted ones).
    """
    ex = resolve_execution(execution, cash=cash, fees=fees, fixed_fees=fixed_fees,
                           slippage=slippage, size=size, size_type=size_type, fill=fill,
                           fractional=fractional, borrow_fee=borrow_fee, **unknown)
    strat = resolve_strategy(strategy, params, registry)
    trade = TradeSpec.resolve(strat, direction, sl, tp, trail, time_stop)
    bars = check_bars(bars)
    ppy = infer_periods_per_year(bars.index, periods_per_year)
    signals = strat.generate(bars)
    if not ex.borrow_fee or trade.direction == "long":
        pf = run_portfolio(ex, bars, signals.entries, signals.exits, trade, signals)
        return BacktestResult.from_portfolio(pf, strategy=strat, bars=bars, execution=ex,
                                             periods_per_year=ppy, signals=signals, trade=trade)
    from tradelab.research.simulate import run_with_borrow

    pf, borrow = run_with_borrow(ex, bars, signals, trade)
    result = BacktestResult.from_portfolio(pf, strategy=strat, bars=bars, execution=ex,
                                           periods_per_year=ppy, signals=signals, trade=trade)
    result.stats.update(borrow_fees=float(borrow.paid[0]),
                        borrow_accrued=float(borrow.open_accrued[0]))
    return result
