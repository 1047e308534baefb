"""numba kernels behind the common cases of :mod:`tradelab.strategy.indicators`.

Imported lazily by the indicators (the first call that can use them), compiled
once per argument type and cached on disk (``NUMBA_CACHE_DIR``).

Why: in the live engine a strategy's ``signals`` runs on a window of ``warmup``
bars at every bar (31 for ``sma_cross(10, 30)``). On such short arrays numpy's
cost is per call (~0.5–1 µs each, a strided view, a reduce, a divide, a NaN
fill...), which made the strategy the largest part of the per-bar cost. Each
kernel here does one indicator in one call.

They return the very bits of the numpy formulas (the tests compare every value):

* :func:`window_mean` is ``np.add.reduce`` of each window followed by a true
  division by ``w``. numpy sums a contiguous (or strided) run of float64 with
  its *pairwise* summation, starting from the identity ``0.0``: fewer than 8
  values one by one; 8 to 128 values in 8 interleaved partial sums, added as
  ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))``, then the remainder one by
  one. :func:`block_sum` repeats exactly those additions, and the kernel adds the
  ``0.0`` (it turns a ``-0.0`` sum into ``0.0``, as numpy does). Beyond 128 values
  numpy splits the run in two (the first part ``n // 2`` rounded down to a
  multiple of 8) and adds the halves' sums; :func:`_split_sum` repeats that
  split without recursion (numba's disk cache cannot reload a recursive function).
* :func:`crossed_above` / :func:`crossed_below` are the element-wise comparisons
  of the slice formulas; a NaN compares False in both. :func:`crossed_2d` does the
  same per column of a ``(bars, combinations)`` pair, column by column when the
  arrays are column-major (a sweep's: each column contiguous).

No ``fastmath``: every addition and division is the IEEE operation numpy performs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

#: numpy's pairwise block: runs of at most this many values are summed by :func:`block_sum`.
MAX_WINDOW = 128


@njit(cache=True, nogil=True)
def block_sum(a: Any, lo: int, n: int) -> float:  # pragma: no cover (compiled)
    """numpy's pairwise sum of ``a[lo:lo + n]`` for ``n <= 128`` (without the initial 0.0)."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, nogil=True)
def _split_sum(a: Any, lo: int, n: int, stack: Any) -> float:  # pragma: no cover (compiled)
    """numpy's pairwise sum of ``a[lo:lo + n]`` for ``n > 128`` (without the initial 0.0).

    The run is split as numpy splits it (``n // 2`` rounded down to a multiple of 8),
    recursively, down to runs of at most 128 (:func:`block_sum`), and the halves'
    sums are added, left + right. The recursion runs on a caller-owned ``(4, 64)``
    stack (rows: start, length, right half pending, left sum), allocated once per
    rolling window rather than at every bar.
    """
    los, ns, waiting_right, lefts = stack[0], stack[1], stack[2], stack[3]
    sp = 0
    los[0], ns[0] = lo, n
    value = 0.0
    have_value = False
    while True:
        if have_value:  # hand the value of the frame just finished to its parent
            if sp < 0:
                return value
            if waiting_right[sp]:
                value = lefts[sp] + value
                sp -= 1
            else:
                lefts[sp] = value
                waiting_right[sp] = 1.0
                half = int(ns[sp]) // 2
                half -= half % 8
                have_value = False
                los[sp + 1], ns[sp + 1], waiting_right[sp + 1] = los[sp] + half, ns[sp] - half, 0.0
                sp += 1
            continue
        if ns[sp] <= MAX_WINDOW:
            value = block_sum(a, int(los[sp]), int(ns[sp]))
            have_value = True
            sp -= 1
        else:
            half = int(ns[sp]) // 2
            half -= half % 8
            waiting_right[sp] = 0.0
            los[sp + 1], ns[sp + 1], waiting_right[sp + 1] = los[sp], half, 0.0
            sp += 1


@njit(cache=True, nogil=True)
def window_mean(v: Any, w: int, out: Any) -> None:  # pragma: no cover (compiled)
    """``out[i]`` = mean of the ``w`` values of ``v`` ending at ``i`` (NaN before the first full window).

    ``w >= 1``; ``v`` and ``out`` are 1-D float64 of one length (any stride).
    The caller allocates ``out``: returning a new array from compiled code costs more
    (~0.4 µs of allocation and boxing) than the whole computation on a short window.
    """
    n = v.shape[0]
    head = w - 1 if w - 1 < n else n
    for i in range(head):
        out[i] = np.nan
    if w <= MAX_WINDOW:
        for i in range(w - 1, n):
            out[i] = (0.0 + block_sum(v, i - w + 1, w)) / w
    else:
        stack = np.empty((4, 64))
        for i in range(w - 1, n):
            out[i] = (0.0 + _split_sum(v, i - w + 1, w, stack)) / w


@njit(cache=True, nogil=True)
def crossed_above(a: Any, b: Any, out: Any) -> None:  # pragma: no cover (compiled)
    """``out[i]`` = ``a[i] > b[i] and a[i-1] <= b[i-1]``; False at index 0. Same-length 1-D."""
    n = a.shape[0]
    if n:
        out[0] = False
    for i in range(1, n):
        out[i] = a[i] > b[i] and a[i - 1] <= b[i - 1]


@njit(cache=True, nogil=True)
def crossed_below(a: Any, b: Any, out: Any) -> None:  # pragma: no cover (compiled)
    """``out[i]`` = ``a[i] < b[i] and a[i-1] >= b[i-1]``, which is ``b`` crossing above ``a``."""
    crossed_above(b, a, out)


@njit(cache=True, nogil=True)
def crossed_2d(a: Any, b: Any, up: bool, by_column: bool,
               out: Any) -> None:  # pragma: no cover (compiled)
    """The crossing flags of same-shape 2-D ``a`` and ``b`` (any strides, e.g. broadcast views).

    The comparisons of :func:`crossed_above` / :func:`crossed_below` per column, row 0
    False; written in one pass instead of the formula's two NaN-filled shifted copies.
    ``by_column``: visit the cells column by column (column-major arrays: each column
    is contiguous), else row by row; the flags are the same either way.
    """
    n, m = a.shape
    if by_column:
        for j in range(m):
            if n:
                out[0, j] = False
            for i in range(1, n):
                if up:
                    out[i, j] = a[i, j] > b[i, j] and a[i - 1, j] <= b[i - 1, j]
                else:
                    out[i, j] = a[i, j] < b[i, j] and a[i - 1, j] >= b[i - 1, j]
        return
    if n:
        for j in range(m):
            out[0, j] = False
    for i in range(1, n):
        for j in range(m):
            if up:
                out[i, j] = a[i, j] > b[i, j] and a[i - 1, j] <= b[i - 1, j]
            else:
                out[i, j] = a[i, j] < b[i, j] and a[i - 1, j] >= b[i - 1, j]
