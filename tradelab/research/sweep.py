"""Parameter sweeps: every combination of a grid, many backtests per vectorbt call.

Strategies with ``vectorized_params = True`` compute the signals of a whole
chunk of combinations in one ``signals`` call (their indicators broadcast over
parameter arrays); others are called once per combination. Either way vectorbt
then simulates ``chunk_size`` columns at a time, which bounds memory (10,000
columns in one call take gigabytes) and is faster than one huge call. Chunks run
on ``workers`` threads at once: signals are numpy, and the simulation and metric
kernels are numba functions that release the GIL (:mod:`tradelab.research._kernels`).
"""

from __future__ import annotations

import html
import itertools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradelab.errors import ParameterError
from tradelab.research.backtest import (
    backtest as _backtest,
)
from tradelab.research.backtest import (
    check_bars,
    resolve_execution,
    strategy_class,
)
from tradelab.research.conventions import Execution
from tradelab.research.conventions import periods_per_year as infer_ppy
from tradelab.research.distributed import BarsRef, ChunkRetry, connect, resolve_inputs, run_on_cluster
from tradelab.research.metrics import METRICS

# run_chunk lives in simulate (Dask workers run it without importing this module);
# it stays importable from here.
from tradelab.research.simulate import run_chunk as run_chunk
from tradelab.strategy.base import Strategy

if TYPE_CHECKING:  # pragma: no cover
    from tradelab.config import Settings
    from tradelab.research.result import BacktestResult

__all__ = ["SweepResult", "expand_grid", "sweep"]


