"""More causal indicators: EMA, WMA, rolling std, Bollinger, ATR, MACD, Wilder RSI, z-score, rolling OLS.

Same conventions as :mod:`tradelab.strategy.indicators` (and re-exported from
it): inputs of shape ``(n,)`` or ``(n, c)``; every parameter is a scalar or an
array of ``K`` values, one per combination of a sweep, in which case the result
has shape ``(n, K)`` (each distinct parameter set is computed once); NaN where
the window is not full, and comparisons with NaN are False, so no signal fires
during warmup.

**Window-local values, and the warmup to declare.** The live engine evaluates a
strategy on its last ``warmup`` bars, and ``tradelab check`` requires the last
signal to equal the full-history one. An exponential recursion over the whole
history (pandas ``ewm``) depends on every bar ever seen, so it cannot pass. The
recursive helpers here (:func:`ema`, :func:`atr`, :func:`macd`,
:func:`rsi_wilder`) compute the value at bar ``t`` from a fixed trailing window
of ``k`` bars only: seeded with the simple mean of the window's first ``n``
values, then the recursion over the other ``k - n``. ``k`` is chosen so that
the seed keeps a weight of at most ``exp(-settle)`` (``settle = 12`` by default,
``exp(-12) ≈ 6.1e-6``): ``k = n + ceil(settle / alpha)`` recursion steps, that
is ``7n + 6`` for the EMA (``alpha = 2/(n+1)``) and ``13n`` for Wilder's
smoothing (``alpha = 1/n``). The value is then the textbook one up to that
weight, and it is the same bits in research and live. Declare the matching
``*_warmup`` as (part of) the strategy's ``warmup``: :func:`ema_warmup`,
:func:`atr_warmup`, :func:`macd_warmup`, :func:`rsi_wilder_warmup`. The
finite-window helpers need their window (``wma``, ``rolling_std``,
``bollinger``, ``zscore``, ``rolling_ols``: ``n``).

A NaN inside a window makes that bar's value NaN (pandas would skip it); a
leading NaN run only delays the first value. Requires numba (a dependency).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tradelab.strategy._series import (
    ArrayLike,
    _atr1,
    _bands1,
    _ema1,
    _macd1,
    _ols1,
    _rsi_wilder1,
    _std1,
    _wma1,
    _zscore1,
    broadcast,
    check_window,
)
from tradelab.strategy.warmups import (
    SETTLE,
    atr_warmup,
    ema_warmup,
    macd_warmup,
    rsi_wilder_warmup,
    wilder_warmup,
)

__all__ = ["SETTLE", "Bands", "Macd", "Ols", "atr", "atr_warmup", "bollinger", "ema", "ema_warmup",
           "macd", "macd_warmup", "rolling_ols", "rolling_std", "rsi_wilder", "rsi_wilder_warmup",
           "wilder_warmup", "wma", "zscore"]


class Bands(NamedTuple):
    """Bollinger bands: the window mean and mean ± k standard deviations."""

    mid: np.ndarray
    upper: np.ndarray
    lower: np.ndarray


class Macd(NamedTuple):
    """MACD line (fast EMA − slow EMA), its signal EMA, and the histogram (line − signal)."""

    line: np.ndarray
    signal: np.ndarray
    hist: np.ndarray


class Ols(NamedTuple):
    """Rolling regression ``y ≈ alpha + beta x``; ``resid`` is the current bar's spread."""

    beta: np.ndarray
    alpha: np.ndarray
    resid: np.ndarray


_SERIES = """x
        Prices, shape ``(n_bars,)`` or ``(n_bars, c)`` (then one parameter set per
        column, or scalar parameters for all)."""
_OUT = """numpy.ndarray
        ``(n_bars,)``, or ``(n_bars, K)`` with ``K`` parameter sets (C-ordered)."""


def ema(x: ArrayLike, n: int | np.ndarray, settle: float = SETTLE) -> np.ndarray:
    """Exponential moving average, window-local.

    ``e = (1 - a) e + a x_t`` with ``a = 2 / (n + 1)``, seeded at the start of a
    trailing window of ``k = ema_warmup(n) = 7n + 6`` bars with the mean of its
    first ``n`` values, so the value at bar ``t`` depends on bars ``t-k+1 .. t``
    only. Equals pandas ``ewm(span=n, adjust=False)`` up to the seed's remaining
    weight ``(1 - a)^(k-n) <= exp(-settle)``.

    Parameters
    ----------
    {x}
    n
        Span in bars (>= 1), or one per combination.
    settle
        Convergence in time constants ``1/a`` (default 12).

    Returns
    -------
    {out}
        NaN for the first ``k - 1`` bars and wherever the window holds a NaN.
    """
    check_window(n, "ema span")
    return broadcast([x], {"n": n, "settle": settle}, _ema1)[0]


