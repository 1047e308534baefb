"""Backtests of portfolio strategies: target weights → :func:`rebalance` → vectorbt.

The loop (sequential over rebalance bars; monthly over 30 years is ~400 steps):

1. The strategy's weights for every bar come from one call on the whole panel
   (:meth:`~tradelab.strategy.portfolio.PortfolioStrategy.target_weights`); only the
   rows of rebalance bars (:func:`~tradelab.strategy.portfolio.rebalance_bars`) are read.
2. A decision at bar *t* fills at bar *t+1*'s open under ``fill="next_open"`` (the
   default) or at bar *t*'s close under ``fill="close"``. On **close-only data** (the
   ``sample`` source's stocks) the open of a bar is its close, so ``next_open`` fills
   at the **next bar's close**. A decision on the last bar under ``next_open`` does
   not fill.
3. The orders are sized at the fill price with
   :func:`tradelab.orders.rebalance.rebalance` — the same function an engine calls —
   against the equity marked at that price: whole units unless
   ``Execution.fractional``, fees, fixed fees and slippage as the execution
   convention defines them; symbols without a bar at the fill are not traded (see
   :mod:`tradelab.data.universe`). Sizing at the fill price is bt's convention
   (and vectorbt's ``targetpercent``): the book lands on its targets, within a lot.
4. The orders are booked exactly (Decimal) and, independently, by vectorbt
   (``Portfolio.from_orders``, amounts, one shared cash, ``call_seq="auto"`` so
   sells go before buys); the results carry vectorbt's stats, and the tests check
   the two books agree.

Several orders the rebalance sends for one symbol on one bar (a flip from long to
short is a closing and an opening order) are booked as one order of their sum: a
bar holds one order per symbol in vectorbt. With ``fixed_fees`` that charges the
fixed fee once for a flip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradelab.data.universe import Panel, load_panel
from tradelab.errors import TradelabError
from tradelab.execution import Execution
from tradelab.money import ZERO, to_decimal
from tradelab.orders.rebalance import OrderIntent, apply_orders, net_orders, rebalance
from tradelab.research.borrow import PanelBorrow
from tradelab.research.conventions import periods_per_year as infer_periods_per_year
from tradelab.research.portfolio_result import PortfolioResult, build_result
from tradelab.strategy.portfolio import (
    PortfolioStrategy,
    Schedule,
    discover_portfolio_strategies,
    rebalance_bars,
    require_symbols,
)

__all__ = ["PortfolioResult", "backtest_portfolio", "portfolio_strategy", "simulate_rebalances"]


def portfolio_strategy(strategy: PortfolioStrategy | type[PortfolioStrategy] | str,
                       params: Mapping[str, Any] | None = None,
                       paths: Sequence[Path] | None = None) -> PortfolioStrategy:
    """An instance from an instance (``params`` override its values), a class or a name.

    Names are looked up in ``paths`` (default: the configured ``[strategies] paths``).
    """
    if isinstance(strategy, PortfolioStrategy):
        return type(strategy)(**{**strategy.params, **(params or {})}) if params else strategy
    if isinstance(strategy, type) and issubclass(strategy, PortfolioStrategy):
        return strategy(**(params or {}))
    if isinstance(strategy, str):
        if paths is None:
            from tradelab.config import load_config

            settings = load_config()
            paths = [p for p in (settings.path(q) for q in settings.strategies.paths) if p.exists()]
        found = discover_portfolio_strategies(paths)
        if strategy not in found:
            raise TradelabError(f"unknown portfolio strategy {strategy!r}; available: "
                                f"{', '.join(sorted(found)) or '(none)'}")
        return found[strategy](**(params or {}))
    raise TypeError(f"strategy must be a PortfolioStrategy, a subclass or a name, not {strategy!r}")


def _merge(orders: list[OrderIntent]) -> list[OrderIntent]:
    """One order per symbol, sells first (:func:`~tradelab.orders.rebalance.net_orders`)."""
    return net_orders(orders)


def simulate_rebalances(weights: pd.DataFrame, panel: Panel, decisions: np.ndarray,
                        execution: Execution, lots: Any = None, threshold: float = 0.0,
                        borrow: PanelBorrow | None = None
                        ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """The exact (Decimal) rebalance loop.

    ``borrow`` (required when ``execution.borrow_fee`` > 0): books the shorts' borrow
    fee (:class:`~tradelab.research.borrow.PanelBorrow`); an order that buys while short
    carries its share as an extra fee, in its ``fees`` and in the cash later orders are
    sized with, as the paper broker charges it.

    Returns
    -------
    (size, price, orders)
        ``size``: bars × symbols signed order quantities (NaN: no order); ``price``:
        their fill prices (after slippage); ``orders``: one dict per booked order.

    Raises
    ------
    TradelabError
        A borrow fee left the cash negative (the paper broker would reject the buy).
    """
    if execution.borrow_fee and borrow is None:
        raise ValueError(f"borrow_fee = {execution.borrow_fee!r}: pass borrow=PanelBorrow(...)")
    n, k = weights.shape
    symbols = list(panel.symbols)
    fill_open = execution.fill == "next_open"
    px = (panel.open if fill_open else panel.close).to_numpy()
    tradable = panel.tradable.to_numpy()
    index = panel.index
    w = weights.to_numpy()
    fee, fixed = to_decimal(execution.fees), to_decimal(execution.fixed_fees)
    slip = to_decimal(execution.slippage)
    band = to_decimal(float(threshold))
    step = lots if lots is not None else (ZERO if execution.fractional else Decimal(1))
    size = np.full((n, k), np.nan)
    price = np.full((n, k), np.nan)
    cash = to_decimal(execution.cash)
    pos: dict[str, Decimal] = {}
    records: list[dict[str, Any]] = []
    for t in np.flatnonzero(decisions):
        e = int(t) + 1 if fill_open else int(t)
        if e >= n:
            continue
        prices = {s: to_decimal(float(px[e, j])) for j, s in enumerate(symbols)
                  if np.isfinite(px[e, j])}
        equity = cash + sum((q * prices[s] for s, q in pos.items()), ZERO)
        targets = {s: to_decimal(float(w[t, j])) for j, s in enumerate(symbols) if w[t, j] != 0}
        can = {s for j, s in enumerate(symbols) if tradable[e, j]}
        orders = _merge(rebalance(targets, pos, prices, equity, lots=step, fee=fee,
                                  fixed_fee=fixed, slippage=slip, tradable=can,
                                  threshold=band))
        extra = ZERO
        charges = [0.0] * len(orders)
        if borrow is not None:  # each order's share, from the positions before this bar
            charges = [borrow.charge(symbols.index(o.symbol), e, float(o.quantity),
                                     float(-pos.get(o.symbol, ZERO)))
                       if o.side == "buy" else 0.0 for o in orders]
        pos, cash, _ = apply_orders(orders, pos, prices, cash, fee=fee, fixed_fee=fixed,
                                    slippage=slip)
        for i, o in enumerate(orders):
            j = symbols.index(o.symbol)
            p = prices[o.symbol] * (1 + slip if o.side == "buy" else 1 - slip)
            size[e, j] = float(o.signed())
            price[e, j] = float(p)
            charged = to_decimal(charges[i]) if charges[i] else ZERO
            extra += charged
            records.append({"time": index[e], "decided": index[t],
                            "symbol": o.symbol, "side": o.side, "quantity": o.quantity,
                            "price": p, "fees": o.quantity * p * fee + fixed + charged})
            if borrow is not None:
                borrow.mark(j, e, float(pos.get(o.symbol, ZERO)))
        if extra:
            cash -= extra
            if cash < 0:
                raise TradelabError(f"borrow fee: the rebalance filled on {index[e]} leaves cash "
                                    f"{cash} after {extra} of borrow fees (the paper broker "
                                    "would reject the buy; lower the gross exposure)")
    return size, price, records


def _vbt_portfolio(panel: Panel, size: np.ndarray, price: np.ndarray,
                   execution: Execution, borrow: np.ndarray | None = None) -> Any:
    """vectorbt's book of the orders; ``borrow``: ``(bars, symbols)`` borrow fees added to
    the fixed fee of the order on that bar (``from_orders`` takes fixed fees per element)."""
    import vectorbt as vbt

    # Before a symbol's first bar nothing is held, so any positive close values it at 0;
    # vectorbt cannot value a NaN close.
    close = panel.close.bfill()
    return vbt.Portfolio.from_orders(
        close=close, size=pd.DataFrame(size, index=close.index, columns=close.columns),
        size_type="amount", price=pd.DataFrame(np.where(np.isnan(price), close, price),
                                               index=close.index, columns=close.columns),
        fees=execution.fees,
        fixed_fees=(execution.fixed_fees if borrow is None or not borrow.any() else
                    pd.DataFrame(execution.fixed_fees + borrow, index=close.index,
                                 columns=close.columns)),
        slippage=0.0,
        init_cash=execution.cash, cash_sharing=True, group_by=True, call_seq="auto",
        direction="both", freq=pd.Timedelta(days=1))


def backtest_portfolio(strategy: PortfolioStrategy | type[PortfolioStrategy] | str,
                       params: Mapping[str, Any] | None = None, *,
                       universe: str | Sequence[str] | None = None, source: Any = "sample",
                       start: Any = None, end: Any = None, panel: Panel | None = None,
                       execution: Execution | None = None, rebalance: Schedule | None = None,
                       lots: Any = None, threshold: float = 0.0, market: Any = None,
                       periods_per_year: float | None = None,
                       **overrides: Any) -> PortfolioResult:
    """Backtest a :class:`~tradelab.strategy.portfolio.PortfolioStrategy` (module docstring).

    Parameters
    ----------
    strategy
        An instance, a subclass or a name (from ``strategies/*.py``).
    params
        Parameter values (override an instance's own).
    universe
        A universe name or symbols (default: the strategy's ``universe``).
    source, start, end, market
        Where the bars come from (:func:`tradelab.data.universe.load_universe`).
    panel
        An already aligned panel (then ``universe``/``source``/``start``/``end`` are
        not used).
    execution
        The convention (default ``Execution()``); keyword ``overrides`` (``cash``,
        ``fees``, ``fixed_fees``, ``slippage``, ``fill``, ``fractional``,
        ``borrow_fee``) replace fields. ``size``/``size_type`` do not apply: the
        weights size the book. A ``borrow_fee`` charges shorts as the paper broker does
        (:class:`~tradelab.research.borrow.PanelBorrow`); the stats then gain
        ``borrow_fees`` (charged) and ``borrow_accrued`` (open shorts, not charged).
    rebalance
        Schedule override (``"M"``, ``"W"``, every N bars).
    lots
        Lot step(s) for :func:`~tradelab.orders.rebalance.rebalance` (default: 1, or 0
        when ``fractional``).
    threshold
        Drift band: orders under ``threshold × equity`` are not sent (default 0).
    periods_per_year
        For annualized metrics (default: inferred from the bar spacing).

    Returns
    -------
    PortfolioResult
    """
    unknown = sorted(set(overrides) - {"cash", "fees", "fixed_fees", "slippage", "fill",
                                       "fractional", "borrow_fee"})
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(unknown)}; accepted: cash, fees, "
                        "fixed_fees, slippage, fill, fractional, borrow_fee")
    ex = execution if execution is not None else Execution()
    given = {k: v for k, v in overrides.items() if v is not None}
    ex = replace(ex, **given) if given else ex
    strat = portfolio_strategy(strategy, params)
    if panel is None:
        panel = load_panel(universe if universe is not None else strat.symbols(), source,
                           start, end, market=market)
    require_symbols(strat, panel.symbols)
    if len(panel) < 2:
        raise TradelabError(f"need at least 2 bars, got {len(panel)}")
    weights = strat.target_weights(panel)
    schedule = rebalance if rebalance is not None else strat.rebalance
    decisions = rebalance_bars(panel.index, schedule, weights)
    borrow = (PanelBorrow(ex, panel.index, panel.close.to_numpy(dtype=float),
                          panel.tradable.to_numpy(dtype=bool)) if ex.borrow_fee else None)
    size, price, orders = simulate_rebalances(weights, panel, decisions, ex, lots, threshold,
                                              borrow)
    pf = _vbt_portfolio(panel, size, price, ex, None if borrow is None else borrow.per_bar)
    ppy = infer_periods_per_year(panel.index, periods_per_year)
    result = build_result(strat, panel, ex, weights, decisions, size, orders, pf, ppy, schedule)
    if borrow is not None:  # as a single-symbol backtest reports them
        result.stats.update(borrow_fees=float(borrow.per_bar.sum()),
                            borrow_accrued=float(borrow.open_accrued().sum()))
    return result
