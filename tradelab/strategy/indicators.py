"""Causal indicators on numpy arrays that broadcast over parameter arrays.

Each function takes a price array of shape ``(n,)`` (or ``(n, k)``) and a window
that is an int or an array of ``k`` ints (one per parameter combination). With
an array window the result is ``(n, k)``; each distinct window is computed once
per series and process (the sweep memo, :mod:`tradelab.strategy._memo`, keeps a
window computed for one chunk of a sweep for the next chunks), which is what
makes a 10,000-combination sweep cost about as much as its distinct windows.
Values before a window is full are NaN; comparisons with NaN are False, so no
signal fires during warmup.

The moving average keeps its per-window summation (numpy's pairwise order) rather
than a running sum: a running sum carries float residue from earlier bars, so the
full-history value would differ in the last bits from the live engine's value on
the last ``warmup`` bars (see ``_window_mean``). The added helpers (``ema``,
``wma``, ``rolling_std``, ``bollinger``, ``atr``, ``macd``, ``rsi_wilder``,
``zscore``, ``rolling_ols`` and their ``*_warmup`` rules) live in
:mod:`tradelab.strategy.indicators_more` and are importable from here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeAlias, overload

import numpy as np
import pandas as pd

from tradelab.strategy import _memo

ArrayLike: TypeAlias = np.ndarray | pd.Series


_F8 = np.dtype(float)
_BOOL = np.dtype(bool)
_ndarray = np.ndarray

# The numba kernels of the common cases (see tradelab.strategy._kernels), loaded on
# first use: importing numba costs ~0.15 s, which a process that never computes an
# indicator should not pay. ``[None]`` = not loaded yet; ``[False]`` = unavailable
# (then every indicator takes its numpy formula, which gives the same bits). The
# kernels themselves are also bound to module globals once loaded (``None`` before),
# which is what the per-bar fast paths test.
_NB: list = [None]
_WINDOW_MEAN: Callable[[np.ndarray, int, np.ndarray], None] | None = None
_CROSSED_ABOVE: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None
_CROSSED_BELOW: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None
_empty = np.empty


def _load_kernels() -> object:
    global _WINDOW_MEAN, _CROSSED_ABOVE, _CROSSED_BELOW
    try:
        from tradelab.strategy import _kernels as k
    except ImportError:  # pragma: no cover - numba is a dependency (vectorbt needs it)
        k = False  # type: ignore[assignment]
    else:
        _WINDOW_MEAN, _CROSSED_ABOVE, _CROSSED_BELOW = k.window_mean, k.crossed_above, k.crossed_below
    _NB[0] = k
    return k


def warm_up() -> None:
    """Compile (or load from the disk cache) the kernels for the engine's argument types.

    The live engine calls this when it builds a strategy runner, so that the first
    bar evaluated never waits for numba: its window columns are read-only views.
    """
    k = _NB[0]
    if k is None:
        k = _load_kernels()
    if not k:
        return
    ro = np.arange(12.0).reshape(2, 6).view()
    ro.flags.writeable = False
    col = ro[1, 1:]  # what the engine's window columns are: read-only, contiguous
    fast, slow = sma(col, 2), sma(col, 3)  # (other argument types compile on first use)
    crossed_above(fast, slow)
    crossed_below(fast, slow)


def _values(x: ArrayLike | pd.DataFrame) -> np.ndarray:
    if type(x) is _ndarray and x.dtype == _F8:  # the engine's window columns: no conversion
        return x
    return np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x, dtype=float)


def _by_window(x: ArrayLike, window: int | np.ndarray,
               fn: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    values = _values(x)
    if type(window) is int and values.ndim == 1:  # the live engine's per-bar case, kept cheap
        return fn(values, window)
    if np.ndim(window) == 0:
        if values.ndim == 1:
            return fn(values, int(window))
        return np.column_stack([fn(values[:, j], int(window)) for j in range(values.shape[1])])
    windows = np.asarray(window, dtype=int)
    if values.ndim == 1:
        # Each distinct window once (a sweep chunk has ~100 distinct windows over 500
        # columns), then one gather of whole rows into a (K, n) array returned
        # transposed: a column-major (n, K) result whose every combination is one
        # contiguous column. That is the layout the crossing kernel reads column by
        # column, pandas stores a frame's columns in (a memcpy instead of a
        # transposing copy) and vectorbt simulates column by column.
        # Across the chunks of a sweep, a window already computed on this very series
        # comes from the memo (tradelab.strategy._memo): the same array, not recomputed.
        unique, index = np.unique(windows, return_inverse=True)
        key = _memo.digest(values)
        done = np.stack([_memo.cached((fn, int(w), key), partial(_one, fn, values, int(w)))[0]
                         for w in unique])
        # (np.take with out= goes through a temporary copy: 3-4x slower here.)
        return np.take(done, index.reshape(-1), axis=0).T
    # one series per column, each with its own window
    if values.shape[1] != windows.size:
        raise ValueError(f"{values.shape[1]} columns but {windows.size} windows")
    out = np.empty((values.shape[0], windows.size))
    for j, w in enumerate(windows):
        out[:, j] = fn(values[:, j], int(w))
    return out


def _one(fn: Callable[[np.ndarray, int], np.ndarray], v: np.ndarray,
         w: int) -> tuple[np.ndarray]:
    return (fn(v, w),)


def _use_kernel(n: int, w: int) -> bool:
    """Whether :func:`_window_mean` of ``w`` over ``n`` values takes the numba kernel."""
    return 0 < w <= _BLOCK or (w > 0 and n - w < _FEW_BARS)


#: numpy's pairwise block (windows up to it are one block_sum in the kernel) and the
#: number of full windows under which a longer window still takes the kernel.
_BLOCK, _FEW_BARS = 128, 64


def _window_mean(v: np.ndarray, w: int) -> np.ndarray:
    # Each window is summed on its own (not by a running sum), so the value at a
    # bar is bit-identical whether computed on the full history or on just the
    # last `w` bars, which is what the live engine sees. Running sums (pandas
    # rolling, cumsum) carry float residue from earlier bars and can flip a
    # crossover decided by 1e-13, breaking research/live parity.
    #
    # The windows are a strided view built directly (``sliding_window_view`` and
    # ``as_strided`` spend ~10 µs in Python checks, which dominated a 31-bar window
    # evaluated every bar), summed with ``np.add.reduce`` and divided by ``w``: the
    # very operations ``ndarray.mean(axis=1)`` performs (same pairwise summation
    # over the same contiguous rows, then a true division by the count), so every
    # value is bit-identical to the former ``sliding_window_view(v, w).mean(axis=1)``.
    # Windows of at most 128 values, and longer ones over few bars (the live
    # engine's per-bar case), go to one numba kernel that repeats numpy's pairwise
    # additions and the division in the same order (see tradelab.strategy._kernels):
    # the same bits, one call instead of six. A long window over a long history
    # stays with numpy, whose pairwise loop is faster there.
    k = _NB[0]
    if k is None:
        k = _load_kernels()
    if k and _use_kernel(v.shape[0], w) and v.dtype == _F8:  # one compiled call, the same bits
        out = np.empty(v.shape[0])
        k.window_mean(v, w, out)
        return out
    n = v.shape[0]
    out = np.empty(n)
    if w > n:
        out.fill(np.nan)
        return out
    out[:w - 1] = np.nan
    tail = out[w - 1:]
    step = v.strides[0]
    shape, strides = (n - w + 1, w), (step, step)
    # A 1-D array with an 8-byte stride is contiguous: its buffer is the window data.
    windows = (np.ndarray(shape, _F8, v, 0, strides) if step == 8 and v.dtype == _F8
               else np.lib.stride_tricks.as_strided(v, shape, strides, writeable=False))
    np.add.reduce(windows, axis=1, out=tail)
    np.true_divide(tail, w, out=tail)
    return out


def _sma1(v: np.ndarray, w: int) -> np.ndarray:
    return _window_mean(v, w)


def _max1(v: np.ndarray, w: int) -> np.ndarray:
    return pd.Series(v).rolling(w, min_periods=w).max().to_numpy()


def _min1(v: np.ndarray, w: int) -> np.ndarray:
    return pd.Series(v).rolling(w, min_periods=w).min().to_numpy()


def _rsi1(v: np.ndarray, w: int) -> np.ndarray:
    # Cutler's RSI (simple averages of gains and losses): finite memory of w+1
    # bars, so a rolling window in the live engine reproduces it exactly, unlike
    # Wilder's exponential smoothing whose value depends on all history.
    delta = np.diff(v, prepend=np.nan)
    g = _window_mean(np.where(delta > 0, delta, 0.0), w)
    lo = _window_mean(np.where(delta < 0, -delta, 0.0), w)
    g[: w] = np.nan  # the first delta is undefined
    lo[: w] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = np.where(lo == 0, np.where(g == 0, 50.0, 100.0), 100.0 - 100.0 / (1.0 + g / lo))
    return np.where(np.isnan(g) | np.isnan(lo), np.nan, rsi)


def sma(x: ArrayLike, window: int | np.ndarray) -> np.ndarray:
    """Simple moving average over ``window`` bars ending at each bar."""
    if type(x) is _ndarray and type(window) is int and x.ndim == 1 and x.dtype == _F8:
        # what _by_window does for this case, minus 3 calls (and _window_mean's checks)
        kernel = _WINDOW_MEAN
        if kernel is not None and (0 < window <= _BLOCK
                                   or (window > 0 and x.shape[0] - window < _FEW_BARS)):
            out = _empty(x.shape[0])
            kernel(x, window, out)
            return out
        return _window_mean(x, window)
    return _by_window(x, window, _sma1)


def rolling_max(x: ArrayLike, window: int | np.ndarray) -> np.ndarray:
    """Highest value over ``window`` bars ending at each bar."""
    return _by_window(x, window, _max1)


def rolling_min(x: ArrayLike, window: int | np.ndarray) -> np.ndarray:
    """Lowest value over ``window`` bars ending at each bar."""
    return _by_window(x, window, _min1)


def rsi(x: ArrayLike, window: int | np.ndarray) -> np.ndarray:
    """Relative strength index (0–100) with simple averages over ``window`` changes."""
    return _by_window(x, window, _rsi1)


def shift(x: np.ndarray, periods: int = 1) -> np.ndarray:
    """Values ``periods`` bars earlier (NaN where there is none); causal for periods > 0."""
    x = np.asarray(x, dtype=float)
    out = np.full(x.shape, np.nan)
    if periods < len(x):
        out[periods:] = x[: len(x) - periods]
    return out


@overload
def _as_column(x: np.ndarray, like: np.ndarray) -> np.ndarray: ...
@overload
def _as_column(x: np.ndarray | float, like: np.ndarray) -> np.ndarray | float: ...
def _as_column(x: np.ndarray | float, like: np.ndarray) -> np.ndarray | float:
    # A bool, not the call in the ``if``: numpy types ``isscalar`` as a TypeGuard whose
    # union would replace ``float`` in x's type.
    scalar = np.isscalar(x)
    if not scalar:
        x = np.asarray(x, dtype=float)
    if (isinstance(x, np.ndarray) and x.ndim == 1 and like.ndim == 2
            and x.shape[0] == like.shape[0] and x.shape[0] != like.shape[1]):
        return x[:, None]  # a price series against per-combination indicators
    return x


def _same_1d(a: object, b: object) -> bool:
    # The common case (two indicator series of one parameter set, as in the live
    # engine) computed with plain slices: the same comparisons on the same values
    # as the general path (shift = slice, NaN compares False, so the first bar and
    # warmup rows are False), without its ~15 µs of broadcasting and errstate calls.
    return (type(a) is _ndarray and type(b) is _ndarray and a.ndim == 1
            and a.shape == b.shape and a.dtype == _F8 and b.dtype == _F8)


def crossed_above(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """True where ``a`` moves from at-or-below ``b`` to above it on this bar."""
    return _cross(a, b, True)


def crossed_below(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """True where ``a`` moves from at-or-above ``b`` to below it on this bar."""
    return _cross(a, b, False)


def _cross(a: np.ndarray, b: np.ndarray | float, up: bool) -> np.ndarray:
    kernel = _CROSSED_ABOVE if up else _CROSSED_BELOW
    if (kernel is not None and type(a) is _ndarray and type(b) is _ndarray  # _same_1d, inline
            and a.ndim == 1 and a.shape == b.shape and a.dtype == _F8 and b.dtype == _F8):
        out = _empty(a.shape[0], _BOOL)
        kernel(a, b, out)
        return out
    if _same_1d(a, b):
        k = _NB[0]
        if k is None:
            k = _load_kernels()
        out = np.empty(a.shape[0], bool)
        if k:  # one compiled call: the same comparisons, element by element
            (k.crossed_above if up else k.crossed_below)(a, b, out)
            return out
        now, before = (np.greater, np.less_equal) if up else (np.less, np.greater_equal)
        out[:1] = False  # no previous bar: shift() gives NaN there, and NaN compares False
        np.logical_and(now(a[1:], b[1:]), before(a[:-1], b[:-1]), out=out[1:])  # type: ignore[index]
        return out
    a = np.asarray(a, dtype=float)
    b = _as_column(b, a)
    a = _as_column(a, np.asarray(b)) if isinstance(b, np.ndarray) else a
    shape = np.broadcast(a, b).shape
    kern: Any = _NB[0] if _NB[0] is not None else _load_kernels()
    if kern and len(shape) == 2:  # a sweep's (bars, combinations): one compiled pass
        # Column by column, into a column-major result, when an operand is column-major
        # (the averages of a sweep, see _by_window): every read and write is sequential.
        by_column = any(isinstance(x, np.ndarray) and x.ndim == 2 and x.flags.f_contiguous
                        and not x.flags.c_contiguous for x in (a, b))
        out = np.empty(shape, bool, order="F" if by_column else "C")
        kern.crossed_2d(np.broadcast_to(a, shape), np.broadcast_to(np.asarray(b, dtype=float), shape),
                        up, by_column, out)
        return out
    prev_a, prev_b = shift(a), shift(np.broadcast_to(b, shape))
    with np.errstate(invalid="ignore"):
        if up:
            return (a > b) & (prev_a <= prev_b)
        return (a < b) & (prev_a >= prev_b)


def above(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """``a > b`` broadcasting a price series against per-combination columns."""
    a = np.asarray(a, dtype=float)
    b = _as_column(b, a)
    a = _as_column(a, np.asarray(b)) if isinstance(b, np.ndarray) else a
    with np.errstate(invalid="ignore"):
        return a > b


def below(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """``a < b`` broadcasting a price series against per-combination columns."""
    a = np.asarray(a, dtype=float)
    b = _as_column(b, a)
    a = _as_column(a, np.asarray(b)) if isinstance(b, np.ndarray) else a
    with np.errstate(invalid="ignore"):
        return a < b


# The recursive and statistical helpers live in their own module (and kernels);
# strategies import every helper from here. Imported last: it uses _values above.
from tradelab.strategy.indicators_more import (  # noqa: E402
    SETTLE,
    Bands,
    Macd,
    Ols,
    atr,
    atr_warmup,
    bollinger,
    ema,
    ema_warmup,
    macd,
    macd_warmup,
    rolling_ols,
    rolling_std,
    rsi_wilder,
    rsi_wilder_warmup,
    wilder_warmup,
    wma,
    zscore,
)

__all__ = [
    "SETTLE", "Bands", "Macd", "Ols", "above", "atr", "atr_warmup", "below", "bollinger",
    "crossed_above", "crossed_below", "ema", "ema_warmup", "macd", "macd_warmup", "rolling_max",
    "rolling_min", "rolling_ols", "rolling_std", "rsi", "rsi_wilder", "rsi_wilder_warmup",
    "shift", "sma", "warm_up", "wilder_warmup", "wma", "zscore",
]
