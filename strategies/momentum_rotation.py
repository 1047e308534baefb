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
        # NumPy rather than shift/where/rank frames: the engine calls this on every
        # rebalance, where pandas' per-call overhead was most of the cost. The values are
        # pandas' (tests/property/test_portfolio_weights.py compares the two).
        close = panel.close.to_numpy(dtype=float)
        listed = panel.listed.to_numpy(dtype=bool)
        lookback, skip, top = int(self.lookback), int(self.skip), int(self.top)
        n = len(close)
        # Listed at t - lookback, so a held (ffilled) price never stands in for history.
        start = np.full_like(close, np.nan)
        if n > lookback:
            start[lookback:] = np.where(listed[:n - lookback], close[:n - lookback], np.nan)
        recent = np.full_like(close, np.nan)
        if n > skip:
            recent[skip:] = close[:n - skip]
        with np.errstate(divide="ignore", invalid="ignore"):
            momentum = recent / start - 1.0
        # Best first; a stable sort keeps ties in universe order (rank method="first") and
        # puts NaN (unranked) last.
        order = np.argsort(-momentum, axis=1, kind="stable")[:, :top]
        rows = np.arange(n)[:, None]
        held = np.zeros(close.shape, dtype=bool)
        held[rows, order] = ~np.isnan(momentum[rows, order])
        return pd.DataFrame(np.where(held, 1.0 / top, 0.0), index=panel.close.index,
                            columns=panel.close.columns)
