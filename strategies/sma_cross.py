"""SMA crossover: long when the fast average crosses above the slow one."""

from __future__ import annotations

import pandas as pd

from tradelab.errors import ParameterError
from tradelab.strategy.base import Param, Signals, Strategy
from tradelab.strategy.indicators import crossed_above, crossed_below, sma


class SmaCross(Strategy):
    """Trend following on two simple moving averages of the close."""

    name = "sma_cross"
    description = "Buy when SMA(fast) crosses above SMA(slow); sell when it crosses below."
    vectorized_params = True
    numpy_columns = True  # signals only index columns and use the numpy indicator helpers

    fast = Param(10, low=2, high=500, doc="fast SMA window (bars)")
    slow = Param(30, low=3, high=1000, doc="slow SMA window (bars)")

    def validate_params(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(
                f"sma_cross: fast ({self.fast}) must be smaller than slow ({self.slow})")

    @property
    def warmup(self) -> int:
        return int(self.slow) + 1  # the cross compares this bar's averages with the last

    def signals(self, bars: pd.DataFrame) -> Signals:
        close = bars["close"]
        fast, slow = sma(close, self.fast), sma(close, self.slow)
        return Signals(crossed_above(fast, slow), crossed_below(fast, slow))

    def indicators(self, bars: pd.DataFrame) -> dict[str, pd.Series]:
        """The two averages the crossover compares (what the price chart draws)."""
        close = bars["close"]
        return {f"SMA({self.fast})": pd.Series(sma(close, self.fast), index=bars.index),
                f"SMA({self.slow})": pd.Series(sma(close, self.slow), index=bars.index)}
