"""Every sweep reports buy-and-hold over its bars, like every backtest."""

from __future__ import annotations

import pandas as pd

from tradelab.research.backtest import backtest
from tradelab.research.sweep import sweep


def test_a_sweep_reports_the_backtests_benchmark_and_which_rows_beat_it(
        registry, bars: pd.DataFrame) -> None:
    cls = registry.get("sma_cross")
    result = sweep(cls, bars, {"fast": [5, 10, 20], "slow": [50, 100]}, progress=False,
                   overfit=False)
    one = backtest(cls, bars, {"fast": 5, "slow": 50})
    assert result.benchmark == one.benchmark  # the same function over the same bars
    beats = result.beat_benchmark()
    expected = result.table["total_return"] > one.benchmark["total_return"]
    assert beats.tolist() == expected.tolist()
    line = next(x for x in result.summary() if x.startswith("buy-and-hold"))
    assert f"{one.benchmark['total_return']:.2%}" in line
    assert f"{int(expected.sum())} of 6 rows beat" in line
    assert result.to_dict()["benchmark"]["total_return"] == one.benchmark["total_return"]


def test_a_multi_symbol_sweep_has_one_benchmark_per_symbol(registry, bars: pd.DataFrame) -> None:
    cls = registry.get("sma_cross")
    later = bars.iloc[-700:]
    result = sweep(cls, {"A": bars, "B": later}, {"fast": [5, 10], "slow": [50]},
                   progress=False, overfit=False)
    bench = result.benchmark
    assert set(bench) == {"A", "B"}
    assert bench["A"] == backtest(cls, bars, {"fast": 5, "slow": 50}).benchmark
    assert bench["B"]["total_return"] != bench["A"]["total_return"]
    hold = result.table["symbol"].map(lambda s: bench[s]["total_return"])
    assert result.beat_benchmark().tolist() == (result.table["total_return"] > hold).tolist()
