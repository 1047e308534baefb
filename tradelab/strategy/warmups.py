"""Warmup rules of the window-local recursive indicators (see :mod:`tradelab.strategy.indicators_more`).

The value at bar ``t`` of ``ema``/``atr``/``macd``/``rsi_wilder`` is computed from a
fixed trailing window: ``n`` values for the seed (their mean), then
``ceil(settle / alpha)`` recursion steps, after which the seed keeps a weight of at
most ``exp(-settle)``. A strategy declares the bars its last signal reads as
``warmup``; these functions give them.
"""

from __future__ import annotations

import math

#: Default convergence, in time constants ``1/alpha``: the seed's weight is at most ``exp(-SETTLE)``.
SETTLE = 12.0


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
