"""The NumPy forms the engine calls on every rebalance give the pandas formulations'
values exactly: ``momentum_rotation``'s weights (ties, NaN, zero and infinite momentum)
and :meth:`PortfolioStrategy.target_weights`'s normalization (columns, dtypes, NaN)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tradelab.data.universe import Panel, load_panel
from tradelab.strategy.portfolio import PortfolioStrategy, discover_portfolio_strategies

ROOT = Path(__file__).resolve().parents[2]
Rotation = discover_portfolio_strategies([ROOT / "strategies"])["momentum_rotation"]


def pandas_momentum(strategy: PortfolioStrategy, panel: Panel) -> pd.DataFrame:
    """momentum_rotation's weights as frames: shift, where, rank(method="first")."""
    lookback, skip, top = (int(strategy.params[k]) for k in ("lookback", "skip", "top"))
    close = panel.close
    start = close.shift(lookback).where(panel.listed.shift(lookback, fill_value=False))
    momentum = close.shift(skip) / start - 1.0
    rank = momentum.rank(axis=1, ascending=False, method="first")
    return pd.DataFrame(np.where((rank <= top).to_numpy(), 1.0 / top, 0.0),
                        index=close.index, columns=close.columns)


def normalized(raw: pd.DataFrame, panel: Panel) -> pd.DataFrame:
    """target_weights' normalization as frames: reindex, astype, fillna."""
    w = raw.reindex(columns=list(panel.symbols)).astype("float64").fillna(0.0)
    w.index = panel.index
    return w


def _panel(close: np.ndarray, listed: np.ndarray) -> Panel:
    t = pd.date_range("2020-01-01", periods=len(close), freq="D", tz="UTC", name="time")
    names = [f"S{j}" for j in range(close.shape[1])]
    c = pd.DataFrame(close, index=t, columns=names)
    listed_frame = pd.DataFrame(listed, index=t, columns=names)
    return Panel(c, c, listed_frame & c.notna(), listed_frame, True)


# Few distinct prices, zeros and NaN: ties, 0/0, x/0 and unranked symbols are common.
prices = st.sampled_from([0.0, 1.0, 2.0, 2.5, 4.0, np.nan])


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(1, 40), k=st.integers(1, 7))
def test_momentum_weights_equal_the_pandas_formulation(data: st.DataObject, n: int,
                                                       k: int) -> None:
    close = data.draw(arrays(np.float64, (n, k), elements=prices))
    listed = data.draw(arrays(np.bool_, (n, k)))
    lookback = data.draw(st.integers(2, 12))
    skip = data.draw(st.integers(0, lookback - 1))
    strategy = Rotation(top=data.draw(st.integers(1, 8)), lookback=lookback, skip=skip)
    panel = _panel(close, listed)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = pandas_momentum(strategy, panel)
    pd.testing.assert_frame_equal(strategy.weights(panel), want)


def test_momentum_weights_on_sp20_equal_the_pandas_formulation() -> None:
    panel = load_panel("sp20", start="1995-01-01", end="2005-12-31")
    for params in ({}, {"top": 3, "lookback": 60, "skip": 5}, {"top": 25, "lookback": 30}):
        strategy = Rotation(**params)
        got = strategy.weights(panel)
        pd.testing.assert_frame_equal(got, pandas_momentum(strategy, panel))
        assert (got.to_numpy() > 0).sum() > 0


class Given(PortfolioStrategy):
    """Returns what it is given (the normalization's input)."""

    name = "given"

    def __init__(self, make: Callable[[Panel], pd.DataFrame]) -> None:
        super().__init__()
        self.make = make

    def weights(self, panel: Panel) -> pd.DataFrame:
        return self.make(panel)


@pytest.mark.parametrize("make", [
    lambda p: p.close.notna() * 0.25,                          # the panel's own columns
    lambda p: (p.close.notna() * 0.25).rename_axis("sym", axis=1),   # a named axis
    lambda p: (p.close.notna() * 0.25)[["S2", "S0", "S1", "S3"]],    # reordered
    lambda p: (p.close.notna() * 0.5)[["S1", "S3"]],            # a subset (rest 0)
    lambda p: p.close.notna().astype(int)[["S0"]],              # ints
    lambda p: (p.close.notna() & (p.close > 1))[["S0"]],        # bools
    lambda p: (p.close > 1).astype(float).where(p.close > 2) * 0.25,  # NaN -> 0
    lambda p: pd.DataFrame({"S0": [None] * len(p)}, index=range(len(p))),  # objects
])
def test_target_weights_normalize_like_the_frame_methods(make) -> None:
    rng = np.random.default_rng(3)
    panel = _panel(rng.uniform(0.5, 3.0, (30, 4)), np.ones((30, 4), dtype=bool))
    strategy = Given(make)
    got = strategy.target_weights(panel)
    pd.testing.assert_frame_equal(got, normalized(make(panel), panel))
    assert got.columns.name == make(panel).columns.name
