"""The sweep's simulation: vectorbt's signal kernel, run only on the bars that can trade.

vectorbt's ``simulate_from_signals_nb`` visits every (bar, column) cell, about 65 ns
each, though a bar whose four signal flags are all False and whose column holds no
active stop places no order and changes nothing but the column's valuation price
(``signals_to_size_nb`` gives size 0 for it, and with ``val_price=inf`` the valuation
price is the bar's order price). :func:`simulate_signals_nb` is that kernel without
cash sharing, callbacks or random rejections: it scans a column's flags and, at each
bar with a flag or an active stop, does exactly what vectorbt's kernel does there,
calling vectorbt's own functions in the same order (stop price, trailing update, stop
signal, signal conflicts, direction conflict, opposite entry, ``signals_to_size_nb``,
``order_nb``, ``process_order_nb``, the stop update after a fill) with the valuation
price vectorbt would have carried to that bar. The order records are therefore the
same, field for field and in the same order (column by column), as
``vbt.Portfolio.from_signals`` gives; the tests compare them on long, short,
both-sides and explicit-short-flag chunks, with and without stop-loss, take-profit,
trailing, per-column and per-bar stops.

:func:`direct_inputs` turns :func:`tradelab.research.conventions.from_signals_kwargs`
(the one description of the conventions) into the kernel's arguments, mapping the
names as vectorbt does, and returns ``None`` for anything the kernel does not cover
(the time stop's callbacks, per-column execution parameters, keys it does not
know): those runs keep ``vbt.Portfolio.from_signals``.

Two differences that cannot change a result: vectorbt validates ``size`` and
``size_type`` at every bar, this kernel at the first (the conventions validate both
before); and without stops it allocates records for the flagged cells only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numba import njit
from vectorbt.portfolio.enums import (
    AccumulationMode,
    ConflictMode,
    Direction,
    DirectionConflictMode,
    OppositeEntryMode,
    OrderStatus,
    ProcessOrderState,
    SizeType,
    StopEntryPrice,
    StopExitMode,
    StopExitPrice,
    StopUpdateMode,
    log_dt,
    order_dt,
)
from vectorbt.portfolio.nb import (
    generate_stop_signal_nb,
    get_exit_trades_nb,
    get_stop_price_nb,
    order_nb,
    process_order_nb,
    resolve_dir_conflict_nb,
    resolve_opposite_entry_nb,
    resolve_signal_conflict_nb,
    resolve_stop_price_and_slippage_nb,
    should_update_stop_nb,
    signals_to_size_nb,
)
from vectorbt.utils.enum_ import map_enum_fields

__all__ = ["direct_inputs", "exit_trade_stats", "simulate_direct", "simulate_signals_nb"]

_LONG = Direction.LongOnly
_SHORT = Direction.ShortOnly


@njit(cache=True, nogil=True, inline="always")
def _flex(a: Any, i: int, col: int) -> Any:  # pragma: no cover (compiled)
    """``a[i, col]`` of a 2-D array broadcast along its axes of length 1 (vectorbt's
    flexible indexing)."""
    return a[i if a.shape[0] > 1 else 0, col if a.shape[1] > 1 else 0]


@njit(cache=True, nogil=True)
def simulate_signals_nb(entries: Any, exits: Any, short_entries: Any, short_exits: Any,
                        ls_mode: bool, direction: int, price: Any, val_valid: Any,
                        val_price: Any, init_cash: float, size: float, size_type: int,
                        fees: float, fixed_fees: Any, slippage: float, min_size: float,
                        max_size: float, size_granularity: float, lock_cash: bool,
                        allow_partial: bool, raise_reject: bool, accumulate: int,
                        upon_long_conflict: int, upon_short_conflict: int,
                        upon_dir_conflict: int, upon_opposite_entry: int,
                        use_stops: bool, open_: Any, high: Any, low: Any, close: Any,
                        sl_stop: Any, sl_trail: Any, tp_stop: Any, stop_entry_price: int,
                        stop_exit_price: int, upon_stop_exit: int, upon_stop_update: int,
                        max_orders: int) -> Any:  # pragma: no cover (compiled)
    """Order records of vectorbt's ``simulate_from_signals_nb`` (see the module doc).

    ``entries``/``exits`` ``(columns, bars)`` (each column's flags contiguous): the
    direction-mode flags, or with ``ls_mode`` the long flags next to
    ``short_entries``/``short_exits`` (unread without ``ls_mode``). ``price``:
    each bar's resolved order price; ``val_price``/``val_valid``: each bar's resolved
    valuation price and the last bar at or before it whose valuation price is not
    NaN (-1: none), so that the price vectorbt forward-fills to a signal bar is known
    without visiting the bars between. With ``use_stops``, the bars a column holds an
    active stop are all visited (stop checks, trailing updates), as vectorbt does;
    ``open_``/``high``/``low``/``close`` per bar, ``sl_stop``/``sl_trail``/``tp_stop``
    2-D and flexible (``(1 or bars, 1 or columns)``), and so is ``fixed_fees`` (one value,
    or per bar and column: a short's borrow fee on its cover, :mod:`tradelab.research.borrow`).
    """
    n_cols, n = entries.shape
    records = np.empty(max_orders, dtype=order_dt)
    logs = np.empty(1, dtype=log_dt)
    oidx = 0
    # vectorbt checks these at every bar; once per column here (same errors)
    if n > 0:
        signals_to_size_nb(0.0, False, False, False, False, size, size_type, accumulate, np.nan)
    for col in range(n_cols):
        cash_now = init_cash
        free_cash_now = init_cash
        position_now = 0.0
        debt_now = 0.0
        last_val_price = np.nan
        last = -1
        # vectorbt's stop state (the parts that decide orders)
        sl_curr_price = np.nan
        sl_curr_stop = np.nan
        sl_curr_trail = False
        tp_init_price = np.nan
        tp_curr_stop = np.nan
        long_entry = long_exit = short_entry = short_exit = entry = exit_ = False
        for i in range(n):
            if ls_mode:
                long_entry = entries[col, i]
                long_exit = exits[col, i]
                short_entry = short_entries[col, i]
                short_exit = short_exits[col, i]
                flagged = long_entry or long_exit or short_entry or short_exit
            else:
                entry = entries[col, i]
                exit_ = exits[col, i]
                flagged = entry or exit_
            stops_on = use_stops and (not np.isnan(sl_curr_stop) or not np.isnan(tp_curr_stop))
            if not flagged and not stops_on:
                continue  # vectorbt: no order, only the valuation price moves on
            # the valuation price vectorbt carried here: the last non-NaN one since the
            # previous visited bar, else the one that bar left
            j = val_valid[i]
            if j > last:
                last_val_price = val_price[j]
            last = i
            _price = price[i]
            _slippage = slippage
            stop_price = np.nan
            if stops_on:
                _open = open_[i]
                _high = high[i]
                _low = low[i]
                _close = close[i]
                if np.isnan(_open):
                    _open = _close
                if np.isnan(_low):
                    _low = min(_open, _close)
                if np.isnan(_high):
                    _high = max(_open, _close)
                if not np.isnan(sl_curr_stop):
                    stop_price = get_stop_price_nb(position_now, sl_curr_price, sl_curr_stop,
                                                   _open, _low, _high, True)
                if np.isnan(stop_price) and not np.isnan(tp_curr_stop):
                    stop_price = get_stop_price_nb(position_now, tp_init_price, tp_curr_stop,
                                                   _open, _low, _high, False)
                if not np.isnan(sl_curr_stop) and sl_curr_trail:
                    if position_now > 0 and _high > sl_curr_price:
                        sl_curr_price = _high
                    elif position_now < 0 and _low < sl_curr_price:
                        sl_curr_price = _low
            _accumulate = accumulate
            if use_stops and not np.isnan(stop_price):
                is_long_entry, is_long_exit, is_short_entry, is_short_exit, _accumulate = (
                    generate_stop_signal_nb(position_now, upon_stop_exit, _accumulate))
                _price, _slippage = resolve_stop_price_and_slippage_nb(
                    stop_price, _price, close[i], _slippage, stop_exit_price)
            else:
                if not flagged:
                    continue  # no signal: size 0, no order
                is_long_entry = is_long_exit = is_short_entry = is_short_exit = False
                if ls_mode:
                    is_long_entry, is_long_exit = long_entry, long_exit
                    is_short_entry, is_short_exit = short_entry, short_exit
                elif direction == _LONG:
                    is_long_entry, is_long_exit = entry, exit_
                elif direction == _SHORT:
                    is_short_entry, is_short_exit = entry, exit_
                else:
                    is_long_entry, is_short_entry = entry, exit_
                if is_long_entry or is_short_entry:
                    is_long_entry, is_long_exit = resolve_signal_conflict_nb(
                        position_now, is_long_entry, is_long_exit, _LONG, upon_long_conflict)
                    is_short_entry, is_short_exit = resolve_signal_conflict_nb(
                        position_now, is_short_entry, is_short_exit, _SHORT,
                        upon_short_conflict)
                    is_long_entry, is_short_entry = resolve_dir_conflict_nb(
                        position_now, is_long_entry, is_short_entry, upon_dir_conflict)
                    is_long_entry, is_long_exit, is_short_entry, is_short_exit, _accumulate = (
                        resolve_opposite_entry_nb(position_now, is_long_entry, is_long_exit,
                                                  is_short_entry, is_short_exit,
                                                  upon_opposite_entry, _accumulate))
            _size, _size_type, _direction = signals_to_size_nb(
                position_now, is_long_entry, is_long_exit, is_short_entry, is_short_exit,
                size, size_type, _accumulate, last_val_price)
            # vectorbt keeps the size type in a float64 array between its two loops
            _size_type_f = float(_size_type)
            if _size == 0:
                continue
            if _direction == _SHORT:
                _size *= -1  # vectorbt: must reverse for process_order_nb
            value_now = cash_now
            if position_now != 0:
                value_now += position_now * last_val_price
            order = order_nb(size=_size, price=_price, size_type=_size_type_f,
                             direction=_direction, fees=fees, fixed_fees=_flex(fixed_fees, i, col),
                             slippage=_slippage, min_size=min_size, max_size=max_size,
                             size_granularity=size_granularity, reject_prob=0.0,
                             lock_cash=lock_cash, allow_partial=allow_partial,
                             raise_reject=raise_reject, log=False)
            state = ProcessOrderState(cash=cash_now, position=position_now, debt=debt_now,
                                      free_cash=free_cash_now, val_price=last_val_price,
                                      value=value_now, oidx=oidx, lidx=0)
            order_result, new_state = process_order_nb(i, col, col, state, False, order,
                                                       records, logs)
            cash_now = new_state.cash
            position_now = new_state.position
            debt_now = new_state.debt
            free_cash_now = new_state.free_cash
            oidx = new_state.oidx
            if use_stops and order_result.status == OrderStatus.Filled:
                if position_now == 0:  # closed: clear the stops
                    sl_curr_price = np.nan
                    sl_curr_stop = np.nan
                    sl_curr_trail = False
                    tp_init_price = np.nan
                    tp_curr_stop = np.nan
                else:
                    if stop_entry_price == StopEntryPrice.ValPrice:
                        new_init_price = new_state.val_price
                    elif stop_entry_price == StopEntryPrice.Price:
                        new_init_price = order.price
                    elif stop_entry_price == StopEntryPrice.FillPrice:
                        new_init_price = order_result.price
                    else:
                        new_init_price = close[i]
                    _sl_stop = _flex(sl_stop, i, col)
                    _sl_trail = _flex(sl_trail, i, col)
                    _tp_stop = _flex(tp_stop, i, col)
                    if state.position == 0 or np.sign(position_now) != np.sign(state.position):
                        sl_curr_price = new_init_price
                        sl_curr_stop = _sl_stop
                        sl_curr_trail = _sl_trail
                        tp_init_price = new_init_price
                        tp_curr_stop = _tp_stop
                    elif abs(position_now) > abs(state.position):
                        if should_update_stop_nb(_sl_stop, upon_stop_update):
                            sl_curr_price = new_init_price
                            sl_curr_stop = _sl_stop
                            sl_curr_trail = _sl_trail
                        if should_update_stop_nb(_tp_stop, upon_stop_update):
                            tp_init_price = new_init_price
                            tp_curr_stop = _tp_stop
            if not np.isnan(new_state.val_price):  # ffill_val_price
                last_val_price = new_state.val_price
    return records[:oidx].copy()


@njit(cache=True, nogil=True)
def resolve_prices_nb(price: Any, val_price: float, open_: Any,
                      close: Any) -> Any:  # pragma: no cover (compiled)
    """Per bar: the order price and valuation price vectorbt's kernel resolves (``inf``:
    the close, ``-inf``: the open or the previous close), and the last bar at or before
    each whose valuation price is not NaN (-1: none)."""
    n = close.shape[0]
    out_price = np.empty(n, dtype=np.float64)
    out_val = np.empty(n, dtype=np.float64)
    valid = np.empty(n, dtype=np.int64)
    last = -1
    for i in range(n):
        _price = price[i]
        if np.isinf(_price):
            if _price > 0:
                _price = close[i]
            elif not np.isnan(open_[i]):
                _price = open_[i]
            elif i > 0:
                _price = close[i - 1]
            else:
                _price = np.nan
        _val = val_price
        if np.isinf(_val):
            if _val > 0:
                _val = _price
            elif i > 0:
                _val = close[i - 1]
            else:
                _val = np.nan
        out_price[i] = _price
        out_val[i] = _val
        if not np.isnan(_val):
            last = i
        valid[i] = last
    return out_price, out_val, valid


#: Keys of :func:`from_signals_kwargs` the direct path reads (scalars unless noted).
_SCALARS = ("size", "size_type", "fees", "fixed_fees", "slippage", "min_size", "max_size",
            "size_granularity", "lock_cash", "allow_partial", "raise_reject", "accumulate",
            "upon_long_conflict", "upon_short_conflict", "upon_dir_conflict",
            "upon_opposite_entry", "val_price", "init_cash")
#: Per bar (a Series) or one value.
_SERIES = ("close", "price", "open", "high", "low")
_FLAGS = ("entries", "exits", "short_entries", "short_exits")
#: The stops: read with ``use_stops`` (and then all required), unread without.
_STOP_SCALARS = {"stop_entry_price": StopEntryPrice, "stop_exit_price": StopExitPrice,
                 "upon_stop_exit": StopExitMode, "upon_stop_update": StopUpdateMode}
_STOP_ARRAYS = {"sl_stop": np.float64, "sl_trail": np.bool_, "tp_stop": np.float64}
#: Keys read on their own (``direction``, the checks) or without effect here (``freq``
#: labels vectorbt's wrapper).
_IGNORED = ("freq", "broadcast_kwargs", "direction", "use_stops", "cash_sharing", "reject_prob",
            "log")
_ENUMS = {"size_type": SizeType, "upon_long_conflict": ConflictMode,
          "upon_short_conflict": ConflictMode, "upon_dir_conflict": DirectionConflictMode,
          "upon_opposite_entry": OppositeEntryMode}


def _stop_array(value: Any, dtype: Any, n: int, n_cols: int) -> np.ndarray | None:
    """A stop argument as a 2-D array vectorbt would index flexibly (one value,
    ``(1, columns)``, ``(bars, 1)`` or ``(bars, columns)``), or None."""
    if _scalar(value) is not None:
        return np.full((1, 1), _scalar(value), dtype=dtype)
    if isinstance(value, (pd.Series, pd.DataFrame)):
        value = value.to_numpy()
        if value.ndim == 1:  # a Series is broadcast along the bars
            value = value.reshape(-1, 1)
    if not isinstance(value, np.ndarray) or value.ndim != 2 or value.shape[0] not in (1, n) \
            or value.shape[1] not in (1, n_cols):
        return None
    return np.ascontiguousarray(value, dtype=dtype)


def _scalar(value: Any) -> Any:
    """A Python/numpy scalar (or 0-d array) as a Python value, else ``None``."""
    if isinstance(value, (bool, int, float, str, np.generic)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return None


def _flags(value: Any, n: int) -> np.ndarray | None:
    """Signal flags as a ``(columns, bars)`` C-contiguous bool array (None: not flags)."""
    array = value.to_numpy() if isinstance(value, (pd.Series, pd.DataFrame)) else value
    if not isinstance(array, np.ndarray) or array.dtype != np.bool_ or array.shape[0] != n \
            or array.ndim not in (1, 2):
        return None
    return np.ascontiguousarray(array.reshape(n, -1).T)


def direct_inputs(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The arguments of :func:`simulate_signals_nb` for ``from_signals`` keyword
    arguments, or ``None`` when the run needs vectorbt's full kernel (see the module doc)."""
    known = (set(_SCALARS) | set(_SERIES) | set(_FLAGS) | set(_IGNORED) | set(_STOP_SCALARS)
             | set(_STOP_ARRAYS))
    use_stops = kwargs.get("use_stops", True)
    if set(kwargs) - known or not isinstance(use_stops, bool) \
            or kwargs.get("cash_sharing", True):
        return None
    if use_stops and not set(_STOP_SCALARS) | set(_STOP_ARRAYS) <= set(kwargs):
        return None  # vectorbt's defaults would apply: leave them to vectorbt
    if _scalar(kwargs.get("reject_prob", 0.0)) != 0.0 or _scalar(kwargs.get("log", False)):
        return None
    values = {k: _scalar(kwargs[k]) for k in _SCALARS if k in kwargs}
    if len(values) != len(_SCALARS) or any(v is None for v in values.values()):
        return None
    close = kwargs["close"]
    if not isinstance(close, pd.Series):
        return None
    n = len(close)
    series = {}
    for key in _SERIES:
        given = kwargs.get(key, np.nan)
        series[key] = (np.full(n, float(given)) if _scalar(given) is not None
                       else np.asarray(given.to_numpy() if isinstance(given, pd.Series) else given,
                                       dtype=np.float64))
        if series[key].shape != (n,):
            return None
    ls_mode = "short_entries" in kwargs or "short_exits" in kwargs
    given = [_flags(kwargs[k], n) if k in kwargs else None for k in _FLAGS]
    shapes = {f.shape for f in given if f is not None}
    if len(shapes) != 1 or any(f is None for f in given[:2 + 2 * ls_mode]):
        return None  # flags of different widths: vectorbt broadcasts them
    unread = np.zeros((1, 1), dtype=np.bool_)  # the short flags without ls_mode
    flags = [unread if f is None else f for f in given]
    n_cols = flags[0].shape[0]
    stop_arrays = {k: _stop_array(kwargs.get(k, np.nan if dtype is np.float64 else False),
                                  dtype, n, n_cols) for k, dtype in _STOP_ARRAYS.items()}
    if any(v is None for v in stop_arrays.values()):
        return None
    stop_scalars = {k: int(map_enum_fields(kwargs[k], enum)) if use_stops else 0
                    for k, enum in _STOP_SCALARS.items()}
    price, val_price, val_valid = resolve_prices_nb(series["price"], float(values.pop("val_price")),
                                                    series["open"], series["close"])
    for key, enum in _ENUMS.items():
        values[key] = int(map_enum_fields(values[key], enum))
    values["accumulate"] = int(map_enum_fields(values["accumulate"], AccumulationMode,
                                               ignore_type=(int, bool)))
    direction = int(map_enum_fields(kwargs.get("direction", "longonly"), Direction))
    # one order per flagged cell at most, or with stops per cell
    max_orders = (n * n_cols if use_stops
                  else int(sum(np.count_nonzero(f) for f in flags[:2 + 2 * ls_mode])))
    return dict(entries=flags[0], exits=flags[1], short_entries=flags[2], short_exits=flags[3],
                ls_mode=ls_mode, direction=direction, price=price, val_valid=val_valid,
                val_price=val_price, init_cash=float(values.pop("init_cash")),
                fixed_fees=np.full((1, 1), float(values.pop("fixed_fees"))),
                size=float(values.pop("size")), size_type=values.pop("size_type"),
                **{k: (bool(v) if k in ("lock_cash", "allow_partial", "raise_reject")
                       else int(v) if k in ("accumulate", *_ENUMS) else float(v))
                   for k, v in values.items()},
                use_stops=use_stops, open_=series["open"], high=series["high"],
                low=series["low"], close=series["close"], **stop_arrays, **stop_scalars,
                max_orders=max_orders)


def simulate_direct(inputs: dict[str, Any]) -> np.ndarray:
    """Order records of :func:`simulate_signals_nb` for :func:`direct_inputs`."""
    return simulate_signals_nb(**inputs)


def exit_trade_stats(order_records: np.ndarray, close: np.ndarray, n_cols: int,
                     col_lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(col, pnl, open)`` of vectorbt's exit trades (what ``pf.trades`` holds), from
    column-major order records, without a Portfolio."""
    col_idxs = np.arange(len(order_records), dtype=np.int64)
    close_2d = np.broadcast_to(np.asarray(close, dtype=np.float64).reshape(-1, 1),
                               (len(close), n_cols))
    trades = get_exit_trades_nb(order_records, close_2d, (col_idxs, col_lens))
    return trades["col"].astype(np.int64), trades["pnl"], trades["status"] == 0


