"""Cross-sectional momentum rotation: the top N of a universe by 12-1 month momentum."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradelab.data.universe import Panel
from tradelab.errors import ParameterError
from tradelab.strategy.base import Param
from tradelab.strategy.portfolio import PortfolioStrategy


class MomentumRotation(PortfolioStrategy):
    """Each month, hold the ``top`` symbols with the best 12-1 month momentum, equal weight.

    Momentum at bar *t* is ``close[t - skip] / close[t - lookback] - 1``: the return over
    the last year leaving out the last month, whose short-term reversal would blur it
    (Jegadeesh & Titman). A symbol needs ``lookback`` bars of history to be ranked; with
    fewer ranked symbols than ``top`` the rest stays in cash. Ties go to the symbol
    listed first in the universe.
    """

    name = "momentum_rotation"
    description = "Top-N of a universe by 12-1 month momentum, equal weight, rebalanced monthly."
    universe = "sp20"
    rebalance = "M"

    top = Param(5, low=1, high=500, doc="symbols held")
    lookback = Param(252, low=2, high=5000, doc="momentum window (bars, ~12 months)")
    skip = Param(21, low=0, high=5000, doc="most recent bars left out (~1 month)")

    def validate_params(self) -> None:
        if self.skip >= self.lookback:
            raise ParameterError(
                f"momentum_rotation: skip ({self.skip}) must be smaller than lookback "
                f"({self.lookback})")

    @property
    def warmup(self) -> int:
        return int(self.lookback) + 1

    @property
    def decision_window(self) -> int:
        # The last row reads close and listed at t - lookback and close at t - skip, nothing
        # older and no state: its warmup is all the engine needs to hand it.
        return self.warmup

    def weights(self, panel: Panel) -> pd.DataFrame:
        close = panel.close
        # Listed at t - lookback, so a held (ffilled) price never stands in for history.
        start = close.shift(int(self.lookback)).where(panel.listed.shift(int(self.lookback),
                                                                        fill_value=False))
        momentum = close.shift(int(self.skip)) / start - 1.0
        rank = momentum.rank(axis=1, ascending=False, method="first")
        held = (rank <= int(self.top)).to_numpy()
        return pd.DataFrame(np.where(held, 1.0 / int(self.top), 0.0), index=close.index,
                            columns=close.columns)
