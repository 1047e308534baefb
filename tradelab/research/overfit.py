"""How much of a sweep's best result is selection luck: deflated Sharpe ratio and PBO.

Two estimates, both numpy, both computed for every sweep
(:attr:`tradelab.research.sweep.SweepResult.overfitting`):

Deflated Sharpe ratio (DSR; Bailey & López de Prado, "The Deflated Sharpe Ratio",
*Journal of Portfolio Management* 40(5), 2014)
    The probability that the picked strategy's true Sharpe ratio is above zero,
    once the picked Sharpe ``SR*`` is measured against the Sharpe the best of
    ``N`` worthless trials would reach by luck (the False Strategy theorem)::

        SR0 = sqrt(V[SR_n]) * ((1 - g) * Z(1 - 1/N) + g * Z(1 - 1/(N e)))
        DSR = Phi((SR* - SR0) * sqrt(T - 1)
                  / sqrt(1 - skew * SR* + (kurt - 1) / 4 * SR*^2))

    ``Z`` is the standard normal quantile, ``Phi`` its CDF, ``g`` the
    Euler-Mascheroni constant, ``V[SR_n]`` the variance of the trials' Sharpe
    ratios, ``T`` the number of returns, ``skew`` and ``kurt`` (not excess) the
    third and fourth standardized moments of the pick's returns. Sharpe ratios
    are per bar (not annualized). With one trial ``SR0 = 0`` and the DSR is the
    probabilistic Sharpe ratio against zero.

Probability of backtest overfitting (PBO; Bailey, Borwein, López de Prado & Zhu,
"The Probability of Backtest Overfitting", *Journal of Computational Finance*
20(4), 2017; combinatorially symmetric cross-validation, CSCV)
    The per-bar returns matrix (bars x N trials) is cut into ``S`` contiguous
    blocks of (nearly) equal length. For every choice of ``S/2`` blocks as the
    in-sample half (the other ``S/2`` out of sample): the trial with the best
    in-sample Sharpe is ranked among all trials out of sample, its relative rank
    ``w = rank / (N + 1)`` turned into the logit ``l = ln(w / (1 - w))``. PBO is
    the share of splits with ``l <= 0``: how often the in-sample winner is no
    better than the median out of sample. ``S = 16`` gives ``C(16, 8) = 12,870``
    splits.

The returns matrix never exists as such: a sweep keeps, per block and trial,
the sums of ``r, r^2, r^3, r^4`` (:func:`tradelab.research._overfit_kernels.block_moments`,
``4 x S x N`` numbers), from which every half's Sharpe and the pick's skew and
kurtosis follow. A split and its complement share those sums, so the splits are
evaluated in complementary pairs. A sweep of many trials evaluates a seeded random
sample of pairs (:func:`split_budget`: all 12,870 splits up to 81 trials, 1,048 for
1,000 trials, 1,000 from 1,049 trials on) and the result says so (``sampled``).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

__all__ = ["EULER_GAMMA", "OverfitEstimate", "PboResult", "block_edges", "block_sums",
           "deflated_sharpe", "estimate", "expected_max_sharpe", "moments",
           "pbo", "pbo_from_blocks", "probabilistic_sharpe", "split_budget"]

#: Euler-Mascheroni constant of the expected maximum of N normal draws.
EULER_GAMMA = 0.5772156649015329
#: Work budget of :func:`split_budget`, in (split x trial) evaluations. CSCV costs
#: about splits x trials and a sweep bars x trials, so a fixed number of splits for
#: large sweeps keeps its share of a sweep's time small (~2 % for 5,000 bars);
#: small sweeps get all C(16, 8) = 12,870 splits (up to 81 trials).
SPLIT_WORK = 1 << 20
#: Fewest splits :func:`split_budget` samples (standard error of PBO from the sample
#: alone <= sqrt(0.25 / 1,000) = 0.016).
MIN_SPLITS = 1_000
_NORMAL = NormalDist()
_ELEMENTS = 1 << 20  # floats per intermediate (splits x trials) array: 8 MB


def expected_max_sharpe(n_trials: int, sharpe_var: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios whose true value is zero.

    ``SR0 = sqrt(V) * ((1 - g) * Z(1 - 1/N) + g * Z(1 - 1/(N e)))`` (False
    Strategy theorem, Bailey & López de Prado 2014, eq. 7 of the DSR paper); 0
    for a single trial.

    Parameters
    ----------
    n_trials
        Number of independent trials ``N`` (>= 1).
    sharpe_var
        Variance of the trials' Sharpe ratios across trials (per-bar units).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials = {n_trials!r}: must be >= 1")
    if n_trials == 1 or not sharpe_var > 0:
        return 0.0
    z = _NORMAL.inv_cdf
    return math.sqrt(sharpe_var) * ((1.0 - EULER_GAMMA) * z(1.0 - 1.0 / n_trials)
                                    + EULER_GAMMA * z(1.0 - 1.0 / (n_trials * math.e)))


def probabilistic_sharpe(sharpe: float, benchmark: float, n_obs: int, skew: float,
                         kurtosis: float) -> float:
    """Probability that the true Sharpe exceeds ``benchmark`` (PSR).

    ``Phi((SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))``
    (Bailey & López de Prado 2012, "The Sharpe Ratio Efficient Frontier"). NaN
    when the inputs are not finite, ``T < 2`` or the variance term is not positive.

    Parameters
    ----------
    sharpe, benchmark
        Observed and benchmark Sharpe ratio, per bar.
    n_obs
        Number of returns ``T``.
    skew, kurtosis
        Skewness and (non-excess) kurtosis of the returns; 0 and 3 for normal returns.
    """
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if n_obs < 2 or not (math.isfinite(var) and var > 0 and math.isfinite(benchmark)):
        return math.nan
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var))


def deflated_sharpe(sharpe: float, n_obs: int, skew: float, kurtosis: float,
                    n_trials: int, sharpe_var: float) -> float:
    """Deflated Sharpe ratio: :func:`probabilistic_sharpe` against
    :func:`expected_max_sharpe` (Bailey & López de Prado 2014, eq. 9).

    Parameters
    ----------
    sharpe
        Per-bar Sharpe ratio of the selected trial.
    n_obs
        Number of its returns.
    skew, kurtosis
        Standardized third and fourth moments of its returns (kurtosis not excess).
    n_trials
        Number of trials the selection was made from.
    sharpe_var
        Variance of the trials' per-bar Sharpe ratios.

    Returns
    -------
    float
        A probability; higher means the result is less likely selection luck.
    """
    return probabilistic_sharpe(sharpe, expected_max_sharpe(n_trials, sharpe_var), n_obs,
                                skew, kurtosis)


def moments(s1: float, s2: float, s3: float, s4: float, n: int) -> tuple[float, float]:
    """Skewness and (non-excess) kurtosis from the power sums ``sum(r^k)`` of ``n`` values
    (population moments, as in the DSR paper); NaN for constant returns."""
    m = s1 / n
    e2, e3, e4 = s2 / n, s3 / n, s4 / n
    c2 = e2 - m * m
    c3 = e3 - 3.0 * m * e2 + 2.0 * m ** 3
    c4 = e4 - 4.0 * m * e3 + 6.0 * m * m * e2 - 3.0 * m ** 4
    if not c2 > 0:
        return math.nan, math.nan
    return c3 / c2 ** 1.5, c4 / (c2 * c2)


def block_edges(n_obs: int, n_blocks: int) -> np.ndarray:
    """``n_blocks + 1`` bar offsets cutting ``n_obs`` bars into contiguous blocks whose
    lengths differ by at most one."""
    if n_blocks < 1 or n_obs < n_blocks:
        raise ValueError(f"cannot cut {n_obs} bars into {n_blocks} blocks")
    return np.linspace(0, n_obs, n_blocks + 1).round().astype(np.int64)


def block_sums(returns: np.ndarray, n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-block power sums of a returns matrix.

    Parameters
    ----------
    returns
        ``(T, N)``: per-bar returns of ``N`` trials.
    n_blocks
        ``S``.

    Returns
    -------
    counts, sums
        ``counts``: bars per block ``(S,)``; ``sums``: ``(4, S, N)``, the sums of
        ``r, r^2, r^3, r^4`` over each block (the layout the sweep's kernel fills).
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim == 1:
        r = r[:, None]
    edges = block_edges(r.shape[0], n_blocks)
    powers = np.stack([r, r * r, r ** 3, r ** 4])
    return np.diff(edges), np.add.reduceat(powers, edges[:-1], axis=1)


@dataclass(frozen=True)
class PboResult:
    """Outcome of CSCV.

    Attributes
    ----------
    pbo : float
        Share of splits whose in-sample best ranks at or below the median out of sample.
    logits : numpy.ndarray
        ``ln(w / (1 - w))`` of each evaluated split.
    prob_oos_loss : float
        Share of splits whose in-sample best has a negative out-of-sample Sharpe.
    n_splits, total_splits : int
        Splits evaluated, and ``C(S, S/2)``; fewer evaluated means ``sampled``.
    """

    pbo: float
    logits: np.ndarray
    prob_oos_loss: float
    n_blocks: int
    n_splits: int
    total_splits: int
    sampled: bool


def split_budget(n_trials: int) -> int:
    """Splits a sweep evaluates: ``max(MIN_SPLITS, SPLIT_WORK // n_trials)``."""
    return max(MIN_SPLITS, SPLIT_WORK // max(n_trials, 1))


def _halves(n_blocks: int, max_splits: int | None, seed: int) -> tuple[np.ndarray, int, bool]:
    """In-sample halves that contain block 0, ``(P, S)`` bool: each pair (half,
    complement) is two splits. All ``C(S, S/2) / 2`` of them, or a seeded sample."""
    total = math.comb(n_blocks, n_blocks // 2)
    pairs = total // 2
    want = pairs if max_splits is None else max(1, min(pairs, max_splits // 2))
    rng = np.random.default_rng(seed)
    if pairs <= 200_000:
        chosen = np.fromiter(itertools.chain.from_iterable(
            itertools.combinations(range(1, n_blocks), n_blocks // 2 - 1)),
            dtype=np.int64).reshape(pairs, n_blocks // 2 - 1)
        if want < pairs:
            chosen = chosen[np.sort(rng.choice(pairs, size=want, replace=False))]
    else:  # too many to list: random halves (duplicates possible, and negligible)
        chosen = np.sort(np.argsort(rng.random((want, n_blocks - 1)), axis=1)
                         [:, : n_blocks // 2 - 1] + 1, axis=1)
    mask = np.zeros((len(chosen), n_blocks), dtype=bool)
    mask[:, 0] = True
    np.put_along_axis(mask, chosen, True, axis=1)
    return mask, total, want < pairs


def _sharpe_key(s1: np.ndarray, s2: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``mean / std`` up to the positive factor ``n`` shared by a split's trials:
    ``S1 / sqrt(n S2 - S1^2)``. In place on ``s2`` (a temporary of the caller): few
    passes over the (splits x trials) arrays are what CSCV costs.

    A flat trial (no position in the half: ``S1 = S2 = 0``) gets 0; the variance
    term is floored at a tiny positive number instead of masked, which gives that
    without another pass (returns that vary never come near the floor).
    """
    den = np.multiply(n, s2, out=s2)
    den -= np.square(s1)
    np.maximum(den, 1e-300, out=den)
    np.sqrt(den, out=den)
    return np.divide(s1, den, out=den)


def _rank_logits(is_key: np.ndarray, oos_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(is_key.shape[0])
    x = oos_key[rows, is_key.argmax(axis=1)][:, None]
    # mid-rank on ties (e.g. several flat trials), 1 = worst, N = best
    below = np.count_nonzero(oos_key < x, axis=1)
    ties = np.count_nonzero(oos_key == x, axis=1)
    w = (below + (ties + 1) / 2.0) / (oos_key.shape[1] + 1.0)
    return np.log(w / (1.0 - w)), x[:, 0] < 0


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS on one thread for the (small-k) products below: on a busy machine its
    worker threads spin and cost several times the work (threadpoolctl when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def _pairs(m: np.ndarray, counts: np.ndarray, s1: np.ndarray, s2: np.ndarray,
           t1: np.ndarray, t2: np.ndarray, tn: float, logits: list[np.ndarray],
           losses: list[np.ndarray]) -> None:
    """Both splits of each half in ``m`` (rows of 0/1 over blocks) and its complement."""
    na = (m @ counts)[:, None]
    a1, a2 = m @ s1, m @ s2
    key_b = _sharpe_key(t1 - a1, t2 - a2, tn - na)
    key_a = _sharpe_key(a1, a2, na)
    for is_key, oos_key in ((key_a, key_b), (key_b, key_a)):
        lg, loss = _rank_logits(is_key, oos_key)
        logits.append(lg)
        losses.append(loss)


def pbo_from_blocks(counts: np.ndarray, s1: np.ndarray, s2: np.ndarray, *,
                    max_splits: int | None = None, seed: int = 0) -> PboResult:
    """PBO by CSCV from per-block sums of returns and squared returns.

    Parameters
    ----------
    counts
        Bars per block, ``(S,)``; ``S`` even, >= 2.
    s1, s2
        ``(S, N)``: per block and trial, the sum of returns and of squared returns.
    max_splits
        Evaluate at most this many splits (a seeded sample of complementary
        pairs); ``None``: all ``C(S, S/2)``.
    seed
        Seed of the sample.

    Returns
    -------
    PboResult
    """
    counts = np.asarray(counts, dtype=float)
    s1, s2 = np.asarray(s1, dtype=float), np.asarray(s2, dtype=float)
    n_blocks, n_trials = s1.shape
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"n_blocks = {n_blocks}: CSCV needs an even number >= 2")
    if n_trials < 2:
        raise ValueError("CSCV needs at least 2 trials")
    halves, total, sampled = _halves(n_blocks, max_splits, seed)
    t1, t2, tn = s1.sum(axis=0), s2.sum(axis=0), counts.sum()
    logits: list[np.ndarray] = []
    losses: list[np.ndarray] = []
    step = max(1, _ELEMENTS // n_trials)
    with _one_blas_thread():
        for lo in range(0, len(halves), step):
            _pairs(halves[lo:lo + step].astype(float), counts, s1, s2, t1, t2, tn,
                   logits, losses)
    lam = np.concatenate(logits)
    return PboResult(pbo=float(np.mean(lam <= 0)), logits=lam,
                     prob_oos_loss=float(np.mean(np.concatenate(losses))), n_blocks=n_blocks,
                     n_splits=len(lam), total_splits=total, sampled=sampled)


def pbo(returns: np.ndarray, n_blocks: int = 16, *, max_splits: int | None = None,
        seed: int = 0) -> PboResult:
    """PBO by CSCV of a ``(T, N)`` per-bar returns matrix (see :func:`pbo_from_blocks`)."""
    counts, sums = block_sums(returns, n_blocks)
    return pbo_from_blocks(counts, sums[0], sums[1], max_splits=max_splits, seed=seed)


@dataclass(frozen=True)
class OverfitEstimate:
    """The overfitting estimate of one sweep (one symbol).

    Attributes
    ----------
    deflated_sharpe : float
        DSR of the pick (the sweep's best row by its metric); NaN if undefined.
    pbo : float or None
        Probability of backtest overfitting (CSCV on per-bar Sharpe); None with
        fewer than 2 trials or too few bars for the blocks.
    trials : int
        Combinations with a defined Sharpe ratio (flat ones are not trials).
    sharpe, expected_max_sharpe, sharpe_std : float
        The pick's Sharpe, ``SR0`` and the standard deviation of the trials'
        Sharpe ratios, annualized like the table's.
    skew, kurtosis : float
        Of the pick's per-bar returns (kurtosis not excess).
    n_obs : int
        Bars.
    n_blocks, n_splits, total_splits, sampled, prob_oos_loss
        CSCV details (see :class:`PboResult`).
    """

    deflated_sharpe: float
    pbo: float | None
    trials: int
    sharpe: float
    expected_max_sharpe: float
    sharpe_std: float
    skew: float
    kurtosis: float
    n_obs: int
    n_blocks: int
    n_splits: int
    total_splits: int
    sampled: bool
    prob_oos_loss: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain values (NaN stays NaN; :func:`~tradelab.research.metrics.json_safe` maps it)."""
        return asdict(self)


def estimate(sums: np.ndarray, counts: np.ndarray, sharpe: np.ndarray, pick: int,
             ppy: float, *, max_splits: int | Literal["auto"] | None = "auto", seed: int = 0
             ) -> OverfitEstimate:
    """DSR and PBO of a sweep from its block sums and annualized Sharpe column.

    Parameters
    ----------
    sums
        ``(4, S, N)`` power sums per block and trial (see :func:`block_sums`).
    counts
        Bars per block.
    sharpe
        Annualized Sharpe of each trial (the table's column; NaN for flat trials).
    pick
        Column of the selected trial.
    ppy
        Periods per year the Sharpe ratios were annualized with.
    max_splits, seed
        As for :func:`pbo_from_blocks`; ``"auto"``: :func:`split_budget`.
    """
    root = math.sqrt(ppy)
    per_bar = np.asarray(sharpe, dtype=float) / root
    finite = np.isfinite(per_bar)
    trials = int(finite.sum())
    sr_var = float(np.var(per_bar[finite], ddof=1)) if trials > 1 else 0.0
    n_obs = int(np.sum(counts))
    totals = sums[:, :, pick].sum(axis=1)
    skew, kurt = moments(float(totals[0]), float(totals[1]), float(totals[2]),
                         float(totals[3]), n_obs)
    sr = float(per_bar[pick])
    sr0 = expected_max_sharpe(max(trials, 1), sr_var)
    dsr = probabilistic_sharpe(sr, sr0, n_obs, skew, kurt) if math.isfinite(sr) else math.nan
    result = None
    if trials >= 2 and len(counts) >= 2:
        cols = np.flatnonzero(finite)  # flat trials are not candidates, as for the DSR
        budget = split_budget(len(cols)) if max_splits == "auto" else max_splits
        result = pbo_from_blocks(counts, sums[0][:, cols], sums[1][:, cols],
                                 max_splits=budget, seed=seed)
    return OverfitEstimate(
        deflated_sharpe=dsr, pbo=None if result is None else result.pbo, trials=trials,
        sharpe=sr * root, expected_max_sharpe=sr0 * root, sharpe_std=math.sqrt(sr_var) * root,
        skew=skew, kurtosis=kurt, n_obs=n_obs, n_blocks=len(counts),
        n_splits=0 if result is None else result.n_splits,
        total_splits=0 if result is None else result.total_splits,
        sampled=bool(result is not None and result.sampled),
        prob_oos_loss=None if result is None else result.prob_oos_loss)
