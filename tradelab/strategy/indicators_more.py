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

import math
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from tradelab.strategy import _memo
from tradelab.strategy.indicators import ArrayLike, _values

#: Default convergence, in time constants ``1/alpha``: the seed's weight is at most ``exp(-SETTLE)``.
SETTLE = 12.0

_K: list[Any] = [None]


def _k() -> Any:
    # Loaded on first use, as the other kernels: importing numba costs ~0.15 s.
    if _K[0] is None:
        from tradelab.strategy import _kernels_more

        _K[0] = _kernels_more
    return _K[0]


# -- warmup rules ---------------------------------------------------------------------
def ema_warmup(n: int, settle: float = SETTLE) -> int:
    """Bars :func:`ema` reads for one value: ``n + ceil(settle * (n + 1) / 2)`` (``7n + 6``)."""
    n = int(n)
    return n + math.ceil(settle * (n + 1) / 2)


def wilder_warmup(n: int, settle: float = SETTLE) -> int:
    """Values Wilder's smoothing (``alpha = 1/n``) reads: ``n + ceil(settle * n)`` (``13n``)."""
    n = int(n)
    return n + math.ceil(settle * n)


def atr_warmup(n: int, settle: float = SETTLE) -> int:
    """Bars :func:`atr` reads: the smoothing's values plus the previous close (``13n + 1``)."""
    return wilder_warmup(n, settle) + 1


def rsi_wilder_warmup(n: int, settle: float = SETTLE) -> int:
    """Bars :func:`rsi_wilder` reads: the smoothing's price changes plus one (``13n + 1``)."""
    return wilder_warmup(n, settle) + 1


def macd_warmup(fast: int = 12, slow: int = 26, signal: int = 9, settle: float = SETTLE) -> int:
    """Bars :func:`macd` reads: the line's EMAs, then the signal EMA over the line (256 for 12/26/9)."""
    return max(ema_warmup(fast, settle), ema_warmup(slow, settle)) + ema_warmup(signal, settle) - 1


# -- broadcasting ---------------------------------------------------------------------
Fn = Callable[..., tuple[np.ndarray, ...]]


def _broadcast(inputs: list[ArrayLike], params: dict[str, Any], fn: Fn) -> tuple[np.ndarray, ...]:
    """Apply ``fn(*1-D inputs, **scalar params)`` with the module's broadcasting rules."""
    values = [_values(x) for x in inputs]
    shape = values[0].shape
    if any(v.shape != shape for v in values) or len(shape) not in (1, 2):
        raise ValueError(f"inputs must be 1-D or 2-D of one shape: {[v.shape for v in values]}")
    arrays = {k: np.atleast_1d(np.asarray(p)) for k, p in params.items() if np.ndim(p) > 0}
    sizes = {a.size for a in arrays.values()}
    if len(sizes) > 1:
        raise ValueError(f"parameter arrays differ in length: {sorted(sizes)}")
    scalars = {k: p.item() if isinstance(p, np.generic) else p
               for k, p in params.items() if np.ndim(p) == 0}
    if not arrays:
        if len(shape) == 1:
            return fn(*values, **scalars)
        cols = [fn(*(v[:, j] for v in values), **scalars) for j in range(shape[1])]
        return tuple(np.column_stack([c[i] for c in cols]) for i in range(len(cols[0])))
    size = sizes.pop()
    combos = [{**scalars, **{k: a[i].item() for k, a in arrays.items()}} for i in range(size)]
    if len(shape) == 2:  # one series per column, each with its own parameters
        if shape[1] != size:
            raise ValueError(f"{shape[1]} columns but {size} parameter sets")
        cols = [fn(*(v[:, j] for v in values), **c) for j, c in enumerate(combos)]
        return tuple(np.column_stack([c[i] for c in cols]) for i in range(len(cols[0])))
    keys = [tuple(sorted(c.items())) for c in combos]
    unique = list(dict.fromkeys(keys))
    where = {key: i for i, key in enumerate(unique)}
    # Memoized on the inputs' content across the chunks of a sweep (see _memo).
    digest = tuple(_memo.digest(v) for v in values)
    done = [_memo.cached((fn, key, digest), partial(fn, *values, **dict(key))) for key in unique]
    # One gather per output (not one masked assignment per distinct set): C-ordered (n, K).
    index = np.fromiter((where[key] for key in keys), dtype=np.intp, count=size)
    return tuple(np.take(np.column_stack([d[i] for d in done]), index, axis=1)
                 for i in range(len(done[0])))


def _window(n: Any, what: str, least: int = 1) -> None:
    if np.any(np.asarray(n) < least):
        raise ValueError(f"{what} must be >= {least}: {n!r}")


def _out(v: np.ndarray) -> np.ndarray:
    return np.empty(v.shape[0])