def expand_grid(cls: type[Strategy], grid: Mapping[str, Any],
                base: Mapping[str, Any] | None = None
                ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """Every combination of ``grid`` (cartesian product, in grid order), validated.

    Returns
    -------
    valid, invalid
        ``valid``: full parameter dicts (typed values) of the combinations that
        validate; ``invalid``: ``(combination, reason)`` for the others.

    Raises
    ------
    ParameterError
        A grid key that is not a parameter of the strategy, or an empty grid axis.
    """
    specs = cls.param_objects()
    unknown = sorted(set(grid) - set(specs))
    if unknown:
        raise ParameterError(f"{cls.name}: unknown parameter(s) {', '.join(unknown)}; "
                             f"known: {', '.join(specs) or '(none)'}")
    axes = {k: list(np.atleast_1d(v).tolist()) if not isinstance(v, (list, tuple)) else list(v)
            for k, v in grid.items()}
    empty = [k for k, v in axes.items() if not v]
    if empty:
        raise ParameterError(f"{cls.name}: empty grid for {', '.join(empty)}")
    fixed = dict(base or {})
    valid: list[dict[str, Any]] = []
    invalid: list[tuple[dict[str, Any], str]] = []
    for values in itertools.product(*axes.values()):
        combo = dict(zip(axes, values, strict=True))
        try:
            valid.append(cls(**{**fixed, **combo}).params)
        except ParameterError as exc:
            invalid.append((combo, str(exc)))
    return valid, invalid


def _run_local(cls: type[Strategy], ex: Execution, chunks: list[list[dict[str, Any]]],
               bars: pd.DataFrame, ppy: float, workers: int,
               bar: Any) -> list[dict[str, np.ndarray]]:
    close = bars["close"].to_numpy(dtype=float)

    def run(chunk: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        return run_chunk(cls, chunk, bars, ex, ppy, close)

    if workers > 1:
        return _run_threaded(run, chunks, workers, bar)
    parts = []
    for chunk in chunks:  # one chunk alive at a time
        parts.append(run(chunk))
        bar.update(len(chunk))
    return parts


def _resolve_workers(workers: int | None, n_chunks: int) -> int:
    if workers is None:
        workers = os.cpu_count() or 1
    elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers = {workers!r}: must be an integer >= 1")
    return max(1, min(workers, n_chunks))


def _run_threaded(run: Callable[[list[dict[str, Any]]], dict[str, np.ndarray]],
                  chunks: list[list[dict[str, Any]]], workers: int,
                  bar: Any) -> list[dict[str, np.ndarray]]:
    """``[run(c) for c in chunks]`` on ``workers`` threads, results in chunk order.

    At most ``workers`` chunks are in flight, which bounds memory like the
    sequential loop does; the first error cancels the chunks not yet started.
    """
    parts: list[dict[str, np.ndarray] | None] = [None] * len(chunks)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tradelab-sweep") as pool:
        pending: dict[Future[dict[str, np.ndarray]], int] = {}
        queue = iter(enumerate(chunks))
        try:
            for i, chunk in itertools.islice(queue, workers):
                pending[pool.submit(run, chunk)] = i
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    parts[i] = future.result()
                    bar.update(len(chunks[i]))
                    for j, chunk in itertools.islice(queue, 1):
                        pending[pool.submit(run, chunk)] = j
        finally:
            for future in pending:
                future.cancel()
    return [p for p in parts if p is not None]


def sweep(strategy: Strategy | type[Strategy] | str,
          bars: pd.DataFrame | BarsRef | Mapping[str, pd.DataFrame | BarsRef],
          grid: Mapping[str, Sequence[Any]], *, execution: Execution | None = None,
          metric: str = "sharpe", chunk_size: int | None = None, progress: bool = True,
          workers: int | None = None, cluster: Any = None,
          symbols: Sequence[str] | None = None, retries: int = 2,
          settings: Settings | None = None, **overrides: Any) -> SweepResult:
    """Backtest every valid combination of ``grid``.

    Parameters
    ----------
    strategy
        Instance (its values fix the parameters not in the grid), subclass or
        registry name.
    bars
        Contract bars; or a :class:`~tradelab.research.distributed.BarsRef`
        (loaded through the cache of ``settings``); or a mapping symbol → either,
        which sweeps every symbol into one table with a leading ``symbol`` column.
    grid
        Parameter name → values to try.
    execution
        The convention (default ``Execution()``).
    metric
        What :meth:`SweepResult.best` ranks by (higher is better).
    chunk_size
        Combinations per vectorbt call (default ``ResearchSettings.sweep_chunk_size``).
    progress
        Show a progress bar (``tqdm.auto``: a widget in Jupyter); over chunks on a cluster.
    workers
        Chunks simulated at the same time, on threads (the simulation and metric
        kernels release the GIL). Default: the number of CPUs, capped by the
        number of chunks; 1 runs them one after the other. The table is the same
        (values and row order) whatever the number of workers. With
        ``cluster="local"``: the number of worker processes.
    cluster
        ``None`` (this process), ``"local"`` (a local Dask cluster, closed after),
        a Dask scheduler address (``"tcp://host:8786"``), a cluster object or a
        ``distributed.Client``: chunks then run as Dask tasks (see
        :mod:`tradelab.research.distributed`); the table is the same as locally.
    symbols
        With ``bars`` a BarsRef: sweep each of these symbols (the ref's other
        fields fixed), as with a mapping.
    retries
        On a cluster, how many times a failed chunk is resubmitted before the
        sweep fails; retried chunks are listed in :attr:`SweepResult.retried`.
    settings
        Configuration that resolves BarsRefs (default :func:`tradelab.config.load_config`).
    **overrides
        Execution fields (``cash``, ``fees``, …), ``periods_per_year`` and
        ``registry``, as for :func:`~tradelab.research.backtest.backtest`.

    Returns
    -------
    SweepResult
        One row per valid combination (and symbol); invalid ones (``validate_params``
        or bounds failures) are counted in ``n_invalid`` and listed in ``invalid``.

    Raises
    ------
    ChunkFailedError
        On a cluster, a chunk that failed ``retries + 1`` times.
    """
    from tqdm.auto import tqdm

    if metric not in METRICS:
        raise ValueError(f"metric = {metric!r}: expected one of {', '.join(METRICS)}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries = {retries!r}: must be an integer >= 0")
    registry = overrides.pop("registry", None)
    ppy_given = overrides.pop("periods_per_year", None)
    ex = resolve_execution(execution, **overrides)
    if chunk_size is None:
        from tradelab.config import ResearchSettings

        chunk_size = ResearchSettings().sweep_chunk_size
    if chunk_size < 1:
        raise ValueError(f"chunk_size = {chunk_size!r}: must be >= 1")
    cls = strategy_class(strategy, registry)
    base = strategy.params if isinstance(strategy, Strategy) and strategy._batch is None else {}
    if isinstance(bars, pd.DataFrame) and symbols is None:
        frames: dict[str | None, pd.DataFrame] = {None: bars}
        refs: dict[str | None, BarsRef] = {}
    else:
        frames, refs = resolve_inputs(bars, symbols, settings)
    frames = {k: check_bars(v) for k, v in frames.items()}
    ppy = {k: infer_ppy(v.index, ppy_given) for k, v in frames.items()}

    started = time.perf_counter()
    valid, invalid = expand_grid(cls, grid, base)
    if not valid:
        first = invalid[0][1] if invalid else "empty grid"
        raise ParameterError(f"{cls.name}: no valid combination in the grid "
                             f"({len(invalid)} invalid; first: {first})")
    chunks = [valid[lo:lo + chunk_size] for lo in range(0, len(valid), chunk_size)]
    retried: list[ChunkRetry] = []
    if cluster is None:
        n_threads = _resolve_workers(workers, len(chunks))
        with tqdm(total=len(valid) * len(frames), disable=not progress, unit="bt",
                  desc=f"sweep {cls.name}") as bar:
            parts = {k: _run_local(cls, ex, chunks, v, ppy[k], n_threads, bar)
                     for k, v in frames.items()}
    else:
        _resolve_workers(workers, 1)  # validates it (the local cluster's processes)
        with connect(cluster, workers) as client, \
                tqdm(total=len(chunks) * len(frames), disable=not progress, unit="chunk",
                     desc=f"sweep {cls.name} on dask") as bar:
            parts, retried = run_on_cluster(client, cls, ex, chunks, frames, refs, ppy,
                                            settings, retries, bar)
    tables = []
    for key, chunk_parts in parts.items():
        table = pd.DataFrame(valid)[list(grid)]
        for name in METRICS:
            table[name] = np.concatenate([p[name] for p in chunk_parts])
        if key is not None:
            table.insert(0, "symbol", key)
        tables.append(table)
    invalid_table = pd.DataFrame([{**c, "reason": r} for c, r in invalid],
                                 columns=[*grid, "reason"])
    multi = None not in frames
    return SweepResult(strategy=cls.name, grid={k: list(v) for k, v in grid.items()},
                       table=pd.concat(tables, ignore_index=True) if multi else tables[0],
                       metric=metric, invalid=invalid_table, execution=ex,
                       periods_per_year=next(iter(ppy.values())),
                       elapsed=time.perf_counter() - started,
                       fixed={k: v for k, v in valid[0].items() if k not in grid},
                       strategy_cls=cls, bars=frames if multi else frames[None],
                       symbols=[str(k) for k in frames] if multi else [], retried=retried)


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
        Seconds spent on signals, simulation and metrics.
    symbols : list of str
        The symbols of a multi-symbol sweep (then ``table`` starts with a
        ``symbol`` column and ``bars`` maps symbol → bars); empty otherwise.
    retried : list of ChunkRetry
        Chunks that failed on a cluster and were resubmitted, with each error.
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
        return _backtest(self.strategy_cls, bars, chosen, execution=self.execution,
                         periods_per_year=ppy)

    def heatmap(self, x: str, y: str, metric: str | None = None, agg: str = "max") -> Any:
        """An hvplot heatmap of ``metric`` over two parameters (other parameters
        aggregated with ``agg``)."""
        import hvplot.pandas  # noqa: F401  (registers .hvplot)

        metric = metric or self.metric
        for name in (x, y):
            if name not in self.grid:
                raise ValueError(f"{name!r} is not a swept parameter ({', '.join(self.grid)})")
        data = self.table.groupby([x, y], as_index=False)[metric].agg(agg)
        return data.hvplot.heatmap(x=x, y=y, C=metric, cmap="RdYlGn", colorbar=True,
                                   title=f"{self.strategy}: {metric} ({agg})",
                                   width=600, height=450)

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-safe: settings, counts and the rows (all, or the ``top`` best)."""
        from dataclasses import asdict

        from tradelab.research.metrics import json_safe

        rows = self.top(top) if top else self.table
        return json_safe({
            "strategy": self.strategy, "grid": self.grid, "fixed": self.fixed,
            "metric": self.metric, "n_valid": self.n_valid, "n_invalid": self.n_invalid,
            "execution": asdict(self.execution), "periods_per_year": self.periods_per_year,
            "elapsed": self.elapsed, "rows": rows.to_dict("records"),
            **({"symbols": self.symbols} if self.symbols else {}),
            **({"retried": [asdict(r) for r in self.retried]} if self.retried else {}),
        })

    def _repr_html_(self) -> str:
        head = (f"<h4>{html.escape(self.strategy)} sweep: {self.n_valid} combinations"
                f" ({self.n_invalid} invalid skipped), {self.elapsed:.2f} s; "
                f"top 10 by {html.escape(self.metric)}</h4>")
        return f"<div>{head}{self.top(10).to_html(index=False, float_format=_fmt)}</div>"

    def __repr__(self) -> str:
        best = self.best()
        args = ", ".join(f"{k}={best[k]}" for k in ["symbol"] * bool(self.symbols) + self.params)
        return (f"<SweepResult {self.strategy}: {self.n_valid} valid, {self.n_invalid} invalid; "
                f"best {self.metric}={best[self.metric]:.4f} at {args}>")


def _fmt(x: float) -> str:
    return f"{x:,.4f}"
