"""numba kernels behind :mod:`tradelab.strategy.indicators_more`.

Every kernel computes the value at bar ``t`` from a fixed trailing window of
bars only, with the same operations in the same order whatever came before
that window. That is what makes an indicator *window-local*: the live engine,
which evaluates a strategy on the last ``warmup`` bars, gets the very bits that
research gets on the full history (research/live parity, ``tradelab check``).
It costs O(window) per bar instead of O(1), which is cheap in compiled code
(an EMA(26) settles over 188 bars: ~1 ms for 5,000 bars).

The recursive ones (EMA, Wilder smoothing) restart at each bar: seeded with the
simple mean of the first ``n`` values of the window, then the recursion runs
over the remaining ``k - n`` values. A NaN anywhere in a window makes that
bar's value NaN (no skipping), so a leading NaN run only delays the first value.

Kernels take 1-D float64 arrays of any stride and write into ``out`` (allocated
by the caller). No ``fastmath``: plain IEEE operations, reproducible.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _mean(v: Any, lo: int, n: int) -> float:  # pragma: no cover (compiled)
    s = 0.0
    for i in range(lo, lo + n):
        s += v[i]
    return s / n


@njit(cache=True, nogil=True)
def smooth(v: Any, n: int, k: int, alpha: float, out: Any) -> None:  # pragma: no cover
    """Exponential smoothing restarted at each bar over the last ``k`` values.

    ``out[t]`` = ``e_t`` where ``e = mean(v[t-k+1 : t-k+1+n])`` and then
    ``e = (1 - alpha) * e + alpha * v[i]`` for ``i`` in ``t-k+1+n .. t``;
    NaN for ``t < k - 1``. ``alpha = 2/(n+1)`` is the EMA, ``1/n`` Wilder's.
    """
    m = v.shape[0]
    beta = 1.0 - alpha
    for t in range(min(k - 1, m)):
        out[t] = np.nan
    for t in range(k - 1, m):
        lo = t - k + 1
        e = _mean(v, lo, n)
        for i in range(lo + n, t + 1):
            e = beta * e + alpha * v[i]
        out[t] = e


@njit(cache=True, nogil=True)
def wma(v: Any, n: int, out: Any) -> None:  # pragma: no cover (compiled)
    """``out[t]`` = ``sum(i * v[t-n+i], i = 1..n) / (n (n+1) / 2)``; NaN for ``t < n - 1``."""
    m = v.shape[0]
    denom = n * (n + 1) / 2.0
    for t in range(min(n - 1, m)):
        out[t] = np.nan
    for t in range(n - 1, m):
        lo = t - n + 1
        s = 0.0
        for i in range(n):
            s += (i + 1) * v[lo + i]
        out[t] = s / denom


@njit(cache=True, nogil=True)
def mean_std(v: Any, n: int, ddof: int, mean: Any, std: Any) -> None:  # pragma: no cover
    """Window mean and standard deviation, two-pass (``sqrt(sum((v - mean)^2) / (n - ddof))``).

    Two passes rather than running sums of ``v`` and ``v**2``: no cancellation
    when the spread is small against the level (prices), and window-local bits.
    """
    m = v.shape[0]
    for t in range(min(n - 1, m)):
        mean[t] = np.nan
        std[t] = np.nan
    for t in range(n - 1, m):
        lo = t - n + 1
        mu = _mean(v, lo, n)
        ss = 0.0
        for i in range(lo, t + 1):
            d = v[i] - mu
            ss += d * d
        mean[t] = mu
        std[t] = np.sqrt(ss / (n - ddof)) if n > ddof else np.nan


@njit(cache=True, nogil=True)
def ols(y: Any, x: Any, n: int, beta: Any, alpha: Any, resid: Any) -> None:  # pragma: no cover
    """Least squares ``y = alpha + beta x`` over each window of ``n`` bars, two-pass.

    ``resid[t] = y[t] - (alpha[t] + beta[t] x[t])``: the current bar's spread
    against the line fitted on the window that ends at it. ``beta`` is NaN when
    ``x`` is constant over the window.
    """
    m = y.shape[0]
    for t in range(min(n - 1, m)):
        beta[t] = np.nan
        alpha[t] = np.nan
        resid[t] = np.nan
    for t in range(n - 1, m):
        lo = t - n + 1
        mx = _mean(x, lo, n)
        my = _mean(y, lo, n)
        sxx = 0.0
        sxy = 0.0
        for i in range(lo, t + 1):
            dx = x[i] - mx
            sxx += dx * dx
            sxy += dx * (y[i] - my)
        b = sxy / sxx if sxx != 0.0 else np.nan
        a = my - b * mx
        beta[t] = b
        alpha[t] = a
        resid[t] = y[t] - (a + b * x[t])


@njit(cache=True, nogil=True)
def true_range(high: Any, low: Any, close: Any, out: Any) -> None:  # pragma: no cover
    """``max(h - l, |h - c[t-1]|, |l - c[t-1]|)``; NaN at bar 0 (no previous close).

    A NaN in any input of a bar makes its range NaN (``max`` would drop it).
    """
    m = high.shape[0]
    if m:
        out[0] = np.nan
    for t in range(1, m):
        h, lo_, pc = high[t], low[t], close[t - 1]
        if np.isnan(h) or np.isnan(lo_) or np.isnan(pc):
            out[t] = np.nan
        else:
            out[t] = max(h - lo_, abs(h - pc), abs(lo_ - pc))
