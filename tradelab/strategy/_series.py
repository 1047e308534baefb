"""Broadcasting and the per-series computations behind :mod:`tradelab.strategy.indicators_more`.

Each ``_<name>1`` takes 1-D float64 series and scalar parameters and returns a
tuple of 1-D results; :func:`broadcast` applies one over parameter arrays and 2-D
inputs with the indicators' conventions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from tradelab.strategy import _memo
from tradelab.strategy.warmups import ema_warmup, wilder_warmup

# Not imported from tradelab.strategy.indicators, which imports this module's users
# at its end: either module can then be imported first.
ArrayLike: TypeAlias = np.ndarray | pd.Series
_F8 = np.dtype(float)

_K: list[Any] = [None]


def _values(x: ArrayLike | pd.DataFrame) -> np.ndarray:
    if type(x) is np.ndarray and x.dtype == _F8:  # the engine's window columns: no conversion
        return x
    return np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x, dtype=float)


def _k() -> Any:
    # Loaded on first use, as the other kernels: importing numba costs ~0.15 s.
    if _K[0] is None:
        from tradelab.strategy import _kernels_more

        _K[0] = _kernels_more
    return _K[0]


# -- broadcasting ---------------------------------------------------------------------
Fn = Callable[..., tuple[np.ndarray, ...]]


def broadcast(inputs: list[ArrayLike], params: dict[str, Any], fn: Fn) -> tuple[np.ndarray, ...]:
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


def check_window(n: Any, what: str, least: int = 1) -> None:
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
