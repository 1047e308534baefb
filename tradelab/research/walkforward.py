"""Walk-forward analysis of a sweep: choose in sample, evaluate out of sample, stitch.

The bars are cut into one first training span followed by ``folds`` test
windows of equal length that tile the series to its last bar. Fold *i* trains
on the bars just before its test window (the last ``L_train`` bars: *rolling*;
all bars from the first: *anchored*), picks the combination with the best
in-sample value of the sweep's metric, and backtests that combination on its
test window. The test windows (the same in both modes) are then stitched into
one out-of-sample equity curve by compounding their per-bar returns.

With ``train`` the in-sample fraction of a rolling window (train + test), a
series of ``n`` bars gives test windows of ``floor(n (1 - train) / (train +
folds (1 - train)))`` bars and a first training span of the rest.

No look-ahead, no cold start: every window's signals are computed on the bars of
the window preceded by ``warmup`` bars (the largest warmup of the grid, so the
values do not depend on chunking), and only the window's own bars are simulated,
starting flat with the initial cash. Each training window is swept with the
sweep's own machinery (chunks of combinations, one ``signals`` call per chunk
with parameter arrays, threads or Dask).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradelab.research import metrics
from tradelab.research.simulate import (
    chunk_all_signals,
    chunk_metrics,
    portfolio_metrics,
    run_portfolio,
    split_stops,
)
from tradelab.strategy.base import Signals

if TYPE_CHECKING:  # pragma: no cover
    from tradelab.research.conventions import Execution, TradeSpec
    from tradelab.strategy.base import Strategy
    from tradelab.strategy.exits import Stops

__all__ = ["WalkForward", "WalkForwardResult", "run_window", "walk_forward", "window_portfolio",
           "window_signals"]

#: ``(lo, hi, signals_lo)``: simulate bars ``lo:hi``, compute signals on ``signals_lo:hi``.
Window = tuple[int, int, int]
MODES = ("rolling", "anchored")


@dataclass(frozen=True)
class WalkForward:
    """How to split the bars (see the module docstring).

    Attributes
    ----------
    folds : int
        Test windows (>= 1).
    mode : str
        ``"rolling"`` (fixed-length training window just before each test
        window) or ``"anchored"`` (training from the first bar).
    train : float
        In-sample fraction of a rolling window, in (0, 1).
    """

    folds: int = 5
    mode: str = "rolling"
    train: float = 0.7

    def __post_init__(self) -> None:
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 1:
            raise ValueError(f"walk-forward folds = {self.folds!r}: must be an integer >= 1")
        if self.mode not in MODES:
            raise ValueError(f"walk-forward mode = {self.mode!r}: expected rolling or anchored")
        if not 0 < self.train < 1:
            raise ValueError(f"walk-forward train = {self.train!r}: a fraction in (0, 1)")

    def windows(self, n_bars: int) -> list[tuple[int, int, int, int]]:
        """``(train_lo, train_hi, test_lo, test_hi)`` of each fold, bar offsets."""
        test = int(n_bars * (1 - self.train) / (self.train + self.folds * (1 - self.train)))
        first = n_bars - self.folds * test
        if test < 2 or first < 2:
            raise ValueError(f"walk-forward: {n_bars} bars are too few for {self.folds} folds "
                             f"(test windows of {test} bars)")
        out = []
        for i in range(self.folds):
            lo = first + i * test
            out.append((0 if self.mode == "anchored" else lo - first, lo, lo, lo + test))
        return out


def window_signals(cls: type[Strategy], combos: Sequence[dict[str, Any]], bars: pd.DataFrame,
                   window: Window | None = None, trade: TradeSpec | None = None
                   ) -> tuple[Signals, pd.DataFrame, list[Stops] | None]:
    """The signals of ``combos`` on a window, the window's bars and each column's stops.

    Signals come from one :func:`~tradelab.research.simulate.chunk_all_signals` call on
    ``bars[signals_lo:hi]``, cut to ``lo:hi``; without a window (or the whole series)
    this is exactly what a sweep chunk simulates.
    """
    n = len(bars)
    lo, hi, slo = window if window is not None else (0, n, 0)
    if not 0 <= slo <= lo < hi <= n:
        raise ValueError(f"window {window!r} outside 0..{n}")
    params, column_stops = split_stops(combos, trade)
    sig = chunk_all_signals(cls, params, bars if (slo, hi) == (0, n) else bars.iloc[slo:hi])
    if lo > slo:
        sig = Signals(*(None if v is None else v.iloc[lo - slo:] for v in sig))
    sim = bars if (lo, hi) == (0, n) else bars.iloc[lo:hi]
    return sig, sim, column_stops


def window_portfolio(cls: type[Strategy], combos: Sequence[dict[str, Any]], bars: pd.DataFrame,
                     execution: Execution, window: Window | None = None,
                     trade: TradeSpec | None = None) -> tuple[Any, pd.DataFrame]:
    """The vectorbt portfolio of ``combos`` on a window (:func:`window_signals`), and
    the window's bars."""
    sig, sim, column_stops = window_signals(cls, combos, bars, window, trade)
    return run_portfolio(execution, sim, sig.entries, sig.exits, trade, sig, column_stops), sim


