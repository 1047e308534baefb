"""The simulation every backtest and sweep shares: signals → vectorbt → metrics.

This module sits below :mod:`~tradelab.research.backtest`,
:mod:`~tradelab.research.result`, :mod:`~tradelab.research.sweep` and
:mod:`~tradelab.research.distributed` and imports none of them, so each of those can
use it without importing another (a result computes its metrics here, a Dask worker
runs a chunk here). vectorbt and the numba kernels are imported when a simulation
first runs.

A sweep chunk (:func:`chunk_metrics`) needs only metrics, not a Portfolio. It runs
vectorbt's signal kernel on the bars that can trade only (a flag, or an active stop:
:mod:`tradelab.research._signal_kernels`, the same order records as
``vbt.Portfolio.from_signals`` without the per-cell cost, the broadcast copies or the
Portfolio object) and computes the metrics from the order records
(:func:`tradelab.research._kernels.equity_metrics`, which also gives the overfitting
estimate's block sums in the same pass). Runs with a time stop (vectorbt callbacks)
go through ``vbt.Portfolio.from_signals`` (:func:`run_portfolio`), as a backtest does.
A borrow fee on shorts repeats either path to the backtest's fixed point
(:mod:`tradelab.research.borrow`) for all the chunk's columns at once, with fixed fees
per bar and column. The
arguments of both come from one place,
:func:`tradelab.research.conventions.from_signals_kwargs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradelab.research import metrics
from tradelab.research.conventions import Execution, TradeSpec, from_signals_kwargs
from tradelab.strategy.base import Signals, Strategy
from tradelab.strategy.exits import Stops

if TYPE_CHECKING:
    from tradelab.research.borrow import BorrowFees

__all__ = ["ENGINE", "STOP_KEYS", "chunk_all_signals", "chunk_metrics", "chunk_signals",
           "portfolio_metrics", "run_chunk", "run_portfolio", "run_with_borrow", "split_stops"]

#: Grid keys of a sweep that set a declared exit rather than a strategy parameter.
STOP_KEYS = ("sl", "tp", "trail")

#: vectorbt engine of every simulation. numba, pinned (installing ``vectorbt-rust``
#: would otherwise switch ``engine="auto"`` to Rust): results are identical, but
#: vectorbt-rust 1.2.0 simulates about half as fast, and the numba kernel is
#: disk-cached and runs sweep chunks on threads (see :mod:`tradelab.research._kernels`).
ENGINE = "numba"


def run_portfolio(execution: Execution, bars: pd.DataFrame,
                  entries: pd.Series | pd.DataFrame, exits: pd.Series | pd.DataFrame,
                  trade: TradeSpec | None = None, signals: Signals | None = None,
                  column_stops: Sequence[Stops] | None = None) -> Any:
    """``vbt.Portfolio.from_signals`` under the convention (one or many columns).

    ``trade``: direction and stops (default long-only, no stops); ``signals``: the
    strategy's signals, for their short flags and per-bar stop fractions;
    ``column_stops``: each column's stops (a sweep over ``sl``/``tp``/``trail``).
    Shorts pay ``execution.borrow_fee`` on their cover, as in a backtest.
    """
    kwargs = from_signals_kwargs(execution, bars, entries, exits, trade, signals, column_stops)
    if _pays_borrow(execution, trade):
        return _borrow_portfolio(execution, bars, kwargs)[0]
    return _portfolio(kwargs)


def _pays_borrow(execution: Execution, trade: TradeSpec | None) -> bool:
    return bool(execution.borrow_fee) and trade is not None and trade.direction != "long"


def _portfolio(kwargs: dict[str, Any]) -> Any:
    """``vbt.Portfolio.from_signals(**kwargs)`` on the pinned engine."""
    import vectorbt as vbt

    from tradelab.research._kernels import simulation_kernel

    if ENGINE == "numba":
        simulation_kernel()  # the disk-cached copy of vectorbt's kernel
    # vectorbt broadcasts close to (bars, columns) and wraps it in a DataFrame, which
    # pandas >= 3 copies: column-major, that copy is a memcpy, not a transposing copy
    # (~20 MB per 500-column chunk). The simulation reads the same values (it receives
    # a column-major close either way).
    kwargs.setdefault("broadcast_kwargs", {"require_kwargs": {"requirements": ["W", "F"]}})
    return vbt.Portfolio.from_signals(**kwargs, engine=ENGINE)


def portfolio_metrics(pf: Any, init_cash: float, ppy: float,
                      close: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every metric of :mod:`tradelab.research.metrics` for each column of ``pf``.

    Equity is cash + units * close, which is exactly vbt's ``value()`` for bars
    without NaN closes (``check_bars`` guarantees that); it is replayed from the
    order records by :func:`tradelab.research._kernels.equity_metrics` rather than
    built as ``(bars, columns)`` arrays. ``close``: the bars' close (default: the
    portfolio's first column of close).
    """
    from tradelab.research._kernels import equity_metrics

    if close is None:
        close = pf.close.to_numpy()
        close = close[:, 0] if close.ndim == 2 else close
    out = equity_metrics(pf.order_records, pf.orders.col_mapper.col_map, close, init_cash, ppy)
    trades = pf.trades.values
    n_trades, win_rate = metrics.trade_stats(pf.wrapper.shape_2d[1],
                                             trades["col"].astype(np.int64), trades["pnl"],
                                             trades["status"] == 0)
    return {name: n_trades if name == "n_trades" else win_rate if name == "win_rate"
            else out[name] for name in metrics.METRICS}


