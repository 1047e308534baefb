"""The borrow fee of each order from order records, compiled (a sweep's fixed point).

:func:`tradelab.research.borrow.borrow_fees` runs once per pass of the fixed point, over
every order of every column of a chunk; in Python that loop was most of a borrow-fee
sweep's time. :func:`borrow_fees_nb` is the same loop with the same float operations in
the same order (each interval's term ``rate * (seconds / year) * units * close``,
added to the accrual one at a time: what ``np.add.accumulate`` does, and what the
paper broker does), so its fees equal the Python loop's bit for bit; the tests check
that. Imported when a borrow fee is simulated (it imports numba).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

__all__ = ["borrow_fees_nb"]

_BUY = 0  # vectorbt's OrderSide.Buy


@njit(cache=True, nogil=True)
def _accrue_nb(rate: float, year: float, acc: float, seconds: Any, closes: Any, start: int,
               stop: int, units: float) -> float:  # pragma: no cover (compiled)
    """``acc`` plus the terms of intervals ``start+1 .. stop`` (closes ``start .. stop-1``)."""
    for k in range(start, stop):
        acc = acc + rate * (seconds[k + 1] / year) * units * closes[k]
    return acc


@njit(cache=True, nogil=True)
def borrow_fees_nb(col: Any, idx: Any, size: Any, side: Any, closes: Any, seconds: Any,
                   rate: float, year: float, columns: int) -> Any:  # pragma: no cover
    """``(per_bar (bars, columns), open_accrued (columns,))`` from order records sorted by
    column, bar and id (``col``/``idx``/``size``/``side`` their fields): see
    :func:`tradelab.research.borrow.borrow_fees`."""
    n = closes.shape[0]
    per_bar = np.zeros((n, columns), dtype=np.float64)
    open_accrued = np.zeros(columns, dtype=np.float64)
    k = 0
    m = col.shape[0]
    while k < m:
        c = col[k]
        pos = 0.0
        acc = 0.0
        last = 0
        while k < m and col[k] == c:
            i = idx[k]
            if pos < 0 and i > last:  # held short at the closes of bars last .. i-1
                acc = _accrue_nb(rate, year, acc, seconds, closes, last, i, -pos)
            s = size[k]
            if side[k] == _BUY and pos < 0:
                short = -pos
                charge = acc if s >= short else acc * (s / short)
                per_bar[i, c] += charge
                acc = acc - charge
            pos = pos + s if side[k] == _BUY else pos - s
            last = i
            k += 1
        if pos < 0:
            open_accrued[c] = _accrue_nb(rate, year, acc, seconds, closes, last, n - 1, -pos)
    return per_bar, open_accrued