def wma(x: ArrayLike, n: int | np.ndarray) -> np.ndarray:
    """Linearly weighted moving average: ``sum(i x_{t-n+i}, i=1..n) / (n (n+1) / 2)``.

    The newest bar weighs ``n``, the oldest 1. Warmup: ``n`` bars.

    Parameters
    ----------
    {x}
    n
        Window in bars (>= 1), or one per combination.

    Returns
    -------
    {out}
        NaN for the first ``n - 1`` bars and wherever the window holds a NaN.
    """
    check_window(n, "wma window")
    return broadcast([x], {"n": n}, _wma1)[0]


def rolling_std(x: ArrayLike, n: int | np.ndarray, ddof: int = 1) -> np.ndarray:
    """Standard deviation over the last ``n`` bars: ``sqrt(sum((x - mean)^2) / (n - ddof))``.

    Two-pass per window (accurate on prices; pandas' online update carries
    ~1e-10 relative residue). Warmup: ``n`` bars.

    Parameters
    ----------
    {x}
    n
        Window in bars (>= 1), or one per combination.
    ddof
        1 (default): the sample deviation, as pandas ``rolling().std()``; 0: the population one.

    Returns
    -------
    {out}
        NaN for the first ``n - 1`` bars, wherever the window holds a NaN, and if ``n <= ddof``.
    """
    check_window(n, "rolling_std window")
    return broadcast([x], {"n": n, "ddof": int(ddof)}, _std1)[0]


def bollinger(x: ArrayLike, n: int | np.ndarray = 20, k: float | np.ndarray = 2.0,
              ddof: int = 0) -> Bands:
    """Bollinger bands: ``mid = mean(x, n)``, ``upper/lower = mid ± k * std(x, n)``.

    ``mid`` equals :func:`sma` to rounding (it is the two-pass window mean, not
    bit for bit the pairwise one). Warmup: ``n`` bars.

    Parameters
    ----------
    {x}
    n
        Window in bars (>= 1), or one per combination.
    k
        Width in standard deviations, or one per combination.
    ddof
        0 (default): Bollinger's population deviation; 1 matches pandas ``rolling().std()``.

    Returns
    -------
    Bands
        ``mid``, ``upper``, ``lower``, each shaped as {out_short}; NaN for the first
        ``n - 1`` bars and wherever the window holds a NaN.
    """
    check_window(n, "bollinger window")
    return Bands(*broadcast([x], {"n": n, "k": k, "ddof": int(ddof)}, _bands1))


def zscore(x: ArrayLike, n: int | np.ndarray, ddof: int = 1) -> np.ndarray:
    """``(x_t - mean) / std`` over the last ``n`` bars, the current bar included.

    Warmup: ``n`` bars.

    Parameters
    ----------
    {x}
    n
        Window in bars (>= 2), or one per combination.
    ddof
        As in :func:`rolling_std` (default 1, pandas' convention).

    Returns
    -------
    {out}
        NaN for the first ``n - 1`` bars, wherever the window holds a NaN, and on a flat window.
    """
    check_window(n, "zscore window", 2)
    return broadcast([x], {"n": n, "ddof": int(ddof)}, _zscore1)[0]


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int | np.ndarray = 14,
        settle: float = SETTLE) -> np.ndarray:
    """Average true range with Wilder's smoothing, window-local.

    ``TR_t = max(h_t - l_t, |h_t - c_{t-1}|, |l_t - c_{t-1}|)`` (NaN at bar 0),
    smoothed with ``a = 1/n`` from the mean of the first ``n`` ranges of a
    trailing window of ``wilder_warmup(n) = 13n`` ranges, so the value at bar
    ``t`` depends on ``atr_warmup(n) = 13n + 1`` bars. Equals pandas
    ``tr.ewm(alpha=1/n, adjust=False)`` seeded with that mean, and the
    full-history smoothing up to ``exp(-settle)`` of the seed's error.

    Parameters
    ----------
    high, low, close
        Bars' prices, one shape: ``(n_bars,)`` or ``(n_bars, c)``.
    n
        Smoothing period (>= 1), or one per combination.
    settle
        Convergence in time constants ``n`` (default 12).

    Returns
    -------
    {out}
        NaN for the first ``13n`` bars and wherever the window holds a NaN.
    """
    check_window(n, "atr window")
    return broadcast([high, low, close], {"n": n, "settle": settle}, _atr1)[0]