def run_window(cls: type[Strategy], combos: Sequence[dict[str, Any]], bars: pd.DataFrame,
               execution: Execution, ppy: float, window: Window | None = None,
               edges: np.ndarray | None = None,
               trade: TradeSpec | None = None) -> dict[str, np.ndarray]:
    """Metrics of one chunk on a window (:func:`window_signals`, then
    :func:`~tradelab.research.simulate.chunk_metrics`); with ``edges``, also
    ``"blocks"``: the per-block power sums of each column's returns.

    The per-chunk function of every sweep, local or on Dask; without a window or
    edges it computes what :func:`~tradelab.research.simulate.run_chunk` does.
    """
    sig, sim, column_stops = window_signals(cls, combos, bars, window, trade)
    return chunk_metrics(execution, sim, sig, ppy, trade, column_stops, edges)


@dataclass(eq=False)
class WalkForwardResult:
    """Out-of-sample performance of a sweep.

    Attributes
    ----------
    spec : WalkForward
    folds : pandas.DataFrame
        One row per fold: ``fold, train_start, train_end, test_start, test_end``
        (bar times, ends inclusive), the chosen parameters, ``is_<metric>``,
        ``is_cagr``, ``is_round_trips`` (in sample) and ``oos_<metric>``, ``oos_return``,
        ``oos_sharpe``, ``oos_round_trips`` (its test window).
    equity : pandas.Series
        Stitched out-of-sample equity: the test windows' per-bar returns compounded
        from the initial cash.
    stats : dict
        Metrics of :mod:`tradelab.research.metrics` on the stitched equity.
    in_sample : dict
        ``best_<metric>, best_cagr, best_sharpe, best_total_return`` of the whole-period
        best (hindsight, fully in sample) and ``mean_fold_<metric>`` over the folds.
    efficiency : float or None
        Walk-forward efficiency: stitched out-of-sample CAGR over the folds' mean
        in-sample CAGR (None unless that is positive).
    warmup : int
        Bars before each window its signals were computed on.
    """

    spec: WalkForward
    metric: str
    folds: pd.DataFrame
    equity: pd.Series = field(repr=False)
    stats: dict[str, Any]
    in_sample: dict[str, Any]
    efficiency: float | None
    warmup: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the spec, folds (records), stitched stats and the comparison."""
        return metrics.json_safe({
            **asdict(self.spec), "metric": self.metric, "warmup": self.warmup,
            "folds": self.folds.to_dict("records"), "oos": self.stats,
            "in_sample": self.in_sample, "efficiency": self.efficiency,
        })


def _pick(values: np.ndarray) -> int:
    """The row :meth:`SweepResult.top` puts first: highest, NaN last, first on ties."""
    order = pd.Series(values).sort_values(ascending=False, na_position="last", kind="stable")
    return int(order.index[0])


def walk_forward(spec: WalkForward, sweep_window: Callable[[Window], list[dict[str, np.ndarray]]],
                 cls: type[Strategy], valid: Sequence[dict[str, Any]], grid: Sequence[str],
                 bars: pd.DataFrame, execution: Execution, ppy: float, metric: str,
                 full_best: dict[str, Any], trade: TradeSpec | None = None) -> WalkForwardResult:
    """Run the folds of ``spec`` (see the module docstring).

    Parameters
    ----------
    sweep_window
        Sweeps every combination of ``valid`` on a window and returns the chunk
        results in order (the sweep's local or Dask runner).
    valid
        The combinations (full parameter dicts), in table order.
    grid
        The swept parameter names (the fold table shows them).
    full_best
        The whole-period best row (its metrics).
    trade
        Direction and stops of every run (default long-only, no stops).
    """
    warmup = max(int(cls(**c).warmup) for c in split_stops(valid, trade)[0])
    cash = execution.cash
    rows, returns, positions, pnl, is_open = [], [], [], [], []
    for i, (tr_lo, tr_hi, te_lo, te_hi) in enumerate(spec.windows(len(bars))):
        if te_lo < warmup:
            raise ValueError(f"walk-forward: the first test window starts at bar {te_lo}, "
                             f"before the {warmup} bars of warmup; use fewer folds or a "
                             "larger train fraction")
        parts = sweep_window((tr_lo, tr_hi, max(0, tr_lo - warmup)))
        ins = {k: np.concatenate([p[k] for p in parts]) for k in (metric, "cagr", "n_trades")}
        j = _pick(ins[metric])
        chosen = valid[j]
        pf, sim = window_portfolio(cls, [chosen], bars, execution, (te_lo, te_hi, te_lo - warmup),
                                   trade)
        oos = {k: v[0].item() for k, v in
               portfolio_metrics(pf, cash, ppy, sim["close"].to_numpy(dtype=float)).items()}
        value = np.asarray(pf.value(), dtype=float).reshape(-1)
        returns.append(metrics.returns(value, cash))
        positions.append(np.asarray(pf.assets(), dtype=float).reshape(-1))
        trades = pf.trades.values
        pnl.append(trades["pnl"])
        is_open.append(trades["status"] == 0)
        idx = bars.index
        rows.append({"fold": i + 1, "train_start": idx[tr_lo], "train_end": idx[tr_hi - 1],
                     "test_start": idx[te_lo], "test_end": idx[te_hi - 1],
                     **{k: chosen[k] for k in grid},
                     f"is_{metric}": ins[metric][j].item(), "is_cagr": ins["cagr"][j].item(),
                     "is_round_trips": int(ins["n_trades"][j]), f"oos_{metric}": oos[metric],
                     "oos_return": oos["total_return"], "oos_sharpe": oos["sharpe"],
                     "oos_round_trips": int(oos["n_trades"])})
    r = np.concatenate(returns)
    value = cash * np.cumprod(1.0 + r)
    position = np.concatenate(positions)
    pnls = np.concatenate(pnl)
    stats = {k: v[0].item() for k, v in metrics.compute(
        value[:, None], position[:, None], cash, ppy, np.zeros(len(pnls), dtype=np.int64),
        pnls, np.concatenate(is_open)).items()}
    folds = pd.DataFrame(rows)
    mean_is_cagr = float(folds["is_cagr"].mean())
    oos_cagr = stats["cagr"]
    efficiency = oos_cagr / mean_is_cagr if mean_is_cagr > 0 and math.isfinite(oos_cagr) else None
    in_sample = {f"best_{metric}": full_best[metric], "best_cagr": full_best["cagr"],
                 "best_sharpe": full_best["sharpe"],
                 "best_total_return": full_best["total_return"],
                 f"mean_fold_{metric}": float(folds[f"is_{metric}"].mean())}
    start = spec.windows(len(bars))[0][2]
    equity = pd.Series(value, index=bars.index[start:start + len(value)], name="oos_equity")
    return WalkForwardResult(spec=spec, metric=metric, folds=folds, equity=equity, stats=stats,
                             in_sample=in_sample, efficiency=efficiency, warmup=warmup)
