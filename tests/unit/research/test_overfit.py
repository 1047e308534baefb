"""The overfitting estimate: deflated Sharpe ratio and PBO (CSCV) against hand-computed
values, a brute-force reference, known properties, and the sweep's own numbers."""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradelab.research import metrics, overfit
from tradelab.research._overfit_kernels import block_moments
from tradelab.research.conventions import Execution
from tradelab.research.simulate import run_portfolio
from tradelab.research.sweep import sweep

PHI = NormalDist().cdf
Z = NormalDist().inv_cdf


# -- deflated Sharpe ratio --------------------------------------------------------------
def test_expected_max_sharpe_by_hand() -> None:
    g = 0.5772156649015329
    want = 0.5 * ((1 - g) * Z(1 - 1 / 10) + g * Z(1 - 1 / (10 * math.e)))
    assert overfit.expected_max_sharpe(10, 0.25) == pytest.approx(want, rel=1e-12)
    assert overfit.expected_max_sharpe(1, 0.25) == 0.0
    assert overfit.expected_max_sharpe(100, 0.0) == 0.0
    with pytest.raises(ValueError):
        overfit.expected_max_sharpe(0, 1.0)


def test_expected_max_sharpe_approximates_the_max_of_normal_draws() -> None:
    # the False Strategy theorem: E[max of N N(0, s^2)] ~ SR0 (within a few percent)
    rng = np.random.default_rng(1)
    draws = rng.standard_normal((20_000, 100)) * 0.3
    assert draws.max(axis=1).mean() == pytest.approx(overfit.expected_max_sharpe(100, 0.09),
                                                     rel=0.03)


def test_probabilistic_and_deflated_sharpe_by_hand() -> None:
    # normal returns (skew 0, kurtosis 3): Phi(SR sqrt(T - 1) / sqrt(1 + SR^2 / 2))
    assert overfit.probabilistic_sharpe(0.1, 0.0, 101, 0.0, 3.0) == pytest.approx(
        PHI(0.1 * 10 / math.sqrt(1 + 0.5 * 0.01)), rel=1e-12)
    assert overfit.probabilistic_sharpe(0.05, 0.05, 500, -1.0, 8.0) == pytest.approx(0.5)
    # negative skew and fat tails widen the estimate's error: less confidence
    assert (overfit.probabilistic_sharpe(0.1, 0.0, 101, -2.0, 10.0)
            < overfit.probabilistic_sharpe(0.1, 0.0, 101, 0.0, 3.0))
    sr0 = overfit.expected_max_sharpe(50, 0.02 ** 2)
    assert overfit.deflated_sharpe(0.08, 1000, 0.2, 4.0, 50, 0.02 ** 2) == pytest.approx(
        PHI((0.08 - sr0) * math.sqrt(999) / math.sqrt(1 - 0.2 * 0.08 + 0.75 * 0.0064)))
    assert math.isnan(overfit.probabilistic_sharpe(0.1, 0.0, 1, 0.0, 3.0))


@settings(max_examples=60, deadline=None)
@given(n1=st.integers(1, 10_000), extra=st.integers(1, 10_000),
       sr=st.floats(-0.2, 0.3), var=st.floats(1e-6, 0.01), t=st.integers(30, 10_000))
def test_deflated_sharpe_decreases_as_trials_increase(n1: int, extra: int, sr: float,
                                                      var: float, t: int) -> None:
    few = overfit.deflated_sharpe(sr, t, 0.0, 3.0, n1, var)
    many = overfit.deflated_sharpe(sr, t, 0.0, 3.0, n1 + extra, var)
    assert 0.0 <= many <= few <= 1.0
    assert overfit.expected_max_sharpe(n1 + extra, var) > overfit.expected_max_sharpe(n1, var)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(10, 300))
def test_moments_from_power_sums_equal_scipy(seed: int, n: int) -> None:
    from scipy import stats

    r = np.random.default_rng(seed).standard_t(4, n) * 0.01 + 0.0005
    skew, kurt = overfit.moments(r.sum(), (r ** 2).sum(), (r ** 3).sum(), (r ** 4).sum(), n)
    assert skew == pytest.approx(stats.skew(r), rel=1e-6, abs=1e-9)
    assert kurt == pytest.approx(stats.kurtosis(r, fisher=False), rel=1e-6)
    assert all(map(math.isnan, overfit.moments(0.0, 0.0, 0.0, 0.0, 10)))