def chunk_signals(cls: type[Strategy], combos: Sequence[dict[str, Any]],
                  bars: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """2-D entries and exits, one column per combination (plain integer columns)."""
    sig = chunk_all_signals(cls, combos, bars)
    return sig.entries, sig.exits


def chunk_all_signals(cls: type[Strategy], combos: Sequence[dict[str, Any]],
                      bars: pd.DataFrame) -> Signals:
    """Every field of the :class:`~tradelab.strategy.base.Signals` of a chunk, 2-D, one
    column per combination (plain integer columns); fields the strategy leaves out
    stay ``None``."""
    columns = pd.RangeIndex(len(combos))
    if cls.vectorized_params:
        names = list(combos[0])
        sig = cls.batch({n: [c[n] for c in combos] for n in names}).generate(bars)
        arrays = {k: None if v is None else v.to_numpy() for k, v in sig._asdict().items()}
    else:
        singles = [cls(**c).generate(bars)._asdict() for c in combos]
        arrays = {k: None if singles[0][k] is None
                  else np.column_stack([s[k].to_numpy() for s in singles])
                  for k in Signals._fields}
    # copy=False: pandas >= 3 would copy each (bars, columns) array once more
    return Signals(**{k: None if v is None else pd.DataFrame(v, index=bars.index, columns=columns,
                                                              copy=False)
                      for k, v in arrays.items()})


def split_stops(combos: Sequence[dict[str, Any]], trade: TradeSpec | None
                ) -> tuple[list[dict[str, Any]], list[Stops] | None]:
    """The strategy parameters of each combination, and each one's stops when the
    combinations carry swept ``sl``/``tp``/``trail`` values (``None`` otherwise)."""
    if not any(k in c for c in combos for k in STOP_KEYS):
        return list(combos), None
    base = (trade or TradeSpec()).stops
    params = [{k: v for k, v in c.items() if k not in STOP_KEYS} for c in combos]
    return params, [base.overridden(**{k: c[k] for k in STOP_KEYS if k in c}) for c in combos]


def chunk_metrics(execution: Execution, bars: pd.DataFrame, sig: Signals, ppy: float,
                  trade: TradeSpec | None = None, column_stops: Sequence[Stops] | None = None,
                  edges: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every metric of each column of a chunk's signals simulated on ``bars``; with
    ``edges``, also ``"blocks"``: the per-block power sums of each column's returns
    (those of :func:`tradelab.research._overfit_kernels.block_moments_nb`).

    Runs go through :func:`tradelab.research._signal_kernels.simulate_signals_nb`
    (vectorbt's kernel on the bars that can trade only: the same order records,
    without a Portfolio), those it does not cover (a time stop) through
    ``vbt.Portfolio.from_signals``. Both give the same values; the tests check that.
    """
    from tradelab.research._kernels import equity_metrics
    from tradelab.research._signal_kernels import direct_inputs, exit_trade_stats

    kwargs = from_signals_kwargs(execution, bars, sig.entries, sig.exits, trade, sig,
                                 column_stops)
    close = bars["close"].to_numpy(dtype=float)
    borrow = _pays_borrow(execution, trade)
    inputs = direct_inputs(kwargs)
    if inputs is None:
        pf = _borrow_portfolio(execution, bars, kwargs)[0] if borrow else _portfolio(kwargs)
        records = pf.order_records
        col_map = pf.orders.col_mapper.col_map
        trades = pf.trades.values
        n_cols = pf.wrapper.shape_2d[1]
        trade_col, trade_pnl, trade_open = (trades["col"].astype(np.int64), trades["pnl"],
                                            trades["status"] == 0)
    else:
        records, col_lens = _direct_records(inputs, execution, bars if borrow else None)
        col_map = (np.arange(len(records), dtype=np.int64), col_lens)
        n_cols = len(col_lens)
        trade_col, trade_pnl, trade_open = exit_trade_stats(records, close, n_cols, col_lens)
    out = equity_metrics(records, col_map, close, execution.cash, ppy, edges)
    n_trades, win_rate = metrics.trade_stats(n_cols, trade_col, trade_pnl, trade_open)
    return {**{name: n_trades if name == "n_trades" else win_rate if name == "win_rate"
               else out[name] for name in metrics.METRICS},
            **({} if edges is None else {"blocks": out["blocks"]})}


def run_with_borrow(execution: Execution, bars: pd.DataFrame, signals: Any,
                    trade: Any, max_passes: int | None = None) -> tuple[Any, BorrowFees]:
    """One backtest's ``vbt.Portfolio`` with the borrow fee charged, and the fees
    (``max_passes``: see :func:`~tradelab.research.borrow.simulate_with_borrow`).

    The simulation is :func:`run_portfolio`'s with
    ``fixed_fees`` given per bar: the same arguments, the same kernel.
    """
    kwargs = from_signals_kwargs(execution, bars, signals.entries, signals.exits, trade, signals)
    return _borrow_portfolio(execution, bars, kwargs, max_passes)


def _borrow_portfolio(execution: Execution, bars: pd.DataFrame, kwargs: dict[str, Any],
                      max_passes: int | None = None) -> tuple[Any, BorrowFees]:
    """The ``vbt.Portfolio`` with each short's borrow fee charged on its cover, and the fees.

    The fixed point of :func:`tradelab.research.borrow.simulate_with_borrow`, over
    every column at once: ``fixed_fees`` per bar and column (per bar for one Series).
    A column whose fees settled is simulated again unchanged until the last one settles
    (the kernel is deterministic), so each column ends exactly where its own backtest
    does. (The path for runs the direct kernel does not cover, e.g. a time stop.)
    """
    from tradelab.research.borrow import simulate_with_borrow

    # (with a time stop the signals travel as broadcast_named_args: _time_stop_kernels)
    shape = np.shape(kwargs["entries"] if "entries" in kwargs
                     else kwargs["broadcast_named_args"]["entries"])

    def simulate(fixed_fees: Any) -> Any:
        if len(shape) == 1 and isinstance(fixed_fees, np.ndarray):
            fixed_fees = fixed_fees[:, 0]  # one Series: per bar
        return _portfolio({**kwargs, "fixed_fees": fixed_fees})

    return simulate_with_borrow(execution, bars, simulate,
                                columns=int(shape[1]) if len(shape) == 2 else 1,
                                max_passes=max_passes)


def _direct_records(inputs: dict[str, Any], execution: Execution | None = None,
                    borrow_bars: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Column-major order records of the direct kernel and each column's record count.

    With ``borrow_bars`` (the bars, when shorts pay ``execution.borrow_fee``), the
    backtest's fixed point (:func:`tradelab.research.borrow.simulate_with_borrow`) over
    every column at once: the kernel reads ``fixed_fees`` per bar and column.
    """
    from tradelab.research._signal_kernels import simulate_direct

    if borrow_bars is None or execution is None:
        records = simulate_direct(inputs)
    else:
        from tradelab.research.borrow import simulate_with_borrow

        def simulate(fixed_fees: Any) -> np.ndarray:
            fees = np.full((1, 1), fixed_fees) if np.ndim(fixed_fees) == 0 else fixed_fees
            return simulate_direct({**inputs, "fixed_fees": np.ascontiguousarray(fees,
                                                                                dtype=np.float64)})

        records, _fees = simulate_with_borrow(execution, borrow_bars, simulate,
                                              columns=inputs["entries"].shape[0],
                                              records_of=lambda r: r)
    n_cols = inputs["entries"].shape[0]
    return records, np.bincount(records["col"], minlength=n_cols).astype(np.int64)


def run_chunk(cls: type[Strategy], combos: Sequence[dict[str, Any]], bars: pd.DataFrame,
              execution: Execution, ppy: float,
              close: np.ndarray | None = None,
              trade: TradeSpec | None = None) -> dict[str, np.ndarray]:
    """Metrics of one chunk of combinations: signals, one simulation, metrics
    (:func:`chunk_metrics`).

    ``close`` is accepted for compatibility and must be the bars' close.
    """
    params, column_stops = split_stops(combos, trade)
    sig = chunk_all_signals(cls, params, bars)
    return chunk_metrics(execution, bars, sig, ppy, trade, column_stops)