def macd(x: ArrayLike, fast: int | np.ndarray = 12, slow: int | np.ndarray = 26,
         signal: int | np.ndarray = 9, settle: float = SETTLE) -> Macd:
    """MACD: ``line = ema(x, fast) - ema(x, slow)``, ``signal = ema(line, signal)``, ``hist = line - signal``.

    Built from :func:`ema`, so window-local: the value at bar ``t`` depends on
    ``macd_warmup(fast, slow, signal) = max(k_fast, k_slow) + k_signal - 1``
    bars (``k = ema_warmup``; 256 for 12/26/9).

    Parameters
    ----------
    {x}
    fast, slow, signal
        EMA spans, each a scalar or one per combination.
    settle
        As in :func:`ema`.

    Returns
    -------
    Macd
        ``line``, ``signal``, ``hist``, each shaped as {out_short}; ``signal`` and
        ``hist`` NaN for the first ``macd_warmup - 1`` bars and wherever a window holds a NaN.
    """
    for p, what in ((fast, "macd fast"), (slow, "macd slow"), (signal, "macd signal")):
        check_window(p, what)
    return Macd(*broadcast([x], {"fast": fast, "slow": slow, "signal": signal,
                                 "settle": settle}, _macd1))


def rsi_wilder(x: ArrayLike, n: int | np.ndarray = 14, settle: float = SETTLE) -> np.ndarray:
    """Wilder's RSI (0–100), window-local; the simple-average form stays :func:`rsi`.

    ``100 - 100 / (1 + G/L)`` (100 when ``L = 0``, 50 when both are 0), where the
    average gain ``G`` and loss ``L`` are smoothed with ``a = 1/n``, seeded with the
    mean of the first ``n`` changes of a trailing window of ``13n`` changes: the
    value at bar ``t`` depends on ``rsi_wilder_warmup(n) = 13n + 1`` bars.

    Parameters
    ----------
    {x}
    n
        Period (>= 1), or one per combination.
    settle
        Convergence in time constants ``n`` (default 12).

    Returns
    -------
    {out}
        NaN for the first ``13n`` bars and wherever the window holds a NaN.
    """
    check_window(n, "rsi_wilder window")
    return broadcast([x], {"n": n, "settle": settle}, _rsi_wilder1)[0]


def rolling_ols(y: ArrayLike, x: ArrayLike, n: int | np.ndarray) -> Ols:
    """Least squares of ``y`` on ``x`` over the last ``n`` bars: the hedge ratio.

    ``beta = sum((x - mx)(y - my)) / sum((x - mx)^2)``, ``alpha = my - beta mx``
    (two-pass per window), ``resid_t = y_t - alpha_t - beta_t x_t``: the spread of
    a pairs trade at the current bar (feed it to :func:`zscore`). Warmup: ``n`` bars.

    Parameters
    ----------
    y, x
        The two price series, one shape: ``(n_bars,)`` or ``(n_bars, c)``.
    n
        Window in bars (>= 2), or one per combination.

    Returns
    -------
    Ols
        ``beta``, ``alpha``, ``resid``, each shaped as {out_short}; NaN for the first
        ``n - 1`` bars, wherever the window holds a NaN, and when ``x`` is flat over it.
    """
    check_window(n, "rolling_ols window", 2)
    return Ols(*broadcast([y, x], {"n": n}, _ols1))


# The shared Parameters/Returns text, filled in once (numpydoc, as rendered by Sphinx).
for _fn in (ema, wma, rolling_std, bollinger, zscore, atr, macd, rsi_wilder, rolling_ols):
    _fn.__doc__ = ((_fn.__doc__ or "").replace("{x}", _SERIES).replace("{out}", _OUT)
                   .replace("{out_short}", "``(n_bars,)`` or ``(n_bars, K)``"))
