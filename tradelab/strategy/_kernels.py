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
  ``0.0`` (it turns a ``-0.0`` sum into ``0.0``, as numpy does). Only windows of
  at most 128 values take this path (beyond that numpy splits the run in two
  recursively; the indicators keep numpy for those).
* :func:`crossed_above` / :func:`crossed_below` are the element-wise comparisons
  of the slice formulas; a NaN compares False in both.

No ``fastmath``: every addition and division is the IEEE operation numpy performs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

#: Longest window :func:`window_mean` accepts (numpy's pairwise block size).
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
def window_mean(v: Any, w: int, out: Any) -> None:  # pragma: no cover (compiled)
    """``out[i]`` = mean of the ``w`` values of ``v`` ending at ``i`` (NaN before the first full window).

    ``1 <= w <= MAX_WINDOW``; ``v`` and ``out`` are 1-D float64 of one length (any stride).
    The caller allocates ``out``: returning a new array from compiled code costs more
    (~0.4 µs of allocation and boxing) than the whole computation on a short window.
    """
    n = v.shape[0]
    head = w - 1 if w - 1 < n else n
    for i in range(head):
        out[i] = np.nan
    for i in range(w - 1, n):
        out[i] = (0.0 + block_sum(v, i - w + 1, w)) / w


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
def crossed_2d(a: Any, b: Any, up: bool, out: Any) -> None:  # pragma: no cover (compiled)
    """The crossing flags of same-shape 2-D ``a`` and ``b`` (any strides, e.g. broadcast views).

    The comparisons of :func:`crossed_above` / :func:`crossed_below` per column, row 0
    False; written in one pass instead of the formula's two NaN-filled shifted copies.
    """
    n, m = a.shape
    if n:
        for j in range(m):
            out[0, j] = False
    for i in range(1, n):
        for j in range(m):
            if up:
                out[i, j] = a[i, j] > b[i, j] and a[i - 1, j] <= b[i - 1, j]
            else:
                out[i, j] = a[i, j] < b[i, j] and a[i - 1, j] >= b[i - 1, j]
