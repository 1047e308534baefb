"""Parameter sweeps: every combination of a grid, many backtests per vectorbt call.

Strategies with ``vectorized_params = True`` compute the signals of a whole
chunk of combinations in one ``signals`` call (their indicators broadcast over
parameter arrays); others are called once per combination. Either way
``chunk_size`` columns are then simulated at a time, which bounds memory, and
only their metrics are kept (:func:`tradelab.research.simulate.chunk_metrics`:
vectorbt's signal kernel runs on the bars that can trade only and the metrics are
replayed from its order records, no Portfolio is built; with a time stop a
``vbt.Portfolio.from_signals`` per chunk). Chunks run on ``workers`` threads at
once: signals are numpy, and the simulation and metric kernels are numba
functions that release the GIL (:mod:`tradelab.research._kernels`,
:mod:`tradelab.research._signal_kernels`).

Every sweep also estimates how much of its best result is selection luck (deflated
Sharpe ratio and probability of backtest overfitting, :mod:`tradelab.research.overfit`)
from per-block sums of each column's returns, kept by each chunk; with
``walk_forward=`` it re-runs the grid on training windows and tests each window's
pick out of sample (:mod:`tradelab.research.walkforward`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradelab.errors import ParameterError
from tradelab.research.backtest import (
    check_bars,
    resolve_execution,
    strategy_class,
)
from tradelab.research.conventions import Execution, TradeSpec
from tradelab.research.conventions import periods_per_year as infer_ppy
from tradelab.research.distributed import BarsRef, ChunkRetry, connect, resolve_inputs, run_on_cluster
from tradelab.research.metrics import METRICS
from tradelab.research.overfit import OverfitEstimate, block_edges, estimate

# run_chunk lives in simulate (Dask workers run it without importing this module);
# it stays importable from here. Sweeps run run_window (the same, plus windows and
# the block sums of the overfitting estimate).
from tradelab.research.simulate import STOP_KEYS
from tradelab.research.simulate import run_chunk as run_chunk
from tradelab.research.sweep_result import MIN_TRADES, SweepResult
from tradelab.research.walkforward import WalkForward, Window, run_window
from tradelab.research.walkforward import walk_forward as run_walk_forward
from tradelab.strategy.base import Strategy
from tradelab.strategy.exits import Stops

if TYPE_CHECKING:  # pragma: no cover
    from tradelab.config import Settings

__all__ = ["SweepResult", "WalkForward", "expand_grid", "sweep"]

#: Blocks of the CSCV estimate of PBO (:mod:`tradelab.research.overfit`).
CSCV_BLOCKS = 16



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
               bars: pd.DataFrame, ppy: float, workers: int, bar: Any,
               window: Window | None = None, edges: np.ndarray | None = None,
               trade: TradeSpec | None = None) -> list[dict[str, np.ndarray]]:
    def run(chunk: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        return run_window(cls, chunk, bars, ex, ppy, window, edges, trade)

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
          walk_forward: int | WalkForward | None = None, min_trades: int = MIN_TRADES,
          overfit: bool = True, settings: Settings | None = None,
          direction: str | None = None, sl: float | None = None, tp: float | None = None,
          trail: float | None = None, time_stop: int | None = None,
          **overrides: Any) -> SweepResult:
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
        Parameter name → values to try; ``sl``, ``tp`` and ``trail`` sweep the declared
        exits (fractions, crossed with the parameters).
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
    walk_forward
        Also run a walk-forward analysis (:mod:`tradelab.research.walkforward`):
        a number of folds (rolling windows, 70 % in sample; 0 or None: off) or a
        :class:`~tradelab.research.walkforward.WalkForward`. One symbol only.
    min_trades
        Rows with fewer round trips are flagged (``few_trades``) in
        :meth:`SweepResult.to_dict` and the CLI's table.
    overfit
        Compute the overfitting estimate (deflated Sharpe ratio and PBO,
        :mod:`tradelab.research.overfit`); on by default, costs a few percent.
    settings
        Configuration that resolves BarsRefs (default :func:`tradelab.config.load_config`).
    direction, sl, tp, trail, time_stop
        Side and declared exits of every combination, as for
        :func:`~tradelab.research.backtest.backtest` (``None``: the strategy's own).
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
    if isinstance(min_trades, bool) or not isinstance(min_trades, int) or min_trades < 0:
        raise ValueError(f"min_trades = {min_trades!r}: must be an integer >= 0")
    wf = (WalkForward(walk_forward) if isinstance(walk_forward, int) and walk_forward
          else walk_forward or None)
    registry = overrides.pop("registry", None)
    ppy_given = overrides.pop("periods_per_year", None)
    ex = resolve_execution(execution, _caller="sweep", **overrides)
    if chunk_size is None:
        from tradelab.config import ResearchSettings

        chunk_size = ResearchSettings().sweep_chunk_size
    if chunk_size < 1:
        raise ValueError(f"chunk_size = {chunk_size!r}: must be >= 1")
    cls = strategy_class(strategy, registry)
    trade = TradeSpec.resolve(cls, direction, sl, tp, trail, time_stop)
    base = strategy.params if isinstance(strategy, Strategy) and strategy._batch is None else {}
    if isinstance(bars, pd.DataFrame) and symbols is None:
        frames: dict[str | None, pd.DataFrame] = {None: bars}
        refs: dict[str | None, BarsRef] = {}
    else:
        frames, refs = resolve_inputs(bars, symbols, settings)
    frames = {k: check_bars(v) for k, v in frames.items()}
    if wf is not None and len(frames) > 1:
        raise ValueError("walk_forward: one symbol at a time")
    ppy = {k: infer_ppy(v.index, ppy_given) for k, v in frames.items()}
    edges = {k: _cscv_edges(len(v)) for k, v in frames.items()} if overfit else None

    started = time.perf_counter()
    valid, invalid = expand_grid(cls, {k: v for k, v in grid.items() if k not in STOP_KEYS}, base)
    if any(k in grid for k in STOP_KEYS):
        valid, invalid = _with_stop_axes(valid, invalid, grid, trade)
    if not valid:
        first = invalid[0][1] if invalid else "empty grid"
        raise ParameterError(f"{cls.name}: no valid combination in the grid "
                             f"({len(invalid)} invalid; first: {first})")
    chunks = [valid[lo:lo + chunk_size] for lo in range(0, len(valid), chunk_size)]
    retried: list[ChunkRetry] = []
    with contextlib.ExitStack() as stack:
        if cluster is None:
            n_threads = _resolve_workers(workers, len(chunks))
            client = None
        else:
            _resolve_workers(workers, 1)  # validates it (the local cluster's processes)
            client = stack.enter_context(connect(cluster, workers))

        def run(todo: Mapping[str | None, pd.DataFrame], window: Window | None,
                blocks: Mapping[str | None, np.ndarray] | None,
                desc: str) -> dict[str | None, list[dict[str, np.ndarray]]]:
            if client is None:
                with tqdm(total=len(valid) * len(todo), disable=not progress, unit="bt",
                          desc=desc) as bar:
                    return {k: _run_local(cls, ex, chunks, v, ppy[k], n_threads, bar, window,
                                          None if blocks is None else blocks[k], trade)
                            for k, v in todo.items()}
            with tqdm(total=len(chunks) * len(todo), disable=not progress, unit="chunk",
                      desc=f"{desc} on dask") as bar:
                out, again = run_on_cluster(client, cls, ex, chunks, todo, refs, ppy, settings,
                                            retries, bar, window, blocks, trade)
            retried.extend(again)
            return out

        parts = run(frames, None, edges, f"sweep {cls.name}")
        table, tables = _tables(parts, valid, grid)
        overfitting = {k: _estimate(parts[k], tables[k], metric, ppy[k], edges[k])
                       for k in frames} if edges is not None else {}
        wf_result = None
        if wf is not None:
            key, frame = next(iter(frames.items()))
            best = tables[key].loc[_order(tables[key], metric)[0]].to_dict()
            wf_result = run_walk_forward(
                wf, lambda w: run({key: frame}, w, None, f"walk-forward {cls.name}")[key],
                cls, valid, list(grid), frame, ex, ppy[key], metric, best, trade)
    invalid_table = pd.DataFrame([{**c, "reason": r} for c, r in invalid],
                                 columns=[*grid, "reason"])
    multi = None not in frames
    if multi:
        sym = str(table.loc[_order(table, metric)[0], "symbol"])
        estimate_ = overfitting.get(sym)
    else:
        estimate_ = overfitting.get(None)
    return SweepResult(strategy=cls.name, grid={k: list(v) for k, v in grid.items()},
                       table=table, metric=metric, invalid=invalid_table, execution=ex,
                       periods_per_year=next(iter(ppy.values())),
                       elapsed=time.perf_counter() - started,
                       fixed={k: v for k, v in valid[0].items() if k not in grid},
                       strategy_cls=cls, bars=frames if multi else frames[None],
                       symbols=[str(k) for k in frames] if multi else [], retried=retried,
                       overfitting=estimate_, min_trades=min_trades,
                       overfitting_by_symbol={str(k): v for k, v in overfitting.items()}
                       if multi else {},
                       walk_forward=wf_result, trade=trade)


def _with_stop_axes(valid: list[dict[str, Any]], invalid: list[tuple[dict[str, Any], str]],
                    grid: Mapping[str, Any], trade: TradeSpec
                    ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """Each valid combination crossed with the swept ``sl``/``tp``/``trail`` values
    (the stop keys vary fastest); a stop combination the rules refuse (e.g. ``sl`` and
    ``trail`` together) is listed as invalid with the reason."""
    axes: dict[str, list[float]] = {}
    for key in STOP_KEYS:
        if key not in grid:
            continue
        raw = grid[key] if isinstance(grid[key], (list, tuple)) else np.atleast_1d(grid[key])
        if not len(raw):
            raise ParameterError(f"empty grid for {key}")
        try:
            axes[key] = [float(v) for v in raw]
        except (TypeError, ValueError):
            raise ParameterError(f"{key} = {list(raw)!r}: expected fractions") from None
        for v in axes[key]:
            # A value no stop can take is a typo, not a combination to skip: refuse it
            # as --sl would; only values refused together (sl with trail) are skipped.
            try:
                Stops().overridden(**{key: v})
            except ValueError as exc:
                raise ParameterError(f"grid {exc}") from None
    out_valid: list[dict[str, Any]] = []
    out_invalid = list(invalid)
    names = [k for k in grid if k not in STOP_KEYS]
    for combo in valid:
        for values in itertools.product(*axes.values()):
            stops = dict(zip(axes, values, strict=True))
            try:
                TradeSpec(trade.direction, trade.stops.overridden(**stops))
            except ValueError as exc:
                out_invalid.append(({**{k: combo[k] for k in names}, **stops}, str(exc)))
                continue
            out_valid.append({**combo, **stops})
    return out_valid, out_invalid


def _cscv_edges(n_bars: int) -> np.ndarray:
    """Block edges of the overfitting estimate: ``CSCV_BLOCKS`` blocks, fewer (an even
    number, >= 2 bars each) for short series, one block (no PBO) below 4 bars."""
    n_blocks = min(CSCV_BLOCKS, n_bars // 2 // 2 * 2) or 1
    return block_edges(n_bars, n_blocks)


def _order(table: pd.DataFrame, metric: str) -> pd.Index:
    """Row labels best first, as :meth:`SweepResult.top` ranks (NaN last, stable)."""
    return table[metric].sort_values(ascending=False, na_position="last", kind="stable").index


def _tables(parts: Mapping[str | None, list[dict[str, np.ndarray]]],
            valid: list[dict[str, Any]], grid: Mapping[str, Any]
            ) -> tuple[pd.DataFrame, dict[str | None, pd.DataFrame]]:
    """The result table and, per symbol, its own table (index from 0)."""
    tables = {}
    for key, chunk_parts in parts.items():
        table = pd.DataFrame(valid)[list(grid)]
        for name in METRICS:
            table[name] = np.concatenate([p[name] for p in chunk_parts])
        if key is not None:
            table.insert(0, "symbol", key)
        tables[key] = table
    if None in tables:
        return tables[None], tables
    return pd.concat(list(tables.values()), ignore_index=True), tables


def _estimate(chunk_parts: list[dict[str, np.ndarray]], table: pd.DataFrame, metric: str,
              ppy: float, edges: np.ndarray) -> OverfitEstimate:
    sums = np.concatenate([p["blocks"] for p in chunk_parts], axis=2)
    return estimate(sums, np.diff(edges), table["sharpe"].to_numpy(dtype=float),
                    int(_order(table, metric)[0]), ppy)
