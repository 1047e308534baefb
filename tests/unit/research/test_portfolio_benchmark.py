"""A portfolio result's benchmark: equal-weight buy-and-hold of its universe."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tradelab.data.universe import align
from tradelab.research.portfolio import backtest_portfolio, portfolio_strategy
from tradelab.research.portfolio_result import equal_weight_hold

ROOT = Path(__file__).resolve().parents[3]


def _bars(closes: list[float], start: str) -> pd.DataFrame:
    index = pd.date_range(start, periods=len(closes), freq="D", tz="UTC")
    c = pd.Series(closes, index=index, dtype=float)
    return pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 1.0})


def test_each_symbol_gets_an_equal_share_from_its_first_close() -> None:
    # B lists two days late: its share is cash until then; A doubles, B rises by half.
    panel = align({"A": _bars([10, 12, 15, 20], "2024-01-01"),
                   "B": _bars([4, 6], "2024-01-03")})
    hold = equal_weight_hold(panel, 1_000.0)
    # A's 500 at 1x, 1.2x, 1.5x, 2x; B's 500 in cash, then at 1x (its first close), 1.5x
    assert hold.tolist() == pytest.approx([500 + 500, 600 + 500, 750 + 500, 1_000 + 750])


def test_the_stats_carry_the_benchmark_and_the_excess_return() -> None:
    strategy = portfolio_strategy("momentum_rotation", paths=[ROOT / "strategies"])
    result = backtest_portfolio(strategy, start="2010-01-01", end="2014-12-31")
    assert result.benchmark is not None and result.benchmark.index.equals(result.equity.index)
    cash = result.execution.cash
    assert result.stats["benchmark_return"] == pytest.approx(result.benchmark.iloc[-1] / cash - 1)
    assert result.stats["excess_return"] == pytest.approx(
        result.stats["total_return"] - result.stats["benchmark_return"])
    assert result.to_dict()["stats"]["benchmark_return"] == result.stats["benchmark_return"]
