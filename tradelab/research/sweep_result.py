"""What a sweep returns: the table, the overfitting estimate, the walk-forward result.

:func:`tradelab.research.sweep.sweep` builds it; it is importable from there too.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from tradelab.research import metrics as _metrics
from tradelab.research.backtest import backtest as _backtest
from tradelab.research.conventions import Execution, TradeSpec
from tradelab.research.distributed import ChunkRetry
from tradelab.research.metrics import METRICS
from tradelab.research.overfit import OverfitEstimate
from tradelab.research.walkforward import WalkForwardResult
from tradelab.strategy.base import Strategy

if TYPE_CHECKING:  # pragma: no cover
    from tradelab.research.result import BacktestResult

__all__ = ["MIN_TRADES", "SweepResult"]

#: Default of ``min_trades``: top picks with fewer round trips are flagged.
MIN_TRADES = 20


@dataclass(eq=False)
class SweepResult:
    """The outcome of :func:`sweep`.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy: one row per valid combination, the grid parameters then
        ``total_return, cagr, sharpe, sortino, max_drawdown, win_rate, n_trades,
        exposure, final_equity`` (definitions in :mod:`tradelab.research.metrics`).
    invalid : pandas.DataFrame
        The combinations that failed validation, with the reason.
    fixed : dict
        Parameters not in the grid and the value they had.
    elapsed : float
        Seconds spent on signals, simulation, metrics, the overfitting estimate and
        the walk-forward analysis.
    symbols : list of str
        The symbols of a multi-symbol sweep (then ``table`` starts with a
        ``symbol`` column and ``bars`` maps symbol → bars); empty otherwise.
    retried : list of ChunkRetry
        Chunks that failed on a cluster and were resubmitted, with each error.
    overfitting : OverfitEstimate or None
        Deflated Sharpe ratio and PBO of the sweep (of the best row's symbol);
        see :mod:`tradelab.research.overfit`. None with ``overfit=False``.
    overfitting_by_symbol : dict
        Symbol → estimate, for a multi-symbol sweep (each over its own rows).
    walk_forward : WalkForwardResult or None
        Out-of-sample results, when asked for (:mod:`tradelab.research.walkforward`).
    min_trades : int
        Rows with fewer round trips are flagged ``few_trades``.
    """

    strategy: str
    grid: dict[str, list[Any]]
    table: pd.DataFrame
    metric: str
    invalid: pd.DataFrame
    execution: Execution
    periods_per_year: float
    elapsed: float
    fixed: dict[str, Any] = field(default_factory=dict)
    strategy_cls: type[Strategy] | None = field(default=None, repr=False)
    bars: pd.DataFrame | dict[str, pd.DataFrame] | None = field(default=None, repr=False)
    symbols: list[str] = field(default_factory=list)
    retried: list[ChunkRetry] = field(default_factory=list)
    overfitting: OverfitEstimate | None = None
    overfitting_by_symbol: dict[str, OverfitEstimate] = field(default_factory=dict)
    walk_forward: WalkForwardResult | None = None
    min_trades: int = MIN_TRADES
    #: Direction and stops of every combination (long-only without stops unless given).
    trade: TradeSpec = field(default_factory=TradeSpec)

    @property
    def benchmark(self) -> dict[str, Any]:
        """Buy-and-hold over the swept bars (:func:`tradelab.research.metrics.buy_and_hold`,
        the benchmark of every backtest): ``total_return, cagr, sharpe, sortino,
        max_drawdown, final_equity``; for a multi-symbol sweep, symbol → those figures.
        Empty when the result does not hold its bars."""
        def hold(bars: pd.DataFrame) -> dict[str, float]:
            return _metrics.buy_and_hold(bars["close"].to_numpy(), self.execution.cash,
                                         self.periods_per_year)
        if self.bars is None:
            return {}
        if isinstance(self.bars, dict):
            return {str(k): hold(v) for k, v in self.bars.items()}
        return hold(self.bars)

    def beat_benchmark(self) -> pd.Series:
        """Whether each row's total return exceeds buy-and-hold over its bars."""
        bench = self.benchmark
        if not bench:
            return pd.Series(False, index=self.table.index, name="beats_hold")
        if self.symbols:
            hold = self.table["symbol"].map(lambda s: bench[str(s)]["total_return"])
        else:
            hold = pd.Series(bench["total_return"], index=self.table.index)
        return (self.table["total_return"] > hold).rename("beats_hold")

    @property
    def n_valid(self) -> int:
        return len(self.table)

    @property
    def n_invalid(self) -> int:
        return len(self.invalid)

    @property
    def params(self) -> list[str]:
        return list(self.grid)

    def top(self, n: int = 10, metric: str | None = None) -> pd.DataFrame:
        """The ``n`` best rows by ``metric`` (default the sweep's), highest first; NaN last."""
        metric = metric or self.metric
        if metric not in self.table.columns:
            raise ValueError(f"metric = {metric!r}: expected one of {', '.join(METRICS)}")
        return self.table.sort_values(metric, ascending=False, na_position="last",
                                      kind="stable").head(n)

    def few_trades(self, rows: pd.DataFrame | None = None) -> pd.Series:
        """Whether each row (default: the table's) has fewer than ``min_trades`` round trips:
        too few for its metrics to mean much."""
        rows = self.table if rows is None else rows
        return (rows["n_trades"] < self.min_trades).rename("few_trades")

    def best(self, metric: str | None = None) -> pd.Series:
        """The best row (parameters and metrics) by ``metric``; values keep their types."""
        return pd.Series(self.top(1, metric).to_dict("records")[0], dtype=object)

    def best_params(self, metric: str | None = None) -> dict[str, Any]:
        """Parameters (grid and fixed) of the best combination, as Python values."""
        row = self.best(metric)
        return {**self.fixed, **{k: row[k] for k in self.grid}}

    def backtest(self, params: Mapping[str, Any] | None = None,
                 symbol: str | None = None) -> BacktestResult:
        """Re-run one combination (default: the best) as a full :class:`BacktestResult`;
        ``symbol`` (default: the best row's) for a multi-symbol sweep."""
        if self.strategy_cls is None or self.bars is None:
            raise ValueError("this SweepResult does not hold its strategy and bars")
        chosen = {**self.fixed, **(dict(params) if params is not None else self.best_params())}
        bars = self.bars
        ppy: float | None = self.periods_per_year
        if isinstance(bars, dict):
            symbol = symbol if symbol is not None else str(self.best()["symbol"])
            if symbol not in bars:
                raise ValueError(f"symbol = {symbol!r}: swept {', '.join(self.symbols)}")
            bars, ppy = bars[symbol], None  # inferred per symbol, as the sweep did
        # swept stops (grid keys sl/tp/trail) replace the sweep's own, as in the sweep
        stops = self.trade.stops.overridden(**{k: chosen.pop(k) for k in ("sl", "tp", "trail")
                                               if k in chosen})
        return _backtest(self.strategy_cls, bars, chosen, execution=self.execution,
                         periods_per_year=ppy, direction=self.trade.direction, sl=stops.sl,
                         tp=stops.tp, trail=stops.trail, time_stop=stops.time_bars)

    def heatmap(self, x: str, y: str, metric: str | None = None, agg: str = "max") -> Any:
        """An hvplot heatmap of ``metric`` over two parameters (other parameters
        aggregated with ``agg``)."""
        from tradelab.research.plots import _hv

        _hv()  # registers .hvplot once (a re-import re-sends the notebook extension)

        metric = metric or self.metric
        for name in (x, y):
            if name not in self.grid:
                raise ValueError(f"{name!r} is not a swept parameter ({', '.join(self.grid)})")
        from bokeh.models import NumeralTickFormatter

        data = self.table.groupby([x, y], as_index=False)[metric].agg(agg)
        # Colour-bar ticks with separators and no scientific notation (final_equity
        # would read 1.4e+5 otherwise).
        return data.hvplot.heatmap(x=x, y=y, C=metric, cmap="RdYlGn", colorbar=True,
                                   title=f"{self.strategy}: {metric} ({agg})",
                                   width=600, height=450).opts(
            cformatter=NumeralTickFormatter(format="0,0.[000]"))

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-safe: settings, counts and the rows (all, or the ``top`` best)."""
        from dataclasses import asdict

        from tradelab.research.metrics import json_safe

        rows = self.top(top) if top else self.table
        rows = rows.assign(few_trades=self.few_trades(rows))
        return json_safe({
            "strategy": self.strategy, "grid": self.grid, "fixed": self.fixed,
            "metric": self.metric, "n_valid": self.n_valid, "n_invalid": self.n_invalid,
            "execution": asdict(self.execution), "periods_per_year": self.periods_per_year,
            "direction": self.trade.direction, "stops": asdict(self.trade.stops),
            "elapsed": self.elapsed, "min_trades": self.min_trades,
            "rows": rows.to_dict("records"),
            **({"symbols": self.symbols} if self.symbols else {}),
            **({"retried": [asdict(r) for r in self.retried]} if self.retried else {}),
            "overfitting": None if self.overfitting is None else self.overfitting.to_dict(),
            **({"overfitting_by_symbol": {k: v.to_dict()
                                          for k, v in self.overfitting_by_symbol.items()}}
               if self.overfitting_by_symbol else {}),
            "walk_forward": None if self.walk_forward is None else self.walk_forward.to_dict(),
            "benchmark": self.benchmark,
        })

    def summary(self) -> list[str]:
        """The overfitting estimate, the pick's trade count and the walk-forward result
        as lines of text (what the CLI prints under the table)."""
        lines = []
        best = self.best()
        if best["n_trades"] < self.min_trades:
            lines.append(f"warning: the best row has {best['n_trades']} round trips "
                         f"(< min_trades {self.min_trades}); its metrics rest on few trades")
        bench = self.benchmark
        if bench:
            beat = int(self.beat_benchmark().sum())
            if self.symbols:
                held = ", ".join(f"{k} {v['total_return']:.2%}" for k, v in bench.items())
                lines.append(f"buy-and-hold over the same bars: total return {held}; "
                             f"{beat:,} of {self.n_valid:,} rows beat it")
            else:
                lines.append(f"buy-and-hold over the same bars: total return "
                             f"{bench['total_return']:.2%}, CAGR {bench['cagr']:.2%}, Sharpe "
                             f"{bench['sharpe']:.2f}, max drawdown {bench['max_drawdown']:.2%}; "
                             f"{beat:,} of {self.n_valid:,} rows beat its return")
        of = self.overfitting
        if of is not None:
            pbo = "n/a" if of.pbo is None else f"{of.pbo:.2f}"
            how = (f"{of.n_splits:,} of {of.total_splits:,} splits, sampled" if of.sampled
                   else f"{of.n_splits:,} splits")
            lines.append(f"overfitting: deflated Sharpe {_prob(of.deflated_sharpe)} "
                         f"(Sharpe {of.sharpe:.2f} vs {of.expected_max_sharpe:.2f} expected "
                         f"from the best of {of.trials:,} trials by luck); PBO {pbo} "
                         f"(CSCV, {of.n_blocks} blocks, {how})")
        wf = self.walk_forward
        if wf is not None:
            s, ins = wf.stats, wf.in_sample
            eff = "n/a" if wf.efficiency is None else f"{wf.efficiency:.2f}"
            lines.append(f"walk-forward ({wf.spec.mode}, {wf.spec.folds} folds, "
                         f"{wf.spec.train:.0%} in sample): out-of-sample return "
                         f"{s['total_return']:.2%}, CAGR {s['cagr']:.2%}, Sharpe "
                         f"{s['sharpe']:.2f}, {s['n_trades']} round trips; in-sample best "
                         f"(whole period) CAGR {ins['best_cagr']:.2%}, Sharpe "
                         f"{ins['best_sharpe']:.2f}; efficiency {eff}")
        return lines

    def _repr_html_(self) -> str:
        head = (f"<h4>{html.escape(self.strategy)} sweep: {self.n_valid} combinations"
                f" ({self.n_invalid} invalid skipped), {self.elapsed:.2f} s; "
                f"top 10 by {html.escape(self.metric)}</h4>")
        top = self.top(10)
        notes = "".join(f"<p>{html.escape(line)}</p>" for line in self.summary())
        folds = ("" if self.walk_forward is None else
                 self.walk_forward.folds.to_html(index=False, float_format=_fmt))
        table = top.assign(few_trades=self.few_trades(top)).to_html(index=False,
                                                                    float_format=_fmt)
        return f"<div>{head}{table}{notes}{folds}</div>"

    def __repr__(self) -> str:
        best = self.best()
        args = ", ".join(f"{k}={best[k]}" for k in ["symbol"] * bool(self.symbols) + self.params)
        return (f"<SweepResult {self.strategy}: {self.n_valid} valid, {self.n_invalid} invalid; "
                f"best {self.metric}={best[self.metric]:.4f} at {args}>")


def _fmt(x: float) -> str:
    return f"{x:,.4f}"


def _prob(p: float) -> str:
    return "n/a" if p != p else f"{p:.2f}"
