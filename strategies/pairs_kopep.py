"""Pairs trade on Coca-Cola / PepsiCo: z-score of the spread hedged by a rolling OLS beta."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradelab.data.universe import Panel
from tradelab.errors import ParameterError
from tradelab.strategy.base import Param
from tradelab.strategy.indicators_more import rolling_ols, zscore
from tradelab.strategy.portfolio import PortfolioStrategy


def spread_positions(z: np.ndarray, entry: float, exit_: float) -> np.ndarray:
    """The spread position (+1 long, -1 short, 0 flat) after each bar's z-score.

    Enter short when ``z > entry``, long when ``z < -entry``; leave when ``|z| < exit``;
    otherwise keep the last position (a NaN z-score keeps it too). The path dependence
    is why this is a loop: the position at *t* depends on every earlier crossing.
    """
    out = np.zeros(len(z))
    state = 0.0
    for t, v in enumerate(z):
        if np.isfinite(v):
            if state == 0.0:
                state = -1.0 if v > entry else 1.0 if v < -entry else 0.0
            elif abs(v) < exit_:
                state = 0.0
        out[t] = state
    return out


class PairsKoPep(PortfolioStrategy):
    """Market-neutral KO/PEP pair on log prices.

    ``beta`` is the rolling OLS slope of log(KO) on log(PEP) over ``window`` bars; the
    spread is the regression residual at the current bar and its z-score is taken over
    ``z_window`` bars. Long the spread (``+leg`` KO, ``-leg`` PEP) when ``z < -entry``,
    short it when ``z > entry``, flat when ``|z| < exit``. Weights are ±``leg`` (0.5 by
    default: gross 1, net 0) when the position is opened; the book is rebalanced only
    when the signal changes, so the legs drift with prices in between.
    """

    name = "pairs_kopep"
    description = "KO/PEP pairs trade: rolling-OLS hedged spread, enter |z| > 2, exit |z| < 0.5."
    universe = "kopep"
    rebalance = "change"  # trade when the signal changes; the legs drift in between
    max_gross = 1.0

    window = Param(60, low=10, high=2000, doc="rolling OLS window for the hedge ratio (bars)")
    z_window = Param(20, low=5, high=2000, doc="z-score window of the spread (bars)")
    entry = Param(2.0, low=0.1, high=10.0, doc="enter when |z| exceeds this")
    exit = Param(0.5, low=0.0, high=10.0, doc="exit when |z| falls below this")
    leg = Param(0.5, low=0.01, high=0.5, doc="weight of each leg")

    def validate_params(self) -> None:
        if self.exit >= self.entry:
            raise ParameterError(
                f"pairs_kopep: exit ({self.exit}) must be smaller than entry ({self.entry})")

    @property
    def warmup(self) -> int:
        return int(self.window) + int(self.z_window) - 1

    @property
    def required_symbols(self) -> tuple[str, ...]:
        return ("KO", "PEP")  # the two legs, read by name in weights

    @property
    def decision_window(self) -> None:
        # The spread position flips on threshold crossings and is held in between, so the
        # last row depends on the whole history (not only on the last warmup bars).
        return None

    def weights(self, panel: Panel) -> pd.DataFrame:
        y, x = np.log(panel.close["KO"].to_numpy()), np.log(panel.close["PEP"].to_numpy())
        resid = rolling_ols(y, x, int(self.window)).resid
        z = zscore(resid, int(self.z_window))
        pos = spread_positions(np.asarray(z, dtype=float), float(self.entry), float(self.exit))
        leg = float(self.leg)
        return pd.DataFrame({"KO": pos * leg, "PEP": -pos * leg}, index=panel.index)
