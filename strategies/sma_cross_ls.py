"""SMA trend, long and short, with an ATR stop-loss."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradelab.errors import ParameterError
from tradelab.strategy.base import Param, Signals, Strategy
from tradelab.strategy.indicators import above, atr, atr_warmup, below, sma


class SmaCrossLS(Strategy):
    """Long while SMA(fast) is above SMA(slow), short while it is below.

    The declared stop-loss is ``atr_k`` average true ranges (Wilder, ``atr_n`` bars)
    below a long's entry fill (above a short's), as the fraction
    ``atr_k * atr / close`` of the bar the entry is decided on (``Signals.sl_stop``).
    The flags state the trend on every bar, so after a stop the position re-opens at
    the next fill while the trend holds, and with ``percent`` sizing (where one order
    cannot reverse, see :mod:`tradelab.research.conventions`) the other side opens
    the bar after a cross closed the position.
    """

    name = "sma_cross_ls"
    description = ("Long while SMA(fast) > SMA(slow), short while below; "
                   "stop-loss atr_k ATRs from the entry.")
    direction = "both"
    vectorized_params = True
    numpy_columns = True  # signals only index columns and use the numpy indicator helpers

    fast = Param(20, low=2, high=500, doc="fast SMA window (bars)")
    slow = Param(50, low=3, high=1000, doc="slow SMA window (bars)")
    atr_n = Param(14, low=1, high=200, doc="ATR smoothing period (bars, Wilder)")
    atr_k = Param(3.0, low=0.1, high=20.0, doc="stop distance in ATRs")

    def validate_params(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(
                f"sma_cross_ls: fast ({self.fast}) must be smaller than slow ({self.slow})")

    @property
    def warmup(self) -> int:
        # the ATR's convergence window (13n + 1 bars) or the slow average, whichever is longer
        return max(int(self.slow), atr_warmup(int(self.atr_n)))

    def signals(self, bars: pd.DataFrame) -> Signals:
        close = np.asarray(bars["close"], dtype=float)
        fast, slow = sma(close, self.fast), sma(close, self.slow)
        ranges = atr(bars["high"], bars["low"], close, self.atr_n)
        k = np.asarray(self.atr_k, dtype=float)
        with np.errstate(invalid="ignore"):
            stop = k * ranges / (close[:, None] if ranges.ndim == 2 else close)
        return Signals(above(fast, slow), below(fast, slow), sl_stop=stop)
