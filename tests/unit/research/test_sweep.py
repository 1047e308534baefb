"""sweep(): batch signals, invalid combinations, chunking, agreement with backtest()."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tradelab.errors import ParameterError
from tradelab.research.backtest import backtest
from tradelab.research.metrics import METRICS
from tradelab.research.sweep import SweepResult, expand_grid, sweep

GRIDS = {
    "sma_cross": {"fast": [5, 10, 20, 40], "slow": [20, 30, 50]},
    "rsi_reversion": {"window": [7, 14], "lower": [25.0, 30.0, 70.0], "upper": [60.0, 75.0]},
    "donchian_breakout": {"entry": [10, 20, 55], "exit": [5, 20]},
}


@pytest.mark.parametrize("name", list(GRIDS))
def test_batch_signals_equal_per_combination_signals(bars: pd.DataFrame, registry,
                                                     name: str) -> None:
    cls = registry.get(name)
    valid, _ = expand_grid(cls, GRIDS[name])
    batch = cls.batch({k: [c[k] for c in valid] for k in valid[0]}).generate(bars)
    for j, combo in enumerate(valid):
        one = cls(**combo).generate(bars)
        np.testing.assert_array_equal(batch.entries.iloc[:, j].to_numpy(), one.entries.to_numpy())
        np.testing.assert_array_equal(batch.exits.iloc[:, j].to_numpy(), one.exits.to_numpy())


@pytest.mark.parametrize("name", list(GRIDS))
def test_sweep_rows_equal_individual_backtests(bars: pd.DataFrame, registry, name: str) -> None:
    cls = registry.get(name)
    result = sweep(cls, bars, GRIDS[name], progress=False, fixed_fees=1.0)
    assert list(result.table.columns) == [*GRIDS[name], *METRICS]
    picks = result.table.sample(n=min(4, len(result.table)), random_state=1)
    for _, row in picks.iterrows():
        params = {k: row[k] for k in GRIDS[name]}
        one = backtest(cls, bars, params, fixed_fees=1.0)
        for metric in METRICS:
            assert row[metric] == pytest.approx(one.stats[metric], rel=1e-12, nan_ok=True), metric


def test_invalid_combinations_are_filtered_and_counted(bars: pd.DataFrame, registry) -> None:
    result = sweep(registry.get("sma_cross"), bars, {"fast": [5, 20, 30], "slow": [10, 30]},
                   progress=False)
    # (20, 10), (30, 10) and (30, 30) fail fast < slow.
    assert result.n_invalid == 3 and result.n_valid == 3
    assert sorted(map(tuple, result.invalid[["fast", "slow"]].to_numpy().tolist())) == [
        (20, 10), (30, 10), (30, 30)]
    assert result.invalid["reason"].str.contains("must be smaller").all()
    with pytest.raises(ParameterError, match="no valid combination"):
        sweep(registry.get("sma_cross"), bars, {"fast": [50], "slow": [10]}, progress=False)
    with pytest.raises(ParameterError, match="unknown parameter"):
        sweep(registry.get("sma_cross"), bars, {"fats": [5]}, progress=False)
    # Out-of-bounds values count as invalid too, not as a crash.
    bounded = sweep(registry.get("sma_cross"), bars, {"fast": [1, 5], "slow": [20]},
                    progress=False)
    assert (bounded.n_valid, bounded.n_invalid) == (1, 1)


def test_chunking_gives_identical_results(bars: pd.DataFrame, registry) -> None:
    grid = {"fast": [3, 5, 8, 13], "slow": [21, 34, 55]}
    whole = sweep(registry.get("sma_cross"), bars, grid, chunk_size=1000, progress=False)
    parts = sweep(registry.get("sma_cross"), bars, grid, chunk_size=5, progress=False)
    pd.testing.assert_frame_equal(whole.table, parts.table)


@pytest.mark.parametrize("name", list(GRIDS))
def test_parallel_chunks_give_the_sequential_table(bars: pd.DataFrame, registry,
                                                   name: str) -> None:
    cls = registry.get(name)
    one = sweep(cls, bars, GRIDS[name], chunk_size=2, workers=1, progress=False, slippage=0.001)
    for workers in (2, 3, None):
        many = sweep(cls, bars, GRIDS[name], chunk_size=2, workers=workers, progress=False,
                     slippage=0.001)
        pd.testing.assert_frame_equal(many.table, one.table, check_exact=True)
        pd.testing.assert_frame_equal(many.invalid, one.invalid)


def test_parallel_errors_surface_and_workers_is_checked(bars: pd.DataFrame, registry) -> None:
    class Broken(registry.get("sma_cross")):
        def signals(self, bars: pd.DataFrame):
            if (np.atleast_1d(self.fast) == 40).any():
                raise RuntimeError("boom")
            return super().signals(bars)

    with pytest.raises(RuntimeError, match="boom"):
        sweep(Broken, bars, GRIDS["sma_cross"], chunk_size=2, workers=2, progress=False)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            sweep(registry.get("sma_cross"), bars, GRIDS["sma_cross"], workers=bad,
                  progress=False)


def test_non_vectorized_strategy_loops_with_same_results(bars: pd.DataFrame, registry) -> None:
    cls = registry.get("donchian_breakout")
    looped = type("LoopedDonchian", (cls,), {"vectorized_params": False})
    grid = GRIDS["donchian_breakout"]
    a = sweep(cls, bars, grid, progress=False)
    b = sweep(looped, bars, grid, progress=False, chunk_size=4)
    pd.testing.assert_frame_equal(a.table, b.table)


def test_instance_fixes_other_params_and_result_api(bars: pd.DataFrame, registry) -> None:
    base = registry.create("rsi_reversion", window=7)
    result = sweep(base, bars, {"lower": [20.0, 30.0], "upper": [70.0, 80.0]}, metric="cagr",
                   progress=False, fees=0.001)
    assert isinstance(result, SweepResult)
    assert result.fixed == {"window": 7} and result.execution.fees == 0.001
    best = result.best()
    assert best["cagr"] == result.table["cagr"].max()
    assert result.best("sharpe")["sharpe"] == result.table["sharpe"].max()
    assert result.top(2).shape[0] == 2
    rerun = result.backtest()
    assert rerun.params == result.best_params() == {"window": 7, "lower": best["lower"],
                                                    "upper": best["upper"]}
    assert rerun.final_equity == pytest.approx(best["final_equity"], rel=1e-12)
    d = json.loads(json.dumps(result.to_dict(top=3), allow_nan=False))
    assert len(d["rows"]) == 3 and d["n_valid"] == 4
    assert "rsi_reversion sweep" in result._repr_html_()
    with pytest.raises(ValueError, match="metric"):
        sweep(base, bars, {"lower": [20.0]}, metric="profit", progress=False)


def test_heatmap(bars: pd.DataFrame, registry) -> None:
    import holoviews as hv

    result = sweep(registry.get("sma_cross"), bars, GRIDS["sma_cross"], progress=False)
    assert isinstance(result.heatmap("fast", "slow"), hv.HeatMap)
    with pytest.raises(ValueError, match="not a swept parameter"):
        result.heatmap("fast", "window")
