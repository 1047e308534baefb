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
``borrow_fee``            ``fixed_fees`` per bar: the cover's bar carries its
                          short's accrual, simulated to a fixed point
                          (:mod:`tradelab.research.borrow`; sweeps: per chunk)
sizing                    ``size``, ``size_type`` (amount / value / percent);
                          ``val_price=inf`` so "value" divides by the raw fill
                          price, before slippage
whole units               ``size_granularity=1`` and ``min_size=1`` unless
                          ``fractional`` (so no zero-unit orders)
long-only                 ``direction="longonly"``, ``accumulate=False``
entry+exit on one bar     ``upon_long_conflict="ignore"`` (no order at all)
cash                      ``init_cash=cash``, no cash sharing
valuation                 equity is cash + position marked at each bar's close
``direction="short"``     ``direction="shortonly"``: entries sell short, exits
                          buy back; a short is sized like a long (same ``size``
                          and ``size_type``; ``percent``: of the free cash)
``direction="both"``      ``direction="both"`` (entries go long, exits short);
                          with the strategy's ``short_entries``/``short_exits``
                          these are passed as they are (entries/exits: long side)
opposite entry            ``upon_opposite_entry="reverse"`` (one order flips the
                          position) with ``size_type`` amount or value; with
                          ``percent`` vectorbt cannot size a reversal, so
                          ``"close"``: the position is closed and the other side
                          opens at its next entry signal
``sl`` / ``trail``        ``sl_stop`` (``sl_trail=True`` for ``trail``)
``tp``                    ``tp_stop``
``Signals.sl_stop/tp_stop``  per-bar ``sl_stop``/``tp_stop``, shifted one bar with
                          ``fill="next_open"`` like the signals (the fraction of
                          the bar the entry was decided on)
stop levels and fills     ``stop_entry_price="fillprice"``,
                          ``stop_exit_price="stopmarket"`` (slippage applies),
                          ``upon_stop_exit="close"``, ``open/high/low`` given;
                          the intrabar rules of :mod:`tradelab.strategy.exits`
``time_stop``             ``signal_func_nb``/``adjust_sl_func_nb`` callbacks
                          (:mod:`tradelab.research._time_stop_kernels`): the
                          strategy's flags as vectorbt reads them, plus the held
                          side's exit on the bar's close decision once the
                          position was held ``time_stop`` bars after its entry
                          bar (rule 7); it then fills like a signal exit and a
                          stop that fills first wins; ``use_stops=True``
========================  =====================================================

Without a direction other than long, stops or short flags the arguments are exactly
those of the long-only table rows (``use_stops=False``), so long-only results do not
change.

Annualization (:func:`periods_per_year`): daily bars (median spacing between 20
and 28 hours, so weekends and holidays do not matter) count 252 trading days a
year, weekly bars 52, monthly bars 12; any other spacing is treated as a
market that trades around the clock: ``365.25 days / spacing`` (e.g. 8,766 for
hourly bars). Equity intraday bars should pass ``periods_per_year`` explicitly
(e.g. ``252 * 6.5`` for hourly US equities).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tradelab.execution import Execution
from tradelab.strategy.exits import Direction, Stops, check_direction

__all__ = ["Execution", "TradeSpec", "bar_interval", "from_signals_kwargs", "periods_per_year",
           "shift_signals"]

_VBT_DIRECTION = {"long": "longonly", "short": "shortonly", "both": "both"}