# -- PBO --------------------------------------------------------------------------------
def test_block_edges_and_sums() -> None:
    edges = overfit.block_edges(103, 16)
    sizes = np.diff(edges)
    assert edges[0] == 0 and edges[-1] == 103 and sizes.max() - sizes.min() <= 1
    r = np.random.default_rng(0).standard_normal((103, 3))
    counts, sums = overfit.block_sums(r, 16)
    np.testing.assert_array_equal(counts, sizes)
    np.testing.assert_allclose(sums.sum(axis=1), [(r ** k).sum(axis=0) for k in (1, 2, 3, 4)])
    with pytest.raises(ValueError):
        overfit.block_edges(5, 6)


def test_pbo_by_hand_two_blocks() -> None:
    up, down = np.array([0.02, 0.0, 0.02, 0.0]), np.array([-0.02, 0.0, -0.02, 0.0])
    # each trial wins one block and loses the other: the in-sample best is always
    # the worse out of sample: rank 1 of 2, w = 1/3, logit -ln 2, PBO 1
    flip = np.column_stack([np.r_[up, down], np.r_[down, up]])
    res = overfit.pbo(flip, n_blocks=2)
    assert (res.pbo, res.n_splits, res.total_splits, res.sampled) == (1.0, 2, 2, False)
    np.testing.assert_allclose(res.logits, [-math.log(2)] * 2)
    assert res.prob_oos_loss == 1.0
    # trial 0 better in both halves: rank 2 of 2, logit +ln 2, PBO 0
    steady = np.column_stack([np.r_[up, up], np.r_[down, down]])
    res = overfit.pbo(steady, n_blocks=2)
    assert res.pbo == 0.0 and res.prob_oos_loss == 0.0
    np.testing.assert_allclose(res.logits, [math.log(2)] * 2)