# -- per-series computations (1-D in, tuple of 1-D out) -------------------------------
def _ema1(v: np.ndarray, n: int, settle: float) -> tuple[np.ndarray]:
    out = _out(v)
    _k().smooth(v, n, ema_warmup(n, settle), 2.0 / (n + 1), out)
    return (out,)


def _wma1(v: np.ndarray, n: int) -> tuple[np.ndarray]:
    out = _out(v)
    _k().wma(v, n, out)
    return (out,)


def _mean_std1(v: np.ndarray, n: int, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    mean, std = _out(v), _out(v)
    _k().mean_std(v, n, ddof, mean, std)
    return mean, std


def _std1(v: np.ndarray, n: int, ddof: int) -> tuple[np.ndarray]:
    return (_mean_std1(v, n, ddof)[1],)


def _bands1(v: np.ndarray, n: int, k: float, ddof: int) -> tuple[np.ndarray, ...]:
    mean, std = _mean_std1(v, n, ddof)
    return mean, mean + k * std, mean - k * std


def _zscore1(v: np.ndarray, n: int, ddof: int) -> tuple[np.ndarray]:
    mean, std = _mean_std1(v, n, ddof)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (v - mean) / std
    z[std == 0] = np.nan  # a flat window has no scale
    return (z,)


def _atr1(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int,
          settle: float) -> tuple[np.ndarray]:
    k = _k()
    tr, out = _out(close), _out(close)
    k.true_range(high, low, close, tr)
    k.smooth(tr, n, wilder_warmup(n, settle), 1.0 / n, out)
    return (out,)


def _macd1(v: np.ndarray, fast: int, slow: int, signal: int,
           settle: float) -> tuple[np.ndarray, ...]:
    line = _ema1(v, fast, settle)[0] - _ema1(v, slow, settle)[0]
    sig = _ema1(line, signal, settle)[0]
    return line, sig, line - sig


def _rsi_wilder1(v: np.ndarray, n: int, settle: float) -> tuple[np.ndarray]:
    k = _k()
    delta = np.diff(v, prepend=np.nan)  # bar 0 has no change: NaN, so its windows are NaN
    gain = np.where(delta > 0, delta, 0.0)
    loss = np.where(delta < 0, -delta, 0.0)
    gain[np.isnan(delta)] = np.nan
    loss[np.isnan(delta)] = np.nan
    g, lo = _out(v), _out(v)
    m = wilder_warmup(n, settle)
    k.smooth(gain, n, m, 1.0 / n, g)
    k.smooth(loss, n, m, 1.0 / n, lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(lo == 0, np.where(g == 0, 50.0, 100.0), 100.0 - 100.0 / (1.0 + g / lo))
    out[np.isnan(g) | np.isnan(lo)] = np.nan
    return (out,)


def _ols1(y: np.ndarray, x: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    beta, alpha, resid = _out(y), _out(y), _out(y)
    _k().ols(y, x, n, beta, alpha, resid)
    return beta, alpha, resid


# -- public helpers -------------------------------------------------------------------
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


def ema(x: ArrayLike, n: int | np.ndarray, settle: float = SETTLE) -> np.ndarray:
    """Exponential moving average, window-local.

    ``e = (1 - a) e + a x_t`` with ``a = 2 / (n + 1)``, seeded at the start of a
    trailing window of ``k = ema_warmup(n) = 7n + 6`` bars with the mean of its
    first ``n`` values, so the value at bar ``t`` depends on bars ``t-k+1 .. t``
    only. Equals pandas ``ewm(span=n, adjust=False)`` up to the seed's remaining
    weight ``(1 - a)^(k-n) <= exp(-settle)``.

    Parameters
    ----------
    x
        Prices ``(n_bars,)`` or ``(n_bars, c)``.
    n
        Span in bars (>= 1), or one per combination.
    settle
        Convergence in time constants (default 12).

    Returns
    -------
    numpy.ndarray
        NaN for the first ``k - 1`` bars and wherever the window holds a NaN.
    """
    _window(n, "ema span")
    return _broadcast([x], {"n": n, "settle": settle}, _ema1)[0]


def wma(x: ArrayLike, n: int | np.ndarray) -> np.ndarray:
    """Linearly weighted moving average: ``sum(i x_{t-n+i}, i=1..n) / (n (n+1) / 2)``.

    The newest bar weighs ``n``, the oldest 1. Warmup ``n``; NaN before and
    wherever the window holds a NaN.
    """
    _window(n, "wma window")
    return _broadcast([x], {"n": n}, _wma1)[0]


def rolling_std(x: ArrayLike, n: int | np.ndarray, ddof: int = 1) -> np.ndarray:
    """Standard deviation over the last ``n`` bars: ``sqrt(sum((x - mean)^2) / (n - ddof))``.

    ``ddof=1`` (default) is the sample deviation, as pandas ``rolling().std()``;
    ``ddof=0`` the population one. Two-pass per window (accurate on prices).
    Warmup ``n``; NaN before, wherever the window holds a NaN, and if ``n <= ddof``.
    """
    _window(n, "rolling_std window")
    return _broadcast([x], {"n": n, "ddof": int(ddof)}, _std1)[0]


def bollinger(x: ArrayLike, n: int | np.ndarray = 20, k: float | np.ndarray = 2.0,
              ddof: int = 0) -> Bands:
    """Bollinger bands: ``mid = mean(x, n)``, ``upper/lower = mid ± k * std(x, n)``.

    ``ddof=0`` (default) is Bollinger's population deviation; pass ``ddof=1``
    to match pandas ``rolling().std()``. ``n`` and ``k`` broadcast (one per
    combination). ``mid`` equals :func:`sma` to rounding (not bit for bit).
    Warmup ``n``; NaN before and wherever the window holds a NaN.
    """
    _window(n, "bollinger window")
    return Bands(*_broadcast([x], {"n": n, "k": k, "ddof": int(ddof)}, _bands1))


def zscore(x: ArrayLike, n: int | np.ndarray, ddof: int = 1) -> np.ndarray:
    """``(x_t - mean) / std`` over the last ``n`` bars (the current bar included).

    ``ddof`` as in :func:`rolling_std` (default 1, pandas' convention). Warmup
    ``n``; NaN before, wherever the window holds a NaN, and on a flat window.
    """
    _window(n, "zscore window", 2)
    return _broadcast([x], {"n": n, "ddof": int(ddof)}, _zscore1)[0]


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int | np.ndarray = 14,
        settle: float = SETTLE) -> np.ndarray:
    """Average true range with Wilder's smoothing, window-local.

    ``TR_t = max(h_t - l_t, |h_t - c_{t-1}|, |l_t - c_{t-1}|)`` (NaN at bar 0),
    smoothed with ``a = 1/n`` from the mean of the first ``n`` ranges of a
    trailing window of ``wilder_warmup(n) = 13n`` ranges: the value at bar ``t``
    depends on ``atr_warmup(n) = 13n + 1`` bars. Equals pandas
    ``tr.ewm(alpha=1/n, adjust=False)`` seeded with the SMA up to ``exp(-settle)``.
    """
    _window(n, "atr window")
    return _broadcast([high, low, close], {"n": n, "settle": settle}, _atr1)[0]


def macd(x: ArrayLike, fast: int | np.ndarray = 12, slow: int | np.ndarray = 26,
         signal: int | np.ndarray = 9, settle: float = SETTLE) -> Macd:
    """MACD: ``line = ema(x, fast) - ema(x, slow)``, ``signal = ema(line, signal)``, ``hist``.

    Built from :func:`ema`, so window-local: declare
    ``macd_warmup(fast, slow, signal)`` bars (256 for 12/26/9). NaN before and
    wherever a window holds a NaN.
    """
    for p, what in ((fast, "macd fast"), (slow, "macd slow"), (signal, "macd signal")):
        _window(p, what)
    return Macd(*_broadcast([x], {"fast": fast, "slow": slow, "signal": signal,
                                  "settle": settle}, _macd1))


def rsi_wilder(x: ArrayLike, n: int | np.ndarray = 14, settle: float = SETTLE) -> np.ndarray:
    """Wilder's RSI (0–100): gains and losses smoothed with ``a = 1/n``, window-local.

    ``100 - 100 / (1 + G/L)`` (100 when ``L = 0``, 50 when both are 0), ``G``
    and ``L`` seeded with the mean of the first ``n`` changes of a trailing
    window of ``13n`` changes: declare ``rsi_wilder_warmup(n) = 13n + 1``. The
    simple-average form stays :func:`rsi`.
    """
    _window(n, "rsi_wilder window")
    return _broadcast([x], {"n": n, "settle": settle}, _rsi_wilder1)[0]


def rolling_ols(y: ArrayLike, x: ArrayLike, n: int | np.ndarray) -> Ols:
    """Least squares of ``y`` on ``x`` over the last ``n`` bars: the hedge ratio.

    ``beta = sum((x - mx)(y - my)) / sum((x - mx)^2)``, ``alpha = my - beta mx``,
    ``resid_t = y_t - alpha - beta x_t`` (the spread of a pairs trade; feed it to
    :func:`zscore`). Warmup ``n``; NaN before, wherever the window holds a NaN,
    and when ``x`` is flat over the window.
    """
    _window(n, "rolling_ols window", 2)
    return Ols(*_broadcast([y, x], {"n": n}, _ols1))
