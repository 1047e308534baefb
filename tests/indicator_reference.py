"""Reference formulas the indicators' fast paths must reproduce bit for bit."""

from __future__ import annotations

import numpy as np

from tradelab.strategy import indicators as ind


def reference_mean(v: np.ndarray, w: int) -> np.ndarray:
    """The rolling mean as numpy computes it on each full window (NaN before)."""
    out = np.full(v.shape, np.nan)
    if w <= len(v):
        out[w - 1:] = np.lib.stride_tricks.sliding_window_view(v, w).mean(axis=1)
    return out


def reference_cross(a: np.ndarray, b: np.ndarray, up: bool) -> np.ndarray:
    """``a`` crossing above (``up``) or below ``b``, from shifted copies."""
    prev_a, prev_b = ind.shift(a), ind.shift(b)
    with np.errstate(invalid="ignore"):
        return (a > b) & (prev_a <= prev_b) if up else (a < b) & (prev_a >= prev_b)