def _pbo_brute_force(r: np.ndarray, n_blocks: int) -> np.ndarray:
    """The paper's algorithm, literally: every split, Sharpe by np.mean/np.std."""
    from scipy.stats import rankdata

    edges = overfit.block_edges(len(r), n_blocks)
    blocks = [r[edges[b]:edges[b + 1]] for b in range(n_blocks)]
    logits = []
    for chosen in itertools.combinations(range(n_blocks), n_blocks // 2):
        ins = np.vstack([blocks[b] for b in chosen])
        oos = np.vstack([blocks[b] for b in range(n_blocks) if b not in chosen])
        sr_is, sr_oos = ins.mean(0) / ins.std(0), oos.mean(0) / oos.std(0)
        w = rankdata(sr_oos)[np.argmax(sr_is)] / (r.shape[1] + 1)
        logits.append(math.log(w / (1 - w)))
    return np.sort(logits)


@pytest.mark.parametrize(("n_blocks", "seed"), [(2, 0), (4, 1), (8, 2), (10, 3)])
def test_pbo_equals_the_brute_force_reference(n_blocks: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = rng.standard_normal((240, 25)) * 0.01 + rng.normal(0, 0.001, 25)
    res = overfit.pbo(r, n_blocks=n_blocks)
    ref = _pbo_brute_force(r, n_blocks)
    assert res.n_splits == res.total_splits == math.comb(n_blocks, n_blocks // 2)
    np.testing.assert_allclose(np.sort(res.logits), ref, rtol=1e-9, atol=1e-12)
    assert res.pbo == pytest.approx(np.mean(ref <= 0))


def test_pure_noise_gives_pbo_near_one_half_and_a_low_dsr() -> None:
    pbos, dsrs = [], []
    for seed in range(12):
        r = np.random.default_rng(seed).standard_normal((1000, 100)) * 0.01
        pbos.append(overfit.pbo(r, n_blocks=8).pbo)
        counts, sums = overfit.block_sums(r, 8)
        sharpe = r.mean(0) / r.std(0, ddof=1) * math.sqrt(252)
        dsrs.append(overfit.estimate(sums, counts, sharpe, int(np.argmax(sharpe)), 252.0)
                    .deflated_sharpe)
    assert 0.35 < np.mean(pbos) < 0.65
    # the best of 100 noise columns: undeflated it looks significant, deflated it is not
    assert np.mean(dsrs) < 0.6


def test_one_real_edge_among_noise_gives_low_pbo_and_high_dsr() -> None:
    rng = np.random.default_rng(7)
    r = rng.standard_normal((2000, 200)) * 0.01
    r[:, 42] += 0.003  # Sharpe ~0.3 per bar: real
    res = overfit.pbo(r, n_blocks=16)
    assert res.pbo < 0.05 and res.prob_oos_loss < 0.01
    counts, sums = overfit.block_sums(r, 16)
    sharpe = r.mean(0) / r.std(0, ddof=1) * math.sqrt(252)
    est = overfit.estimate(sums, counts, sharpe, 42, 252.0)
    assert est.deflated_sharpe > 0.99 and est.pbo == pytest.approx(res.pbo, abs=0.05)
    assert est.trials == 200 and est.n_obs == 2000


def test_sampled_splits_are_said_and_close_to_all() -> None:
    r = np.random.default_rng(3).standard_normal((800, 60)) * 0.01
    full = overfit.pbo(r, n_blocks=16)
    part = overfit.pbo(r, n_blocks=16, max_splits=2000)
    assert (full.n_splits, full.sampled) == (12_870, False)
    assert (part.n_splits, part.total_splits, part.sampled) == (2000, 12_870, True)
    assert part.pbo == pytest.approx(full.pbo, abs=0.05)
    assert overfit.split_budget(10) == overfit.SPLIT_WORK // 10 > 12_870
    assert overfit.split_budget(10**7) == overfit.MIN_SPLITS


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.01, 100.0),
       n_blocks=st.sampled_from([2, 4, 6]))
def test_pbo_is_invariant_to_scale_and_column_order(seed: int, scale: float,
                                                    n_blocks: int) -> None:
    rng = np.random.default_rng(seed)
    r = rng.standard_normal((60, 7)) * 0.01 + rng.normal(0, 0.002, 7)
    base = overfit.pbo(r, n_blocks=n_blocks)
    assert 0.0 <= base.pbo <= 1.0
    perm = rng.permutation(7)
    np.testing.assert_allclose(np.sort(overfit.pbo(r[:, perm] * scale, n_blocks=n_blocks).logits),
                               np.sort(base.logits))


def test_pbo_needs_an_even_number_of_blocks_and_two_trials() -> None:
    r = np.random.default_rng(0).standard_normal((40, 3))
    with pytest.raises(ValueError, match="even"):
        overfit.pbo(r, n_blocks=3)
    with pytest.raises(ValueError, match="2 trials"):
        overfit.pbo(r[:, :1], n_blocks=4)


# -- in the sweep -----------------------------------------------------------------------
@pytest.mark.parametrize("execution", [
    Execution(), Execution(fees=0.001, fixed_fees=2.5, slippage=0.0005, fill="close"),
    Execution(cash=5_000.0, size=0.5, fractional=True)], ids=["default", "fees", "fractional"])
def test_kernel_block_sums_equal_those_of_vectorbts_equity(bars: pd.DataFrame,
                                                           execution: Execution) -> None:
    rng = np.random.default_rng(5)
    entries = pd.DataFrame(rng.random((len(bars), 30)) < 0.02, index=bars.index)
    exits = pd.DataFrame(rng.random((len(bars), 30)) < 0.02, index=bars.index)
    pf = run_portfolio(execution, bars, entries, exits)
    edges = overfit.block_edges(len(bars), 16)
    got = block_moments(pf, bars["close"].to_numpy(), execution.cash, edges)
    counts, want = overfit.block_sums(metrics.returns(pf.value().to_numpy(), execution.cash), 16)
    np.testing.assert_array_equal(counts, np.diff(edges))
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-18)


@pytest.mark.parametrize("edges", [[0, 10, 10_000], [5, 3, 8], [-1, 4], [0]],
                         ids=["past-the-bars", "decreasing", "negative", "one"])
