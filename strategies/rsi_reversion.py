"""RSI mean reversion: buy oversold, sell once it is overbought."""

from __future__ import annotations

import pandas as pd

from tradelab.errors import ParameterError
from tradelab.strategy.base import Param, Signals, Strategy
from tradelab.strategy.indicators import above, below, rsi


class RsiReversion(Strategy):
    """Long while RSI is below ``lower``; flat once it rises above ``upper``."""

    name = "rsi_reversion"
    description = "Buy when RSI(window) < lower; sell when RSI(window) > upper."
    vectorized_params = True
    numpy_columns = True  # signals only index columns and use the numpy indicator helpers

    window = Param(14, low=2, high=250, doc="RSI lookback (bars)")
    lower = Param(30.0, low=0.0, high=100.0, doc="oversold level: entry below it")
    upper = Param(70.0, low=0.0, high=100.0, doc="overbought level: exit above it")

    def validate_params(self) -> None:
        if self.lower >= self.upper:
            raise ParameterError(
                f"rsi_reversion: lower ({self.lower}) must be below upper ({self.upper})")

    @property
    def warmup(self) -> int:
        return int(self.window) + 1  # window price changes need window + 1 closes

    def signals(self, bars: pd.DataFrame) -> Signals:
        value = rsi(bars["close"], self.window)
        return Signals(below(value, self.lower), above(value, self.upper))