@dataclass(frozen=True)
class TradeSpec:
    """Which side a research run trades and the exits it applies (see the table above).

    Parameters
    ----------
    direction : {"long", "short", "both"}
    stops : Stops
        Fixed-fraction exits; a strategy's per-bar ``Signals.sl_stop``/``tp_stop``
        take precedence over ``stops.sl``/``stops.tp`` where given.
    """

    direction: Direction = "long"
    stops: Stops = field(default_factory=Stops)

    def __post_init__(self) -> None:
        check_direction(self.direction)
        if not isinstance(self.stops, Stops):
            raise TypeError(f"stops = {self.stops!r}: expected a Stops")

    @classmethod
    def resolve(cls, strategy: Any, direction: str | None = None, sl: float | None = None,
                tp: float | None = None, trail: float | None = None,
                time_stop: int | None = None) -> TradeSpec:
        """The strategy's own direction and stops with the given values replacing them
        (``None``: keep the strategy's); ValueError names a bad value."""
        side = check_direction(direction if direction is not None else strategy.direction)
        stops = strategy.stops.overridden(sl=sl, tp=tp, trail=trail, time_bars=time_stop)
        return cls(side, stops)

    @property
    def plain(self) -> bool:
        """True for long-only without stops: today's arguments, unchanged."""
        return self.direction == "long" and not self.stops.active


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
        return pd.DataFrame(out, index=flags.index, columns=flags.columns, copy=False)
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
                        exits: pd.Series | pd.DataFrame,
                        trade: TradeSpec | None = None,
                        signals: Any = None,
                        column_stops: Sequence[Stops] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``vbt.Portfolio.from_signals`` implementing ``execution``.

    Every setting that changes results is passed explicitly, so a change of
    vectorbt's global defaults cannot change a backtest. ``trade``: direction and
    stops (default long-only, none); ``signals``: the strategy's
    :class:`~tradelab.strategy.base.Signals` for its short flags and per-bar stops;
    ``column_stops``: the stops of each column instead of ``trade.stops`` (a sweep over
    ``sl``/``tp``/``trail``; per-bar stops of the strategy still take precedence).
    """
    kwargs = _long_only_kwargs(execution, bars, entries, exits)
    extras = {} if signals is None else {
        k: getattr(signals, k) for k in ("short_entries", "short_exits", "sl_stop", "tp_stop")
        if getattr(signals, k, None) is not None}
    if (trade is None or trade.plain) and not extras and not column_stops:
        return kwargs
    return _with_trade(kwargs, execution, bars, trade or TradeSpec(), extras, column_stops)


def _column_fractions(column_stops: Sequence[Stops]) -> tuple[Any, Any, Any]:
    """``(sl_stop, sl_trail, tp_stop)`` as ``(1, columns)`` arrays (NaN: no stop)."""
    def frac(value: float | None) -> float:
        return math.nan if value is None else float(value)

    sl = np.array([[frac(s.trail if s.trail is not None else s.sl) for s in column_stops]])
    trail = np.array([[s.trail is not None for s in column_stops]])
    tp = np.array([[frac(s.tp) for s in column_stops]])
    return sl, trail, tp


def _with_trade(kwargs: dict[str, Any], execution: Execution, bars: pd.DataFrame,
                trade: TradeSpec, extras: dict[str, Any],
                column_stops: Sequence[Stops] | None = None) -> dict[str, Any]:
    """The long-only arguments changed for a direction, short flags and stops."""
    index = kwargs["close"].index
    next_open = execution.fill == "next_open"

    def aligned(values: pd.Series | pd.DataFrame, flags: bool) -> Any:
        values = _reindexed(values, index)
        if not next_open:
            return values
        if flags:
            return shift_signals(values)
        return values.shift(1)  # the fraction of the bar the entry was decided on

    explicit = "short_entries" in extras or "short_exits" in extras
    if explicit:
        no = kwargs["entries"] & False
        shorts = [aligned(extras[k], True) if k in extras else no
                  for k in ("short_entries", "short_exits")]
        if trade.direction == "long":
            pass  # the long side alone: today's arguments
        elif trade.direction == "short":
            kwargs.update(entries=shorts[0], exits=shorts[1], direction="shortonly")
        else:
            kwargs.pop("direction")  # vectorbt warns: LS mode has no direction
            kwargs.update(short_entries=shorts[0], short_exits=shorts[1])
    else:
        kwargs["direction"] = _VBT_DIRECTION[trade.direction]
    if trade.direction != "long":
        kwargs["upon_opposite_entry"] = ("close" if execution.size_type == "percent"
                                         else "reverse")
    stops = trade.stops
    sl_fraction = stops.trail if stops.trail is not None else stops.sl
    sl: Any = np.nan if sl_fraction is None else float(sl_fraction)
    trail: Any = stops.trail is not None
    tp: Any = np.nan if stops.tp is None else float(stops.tp)
    active = stops.active
    if column_stops:
        sl, trail, tp = _column_fractions(column_stops)
        active = any(s.active for s in column_stops)
    if "sl_stop" in extras:
        sl, trail = aligned(extras["sl_stop"], False), False
    if "tp_stop" in extras:
        tp = aligned(extras["tp_stop"], False)
    time_bars = _time_bars(stops, column_stops)
    if active or "sl_stop" in extras or "tp_stop" in extras or time_bars is not None:
        kwargs.update(
            open=pd.Series(bars["open"].to_numpy(dtype=float), index=index, name="open"),
            high=_column(bars, "high", index), low=_column(bars, "low", index),
            sl_stop=sl, sl_trail=trail,
            tp_stop=tp, stop_entry_price="fillprice", stop_exit_price="stopmarket",
            upon_stop_exit="close", upon_stop_update="override", use_stops=True)
    if time_bars is not None:
        # vectorbt has no time stop: callbacks add it (imports vectorbt, on this path only)
        from tradelab.research._time_stop_kernels import with_time_stop

        with_time_stop(kwargs, time_bars, lag=1 if next_open else 0)
    return kwargs


def _time_bars(stops: Stops, column_stops: Sequence[Stops] | None) -> np.ndarray | None:
    """Each column's time stop in bars (one value for all columns; 0: none), or
    ``None`` when no column has one."""
    given = [s.time_bars for s in column_stops] if column_stops else [stops.time_bars]
    if all(n is None for n in given):
        return None
    return np.array([n or 0 for n in given], dtype=np.int64)


def _column(bars: pd.DataFrame, name: str, index: pd.Index) -> pd.Series:
    """A price column as floats (NaN when the bars lack it: vectorbt then uses open/close)."""
    values = (bars[name].to_numpy(dtype=float) if name in bars.columns
              else np.full(len(bars), np.nan))
    return pd.Series(values, index=index, name=name)


def _long_only_kwargs(execution: Execution, bars: pd.DataFrame,
                      entries: pd.Series | pd.DataFrame,
                      exits: pd.Series | pd.DataFrame) -> dict[str, Any]:
    """The long-only arguments (the table's first rows)."""
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
