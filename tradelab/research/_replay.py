"""Equity and position of a one-column portfolio, replayed from its order records.

``pf.value()`` and ``pf.assets()`` of vectorbt build them with seven numba kernels
(order flows, cumulative cash and position, asset value, value, initial cash), each
loaded from numba's disk cache in a fresh process: ~0.1 s of every ``tradelab
backtest``, for arithmetic on a few hundred orders. :func:`equity_and_position` does
the same float operations in Python and numpy, in the same order, so both arrays are
bit-identical to vectorbt's (the tests check it against vectorbt's kernels):

* per bar, the orders' asset and cash flows, each added with vectorbt's ``add_nb``
  (which snaps a sum that is zero up to its tolerances to ``0.0``), in record order;
  a sell's size negated, cash flow ``-size * price - fees`` (``asset_flow_nb``,
  ``cash_flow_nb``);
* position and cash accumulated bar by bar with ``add_nb`` from ``0.0`` and the
  initial cash (``assets_nb``, ``cash_nb``). On a bar without orders that adds
  ``0.0``, which snaps a value within the absolute tolerance of zero and otherwise
  leaves it unchanged, so a run of such bars holds one value (computed once);
* equity: ``cash + close * position`` with the close of a bar without a position
  taken as ``0.0`` (``asset_value``: "for price being NaN"), elementwise as
  vectorbt's ``value_nb``.

Only the close vectorbt simulated with is used (as ``pf.close``); a close with NaN
(vectorbt forward-fills it first) is left to vectorbt, as is a portfolio of several
columns.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["add", "equity_and_position", "replay"]

_SELL = 1  # vectorbt.portfolio.enums.OrderSide.Sell


_REL_TOL, _ABS_TOL = 1e-9, 1e-12  # vectorbt.utils.math_ (checked by the tests)


def _is_close(a: float, b: float) -> bool:
    """vectorbt's ``is_close_nb``."""
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return False
    if a == b:
        return True
    return abs(a - b) <= max(_REL_TOL * max(abs(a), abs(b)), _ABS_TOL)


def _sign(x: float) -> float:
    # np.sign of a float: NaN for NaN (so it differs from every sign, as in numba)
    return math.nan if x != x else (x > 0) - (x < 0)


def add(a: float, b: float) -> float:
    """``a + b`` as vectorbt's ``add_nb``: ``0.0`` when the sum is zero up to vectorbt's
    tolerances."""
    # (vectorbt's is_addition_zero_nb: opposite signs compare the magnitudes)
    zero = _is_close(abs(a), abs(b)) if _sign(a) != _sign(b) else _is_close(a + b, 0.0)
    return 0.0 if zero else a + b


def replay(order_records: np.ndarray, close: np.ndarray, init_cash: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """``(equity, position)`` per bar of one column's orders (see the module docstring).

    Parameters
    ----------
    order_records
        vectorbt order records (``order_dt``) of one column, in record order.
    close
        The close per bar the simulation used (no NaN).
    init_cash
        The column's initial cash.
    """
    n = close.shape[0]
    asset_flow: dict[int, float] = {}
    cash_flow: dict[int, float] = {}
    for i, side, size, price, fees in zip(
            order_records["idx"].tolist(), order_records["side"].tolist(),
            order_records["size"].tolist(), order_records["price"].tolist(),
            order_records["fees"].tolist(), strict=True):
        if side == _SELL:
            size *= -1
        asset_flow[i] = add(asset_flow.get(i, 0.0), size)
        cash_flow[i] = add(cash_flow.get(i, 0.0), -size * price - fees)
    position = np.empty(n, dtype=np.float64)
    cash = np.empty(n, dtype=np.float64)
    held, balance = 0.0, float(init_cash)
    done = 0  # bars filled so far
    for i in sorted(asset_flow):
        if i > done:  # bars without orders: each adds 0.0 (idempotent, so once)
            held, balance = add(held, 0.0), add(balance, 0.0)
            position[done:i] = held
            cash[done:i] = balance
        held, balance = add(held, asset_flow[i]), add(balance, cash_flow[i])
        position[i] = held
        cash[i] = balance
        done = i + 1
    if done < n:
        position[done:] = add(held, 0.0)
        cash[done:] = add(balance, 0.0)
    equity = cash + np.where(position == 0, 0.0, close) * position
    return equity, position


def equity_and_position(pf: Any, init_cash: float) -> tuple[np.ndarray, np.ndarray]:
    """``(pf.value(), pf.assets())`` of a one-column ``vbt.Portfolio`` as float arrays,
    bit for bit, without vectorbt's kernels where :func:`replay` applies (see the
    module docstring); otherwise vectorbt's own."""
    close = np.asarray(pf.close, dtype=np.float64)
    if close.ndim == 2 and close.shape[1] == 1:
        close = close[:, 0]
    if close.ndim != 1 or np.isnan(close).any():
        return (np.asarray(pf.value(), dtype=float).reshape(-1),
                np.asarray(pf.assets(), dtype=float).reshape(-1))
    return replay(pf.order_records, close, init_cash)
