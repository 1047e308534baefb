"""Walk-forward: the windows, no look-ahead and no cold start, the in-sample pick, the
out-of-sample numbers and their stitching; the CLI's JSON keys."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import tradelab.cli.research_cmd  # noqa: F401  (registers the commands)
from tradelab.cli._app import app
from tradelab.research.conventions import Execution
from tradelab.research.simulate import portfolio_metrics, run_portfolio
from tradelab.research.sweep import sweep
from tradelab.research.walkforward import WalkForward, run_window, window_portfolio

GRID = {"fast": [5, 10, 20], "slow": [30, 50, 100]}


@settings(max_examples=200, deadline=None)
@given(n=st.integers(20, 20_000), folds=st.integers(1, 12), train=st.floats(0.05, 0.95),
       mode=st.sampled_from(["rolling", "anchored"]))
def test_windows_tile_the_series(n: int, folds: int, train: float, mode: str) -> None:
    spec = WalkForward(folds, mode, train)
    try:
        windows = spec.windows(n)
    except ValueError:
        return  # too few bars for so many folds: refused, not mis-cut
    assert len(windows) == folds
    first, test = windows[0][2], windows[0][3] - windows[0][2]
    assert windows[-1][3] == n and first == n - folds * test and test >= 2
    for i, (tr_lo, tr_hi, te_lo, te_hi) in enumerate(windows):
        assert tr_hi == te_lo == first + i * test and te_hi - te_lo == test
        assert tr_lo == (0 if mode == "anchored" else te_lo - first)
    # the in-sample share of a rolling window is `train`, up to rounding the test windows
    # down to whole bars (the remainder, < folds bars, goes to the first training span)
    assert abs(first - train * (first + test)) <= folds + 1


def test_walk_forward_spec_is_checked() -> None:
    for bad in ({"folds": 0}, {"folds": True}, {"mode": "expanding"}, {"train": 1.0},
                {"train": 0.0}):
        with pytest.raises(ValueError):
            WalkForward(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="too few"):
        WalkForward(10).windows(15)


def test_window_signals_have_no_look_ahead_and_no_cold_start(bars: pd.DataFrame,
                                                             registry) -> None:
    """With the warmup bars before it, a window's signals are the whole series' signals
    on those bars (no cold start), and bars after the window change nothing."""
    cls = registry.get("sma_cross")
    combos = [cls(fast=f, slow=s).params for f in GRID["fast"] for s in GRID["slow"]]
    warmup = max(cls(**c).warmup for c in combos)
    lo, hi = 700, 900
    full = cls.batch({k: [c[k] for c in combos] for k in ("fast", "slow")}).generate(bars)
    ex = Execution()
    pf, sim = window_portfolio(cls, combos, bars, ex, (lo, hi, lo - warmup))
    assert sim.index.equals(bars.index[lo:hi])
    want = run_portfolio(ex, bars.iloc[lo:hi],
                         pd.DataFrame(full.entries.to_numpy()[lo:hi]),
                         pd.DataFrame(full.exits.to_numpy()[lo:hi]))
    np.testing.assert_array_equal(pf.value().to_numpy(), want.value().to_numpy())
    # the future is scrambled: the window's results do not move
    future = bars.copy()
    future.iloc[hi:, :4] = future.iloc[hi:, :4].to_numpy()[::-1]
    got = run_window(cls, combos, future, ex, 252.0, (lo, hi, lo - warmup))
    same = run_window(cls, combos, bars, ex, 252.0, (lo, hi, lo - warmup))
    for name, values in same.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)
    # without the warmup the window starts cold: the averages are not ready, fewer trades
    cold = run_window(cls, combos, bars, ex, 252.0, (lo, hi, lo))
    assert cold["n_trades"].sum() < same["n_trades"].sum()


@pytest.fixture(scope="module")
def anchored(bars: pd.DataFrame, registry):
    return sweep(registry.get("sma_cross"), bars, GRID, progress=False, chunk_size=4,
                 walk_forward=WalkForward(3, "anchored", 0.6))


def test_each_fold_picks_the_in_sample_best_and_tests_it_out_of_sample(
        anchored, bars: pd.DataFrame, registry) -> None:
    wf = anchored.walk_forward
    assert wf is not None and list(wf.folds["fold"]) == [1, 2, 3]
    cls = registry.get("sma_cross")
    windows = wf.spec.windows(len(bars))
    for (_, tr_hi, te_lo, te_hi), (_, row) in zip(windows, wf.folds.iterrows(), strict=True):
        # anchored training starts at the first bar: the same as a plain sweep of those bars
        ins = sweep(cls, bars.iloc[:tr_hi], GRID, progress=False)
        best = ins.best()
        assert (row["fast"], row["slow"]) == (best["fast"], best["slow"])
        assert row["is_sharpe"] == best["sharpe"] and row["is_round_trips"] == best["n_trades"]
        assert row["train_end"] == bars.index[tr_hi - 1]
        assert (row["test_start"], row["test_end"]) == (bars.index[te_lo], bars.index[te_hi - 1])
        # out of sample: the whole series' signals of the pick, simulated on the test bars only
        sig = cls(fast=row["fast"], slow=row["slow"]).generate(bars)
        pf = run_portfolio(Execution(), bars.iloc[te_lo:te_hi],
                           sig.entries.iloc[te_lo:te_hi], sig.exits.iloc[te_lo:te_hi])
        oos = portfolio_metrics(pf, 100_000.0, 252.0)
        assert row["oos_return"] == oos["total_return"][0]
        assert row["oos_round_trips"] == oos["n_trades"][0]
        np.testing.assert_equal(row["oos_sharpe"], oos["sharpe"][0])


def test_stitched_equity_compounds_the_test_windows(anchored, bars: pd.DataFrame) -> None:
    wf = anchored.walk_forward
    assert wf.equity.index[0] == wf.folds["test_start"].iloc[0]
    assert wf.equity.index[-1] == bars.index[-1]
    assert len(wf.equity) == sum(hi - lo for _, _, lo, hi in wf.spec.windows(len(bars)))
    assert wf.stats["total_return"] == pytest.approx(
        np.prod(1 + wf.folds["oos_return"]) - 1, rel=1e-9)
    assert wf.stats["n_trades"] == wf.folds["oos_round_trips"].sum()
    best = anchored.best()
    assert wf.in_sample["best_sharpe"] == best["sharpe"]
    assert wf.in_sample["mean_fold_sharpe"] == pytest.approx(wf.folds["is_sharpe"].mean())
    if wf.efficiency is not None:
        assert wf.efficiency == pytest.approx(wf.stats["cagr"] / wf.folds["is_cagr"].mean())
    out = json.loads(json.dumps(anchored.to_dict(top=3), allow_nan=False))["walk_forward"]
    assert {"folds", "mode", "train", "oos", "in_sample", "efficiency", "warmup"} <= set(out)
    assert len(out["folds"]) == 3 and out["mode"] == "anchored"
    assert "walk-forward (anchored, 3 folds" in "\n".join(anchored.summary())


def test_rolling_folds_and_workers_give_the_same_result(bars: pd.DataFrame, registry) -> None:
    cls = registry.get("sma_cross")
    one = sweep(cls, bars, GRID, progress=False, walk_forward=4, workers=1, chunk_size=9)
    many = sweep(cls, bars, GRID, progress=False, walk_forward=4, workers=2, chunk_size=2)
    assert one.walk_forward is not None and many.walk_forward is not None
    pd.testing.assert_frame_equal(one.walk_forward.folds, many.walk_forward.folds)
    pd.testing.assert_series_equal(one.walk_forward.equity, many.walk_forward.equity)
    windows = one.walk_forward.spec.windows(len(bars))
    assert len({hi - lo for lo, hi, _, _ in windows}) == 1  # rolling: fixed-length training
    assert one.walk_forward.warmup == 101


def test_walk_forward_refusals(bars: pd.DataFrame, registry) -> None:
    cls = registry.get("sma_cross")
    with pytest.raises(ValueError, match="warmup"):
        sweep(cls, bars.iloc[:400], {"fast": [5], "slow": [300]}, progress=False,
              walk_forward=WalkForward(3, train=0.3))
    with pytest.raises(ValueError, match="one symbol"):
        sweep(cls, {"A": bars, "B": bars}, GRID, progress=False, walk_forward=2)


# -- CLI ----------------------------------------------------------------------------------
def test_sweep_cli_json_has_overfitting_and_walk_forward(environ: dict[str, str]) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["sweep", "sma_cross", "--source", "sample", "--symbol", "SPX",
                              "--start", "2012-01-01", "-g", "fast=5,10,20", "-g", "slow=50,100",
                              "--walk-forward", "3", "--wf-mode", "anchored", "--wf-train", "0.6",
                              "--min-trades", "25", "--top", "3", "--json"],
                        env=environ, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    of = out["overfitting"]
    assert {"deflated_sharpe", "pbo", "trials", "expected_max_sharpe", "sharpe_std", "skew",
            "kurtosis", "n_obs", "n_blocks", "n_splits", "total_splits", "sampled",
            "prob_oos_loss"} <= set(of)
    assert of["trials"] == 6 and 0 <= of["pbo"] <= 1 and 0 <= of["deflated_sharpe"] <= 1
    assert out["min_trades"] == 25
    assert all(r["few_trades"] == (r["round_trips"] < 25) for r in out["rows"])
    wf = out["walk_forward"]
    assert (wf["folds"][0]["fold"], len(wf["folds"]), wf["mode"], wf["train"]) == (
        1, 3, "anchored", 0.6)
    assert "round_trips" in wf["oos"] and "n_trades" not in wf["oos"]
    human = runner.invoke(app, ["sweep", "sma_cross", "--source", "sample", "--symbol", "SPX",
                                "--start", "2012-01-01", "-g", "fast=5,10", "-g", "slow=50",
                                "--walk-forward", "2", "--no-progress"], env=environ)
    assert human.exit_code == 0, human.output
    for text in ("few_trades", "overfitting: deflated Sharpe", "PBO", "walk-forward (rolling",
                 "oos_return"):
        assert text in human.stdout
    bad = runner.invoke(app, ["sweep", "sma_cross", "--source", "sample", "--symbol", "SPX",
                              "-g", "fast=5", "--walk-forward", "2", "--wf-mode", "sideways"],
                        env=environ)
    assert bad.exit_code == 2 and "rolling or anchored" in bad.output
