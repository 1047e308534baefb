"""How the execution convention maps onto ``vectorbt.Portfolio.from_signals``.

:class:`~tradelab.execution.Execution` is defined in :mod:`tradelab.execution`
(the paper broker reads it too); it is re-exported here for the research API.
This module stays free of vectorbt imports so that ``tradelab.Execution`` is cheap.

The mapping (see :func:`from_signals_kwargs`):

========================  =====================================================
convention                vectorbt 1.2 argument
========================  =====================================================
``fill="next_open"``      entries/exits shifted one bar later, ``price=open``
``fill="close"``          unshifted signals, ``price=close``
fees / fixed / slippage   ``fees``, ``fixed_fees``, ``slippage`` (per order)
sizing                    ``size``, ``size_type`` (amount / value / percent);
                          ``val_price=inf`` so "value" divides by the raw fill
                          price, before slippage
whole units               ``size_granularity=1`` and ``min_size=1`` unless
                          ``fractional`` (so no zero-unit orders)
long-only                 ``direction="longonly"``, ``accumulate=False``
entry+exit on one bar     ``upon_long_conflict="ignore"`` (no order at all)
cash                      ``init_cash=cash``, no cash sharing
valuation                 equity is cash + position marked at each bar's close
========================  =====================================================

Annualization (:func:`periods_per_year`): daily bars (median spacing between 20
and 28 hours, so weekends and holidays do not matter) count 252 trading days a
year, weekly bars 52, monthly bars 12; any other spacing is treated as a
market that trades around the clock: ``365.25 days / spacing`` (e.g. 8,766 for
hourly bars). Equity intraday bars should pass ``periods_per_year`` explicitly
(e.g. ``252 * 6.5`` for hourly US equities).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tradelab.execution import Execution

__all__ = ["Execution", "bar_interval", "from_signals_kwargs", "periods_per_year",
           "shift_signals"]


def bar_interval(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The typical spacing of the bars: the median of consecutive differences."""
    if len(index) < 2:
        return pd.Timedelta(days=1)
    return pd.Timedelta((index[1:] - index[:-1]).median())


def periods_per_year(index: pd.DatetimeIndex, given: float | None = None) -> float:
    """Bars per year used to annualize returns; ``given`` wins when set (see module doc)."""
    if given is not None:
        if not (given > 0 and math.isfinite(given)):
            raise ValueError(f"periods_per_year = {given!r}: must be a positive number")
        return float(given)
    step = bar_interval(index)
    hours = step / pd.Timedelta(hours=1)
    if 20 <= hours <= 28:
        return 252.0
    if 6 * 24 <= hours <= 8 * 24:
        return 52.0
    if 27 * 24 <= hours <= 32 * 24:
        return 12.0
    return pd.Timedelta(days=365.25) / step


def shift_signals(flags: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    """Flags one bar later (False on the first bar): a signal on *t* acts on *t+1*."""
    values = flags.to_numpy()
    out = np.zeros_like(values, dtype=bool)
    out[1:] = values[:-1]
    if isinstance(flags, pd.DataFrame):
        return pd.DataFrame(out, index=flags.index, columns=flags.columns)
    return pd.Series(out, index=flags.index, name=flags.name)


def _reindexed(flags: pd.Series | pd.DataFrame,
               index: pd.DatetimeIndex) -> pd.Series | pd.DataFrame:
    if len(flags) != len(index):
        raise ValueError(f"signals have {len(flags)} rows for {len(index)} bars")
    out = flags.copy(deep=False)
    out.index = index
    return out


def from_signals_kwargs(execution: Execution, bars: pd.DataFrame,
                        entries: pd.Series | pd.DataFrame,
                        exits: pd.Series | pd.DataFrame) -> dict[str, Any]:
    """Keyword arguments for ``vbt.Portfolio.from_signals`` implementing ``execution``.

    Every setting that changes results is passed explicitly, so a change of
    vectorbt's global defaults cannot change a backtest.
    """
    # vectorbt turns a tz-aware index into an array of Timestamp objects at every
    # wrap (a third of a 1,000-column sweep); it gets naive UTC times instead and
    # results are mapped back to the bars' own index by position.
    index = bars.index.tz_convert(None) if bars.index.tz is not None else bars.index
    entries, exits = _reindexed(entries, index), _reindexed(exits, index)
    if execution.fill == "next_open":
        entries, exits = shift_signals(entries), shift_signals(exits)
        price = bars["open"]
    else:
        price = bars["close"]
    return dict(
        close=pd.Series(bars["close"].to_numpy(dtype=float), index=index, name="close"),
        entries=entries,
        exits=exits,
        price=pd.Series(price.to_numpy(dtype=float), index=index, name="price"),
        size=float(execution.size),
        size_type=execution.size_type,
        fees=float(execution.fees),
        fixed_fees=float(execution.fixed_fees),
        slippage=float(execution.slippage),
        # Whole units: vectorbt would otherwise record a zero-size "buy" when the cash
        # does not cover one unit; min_size=1 rejects it (the engine places no order).
        min_size=0.0 if execution.fractional else 1.0,
        max_size=np.inf,
        size_granularity=np.nan if execution.fractional else 1.0,
        reject_prob=0.0,
        lock_cash=False,
        allow_partial=True,
        raise_reject=False,
        accumulate=False,
        direction="longonly",
        upon_long_conflict="ignore",
        upon_short_conflict="ignore",
        upon_dir_conflict="ignore",
        upon_opposite_entry="ignore",
        val_price=np.inf,
        use_stops=False,
        init_cash=float(execution.cash),
        cash_sharing=False,
        freq=bar_interval(bars.index),
    )
