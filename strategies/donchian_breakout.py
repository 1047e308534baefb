"""Donchian channel breakout (the Turtle entry): buy new highs, sell new lows."""

from __future__ import annotations

import pandas as pd

from tradelab.strategy.base import Param, Signals, Strategy
from tradelab.strategy.indicators import above, below, rolling_max, rolling_min, shift


class DonchianBreakout(Strategy):
    """Long when the close breaks the prior ``entry``-bar high; exit below the prior ``exit``-bar low."""

    name = "donchian_breakout"
    description = "Buy a close above the previous N-bar high; sell a close below the previous M-bar low."
    vectorized_params = True
    numpy_columns = True  # signals only index columns and use the numpy indicator helpers

    entry = Param(20, low=2, high=500, doc="breakout channel (bars)")
    exit = Param(10, low=2, high=500, doc="exit channel (bars)")

    @property
    def warmup(self) -> int:
        return max(int(self.entry), int(self.exit)) + 1  # channels exclude the current bar

    def signals(self, bars: pd.DataFrame) -> Signals:
        # Channels end at the previous bar so today's close is compared with history only.
        upper = shift(rolling_max(bars["high"], self.entry))
        lower = shift(rolling_min(bars["low"], self.exit))
        return Signals(above(bars["close"], upper), below(bars["close"], lower))

    def indicators(self, bars: pd.DataFrame) -> dict[str, pd.Series]:
        """The entry channel's top and the exit channel's bottom (previous bars' extremes)."""
        upper = shift(rolling_max(bars["high"], self.entry))
        lower = shift(rolling_min(bars["low"], self.exit))
        return {f"high({self.entry})": pd.Series(upper, index=bars.index),
                f"low({self.exit})": pd.Series(lower, index=bars.index)}
