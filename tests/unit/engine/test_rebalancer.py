"""The engine's Rebalancer, fed one time stamp at a time, builds research's panel and
decides on research's rebalance bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradelab.data.universe import Panel, load_universe
from tradelab.engine.rebalancer import Rebalancer
from tradelab.execution import Execution
from tradelab.interfaces import Bar
from tradelab.strategy.portfolio import PortfolioStrategy, rebalance_bars


class Trend(PortfolioStrategy):
    """Long the symbols above their 5-bar mean, equal weight (changes often)."""

    name = "trend_test"
    universe = ("KO", "PEP", "XOM")

    def weights(self, panel: Panel) -> pd.DataFrame:
        up = (panel.close > panel.close.rolling(5).mean()).astype(float)
        return up.div(up.sum(axis=1).clip(lower=1.0), axis=0)


@pytest.fixture(scope="module")
def bars() -> dict[str, pd.DataFrame]:
    out = load_universe(("KO", "PEP", "XOM"), "sample", "2011-01-01", "2011-06-30")
    out["XOM"] = out["XOM"].drop(out["XOM"].index[[3, 4, 40]])  # missing bars
    return out


def _feed(bars: dict[str, pd.DataFrame], desk: Rebalancer) -> list[bool]:
    index = sorted(set().union(*(b.index for b in bars.values())))
    decided = []
    for t in index:
        row = [Bar(s, t.to_pydatetime(), *b.loc[t, ["open", "high", "low", "close", "volume"]])
               for s, b in bars.items() if t in b.index]
        desk.add(t.to_pydatetime(), row)
        decided.append(desk.targets() is not None)
    return decided


def test_the_panel_equals_research_alignment(bars) -> None:
    from tradelab.data.universe import align

    desk = Rebalancer(Trend(), tuple(bars), Execution())
    _feed(bars, desk)
    ours, theirs = desk.panel(), align(bars)
    for name in ("close", "open", "tradable", "listed"):
        pd.testing.assert_frame_equal(getattr(ours, name), getattr(theirs, name),
                                      check_freq=False, check_names=False,
                                      check_index_type=False)  # ns vs the source's unit


@pytest.mark.parametrize("schedule", ["M", "W", 5, "change"])
def test_decisions_fall_on_research_rebalance_bars(bars, schedule) -> None:
    from tradelab.data.universe import align

    panel = align(bars)
    weights = Trend().target_weights(panel)
    expected = rebalance_bars(panel.index, schedule, weights)
    desk = Rebalancer(Trend(), tuple(bars), Execution(), schedule=schedule)
    got = np.array(_feed(bars, desk))
    assert got.sum() > 1
    np.testing.assert_array_equal(got, expected)


def test_bad_history_and_schedule_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="history = 0"):
        Rebalancer(Trend(), ("KO",), Execution(), history=0)
    with pytest.raises(Exception, match="rebalance = 'Q'"):
        Rebalancer(Trend(), ("KO",), Execution(), schedule="Q")