def test_block_edges_outside_the_bars_are_refused(bars: pd.DataFrame, edges: list[int]) -> None:
    entries = pd.DataFrame(np.zeros((len(bars), 1), dtype=bool), index=bars.index)
    pf = run_portfolio(Execution(), bars, entries, entries)
    with pytest.raises(ValueError, match=r"edges = \[.*\]: expected at least two"):
        block_moments(pf, bars["close"].to_numpy(), 1.0, np.array(edges))


GRID = {"fast": [5, 10, 20, 40], "slow": [30, 60, 120]}


def test_sweep_estimate_equals_the_estimate_from_each_backtests_returns(
        bars: pd.DataFrame, registry) -> None:
    """The kernel's block sums give the numbers a (bars x combinations) matrix of the
    backtests' own equity returns gives."""
    result = sweep(registry.get("sma_cross"), bars, GRID, progress=False, chunk_size=5)
    est = result.overfitting
    assert est is not None and result.n_valid == 11  # fast 40 < slow 30 is invalid
    returns = np.column_stack([
        metrics.returns(result.backtest(dict(row[list(GRID)])).equity.to_numpy(), 100_000.0)
        for _, row in result.table.iterrows()])
    counts, sums = overfit.block_sums(returns, 16)
    pick = int(result.top(1).index[0])
    want = overfit.estimate(sums, counts, result.table["sharpe"].to_numpy(), pick, 252.0)
    for name in ("deflated_sharpe", "sharpe", "expected_max_sharpe", "sharpe_std", "skew",
                 "kurtosis"):
        assert getattr(est, name) == pytest.approx(getattr(want, name), rel=1e-7), name
    assert (est.pbo, est.trials, est.n_obs, est.n_blocks, est.n_splits, est.sampled) == (
        want.pbo, 11, len(bars), 16, 12_870, False)
    # ... and the raw-returns route to PBO agrees
    assert overfit.pbo(returns, 16).pbo == est.pbo


def test_sweep_estimate_options_and_short_series(bars: pd.DataFrame, registry) -> None:
    cls = registry.get("sma_cross")
    off = sweep(cls, bars, GRID, progress=False, overfit=False)
    assert off.overfitting is None and off.to_dict()["overfitting"] is None
    on = sweep(cls, bars, GRID, progress=False, workers=2, chunk_size=3)
    assert on.table.equals(off.table)
    short = sweep(cls, bars.iloc[:9], {"fast": [2, 3], "slow": [4, 5]}, progress=False)
    assert short.overfitting is not None and short.overfitting.n_blocks == 4
    tiny = sweep(cls, bars.iloc[:3], {"fast": [2], "slow": [3]}, progress=False)
    assert tiny.overfitting is not None and tiny.overfitting.pbo is None


def test_min_trades_flags_rows(bars: pd.DataFrame, registry) -> None:
    result = sweep(registry.get("sma_cross"), bars, GRID, progress=False, min_trades=15)
    flags = result.few_trades()
    np.testing.assert_array_equal(flags, result.table["n_trades"] < 15)
    rows = result.to_dict(top=5)["rows"]
    assert [r["few_trades"] for r in rows] == [r["n_trades"] < 15 for r in rows]
    assert result.to_dict()["min_trades"] == 15
    if result.best()["n_trades"] < 15:
        assert "min_trades 15" in result.summary()[0]
    assert "few_trades" in result._repr_html_()
    with pytest.raises(ValueError, match="min_trades"):
        sweep(registry.get("sma_cross"), bars, GRID, progress=False, min_trades=-1)


def test_multi_symbol_sweep_has_an_estimate_per_symbol(bars: pd.DataFrame, registry) -> None:
    cls = registry.get("sma_cross")
    result = sweep(cls, {"A": bars, "B": bars.iloc[-800:]}, GRID, progress=False)
    assert set(result.overfitting_by_symbol) == {"A", "B"}
    assert result.overfitting == result.overfitting_by_symbol[str(result.best()["symbol"])]
    alone = sweep(cls, bars.iloc[-800:], GRID, progress=False).overfitting
    assert result.overfitting_by_symbol["B"] == alone and alone is not None
    assert alone.n_obs == 800
    out = result.to_dict(top=2)
    assert set(out["overfitting_by_symbol"]) == {"A", "B"} and "pbo" in out["overfitting"]
    assert sweep(cls, bars, GRID, progress=False, walk_forward=0).walk_forward is None
