"""numba kernels of the research layer and the cached simulation kernel.

Imported only when a backtest runs (it imports vectorbt and numba). Every
kernel is compiled once and cached on disk (``NUMBA_CACHE_DIR``), and releases
the GIL so that a sweep can run its chunks on several threads.

:func:`simulation_kernel` fixes a start-up cost of vectorbt 1.2: its
``simulate_from_signals_nb`` is declared without ``cache=True``, so every fresh
process compiled it again (~3.5 s, most of the time to a first backtest). It is
re-declared here from vectorbt's own Python function with ``cache=True`` (and
``nogil=True``) and installed in ``vectorbt.portfolio.nb``, where vectorbt's
dispatcher looks it up at each call: the same code, compiled by numba with the
same options apart from caching and the GIL, so the same results.

:func:`equity_metrics_nb` computes the per-column metrics of
:mod:`tradelab.research.metrics` in one pass over the order records, without
materializing vectorbt's ``(bars, columns)`` cash, position and value arrays
(~20 MB each for 500 columns of 5,000 bars). It replays the order records with
the exact float operations of vectorbt's ``asset_flow_nb``/``assets_nb`` and
``cash_flow_nb``/``cash_nb`` (including ``add_nb``'s snapping of near-zero sums),
so equity and position are bit-identical to ``pf.cash() + pf.assets() * close``;
the metrics then repeat the float operations of
:func:`tradelab.research.metrics.compute` (numpy's pairwise summation included,
:func:`pairwise_sum_nb`), so they equal it bit for bit; the tests check that.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
from numba import njit
from vectorbt.utils.math_ import add_nb

# numpy's summation of one block of at most 128 values, shared with the live indicators.
from tradelab.strategy._kernels import _split_sum
from tradelab.strategy._kernels import block_sum as _block_sum_nb

_SELL = 1  # vectorbt.portfolio.enums.OrderSide.Sell
_install_lock = threading.Lock()

@njit(cache=True, nogil=True)
def pairwise_sum_nb(a: Any, lo: int, n: int) -> float:  # pragma: no cover (compiled)
    """``a[lo:lo + n].sum()`` with numpy's pairwise summation, bit for bit: blocks of
    at most 128 summed by :func:`_block_sum_nb`, larger ranges split as numpy splits
    them by the live indicators' :func:`tradelab.strategy._kernels._split_sum` (one
    implementation of the split for both)."""
    if n <= 128:
        return _block_sum_nb(a, lo, n)
    return _split_sum(a, lo, n, np.zeros((4, 64)))


@njit(cache=True, nogil=True, inline="always")
def bar_flows_nb(order_records: Any, col_idxs: Any, ptr: int, col_end: int,
                 i: int) -> Any:  # pragma: no cover (compiled)
    """``(asset_flow, cash_flow, next_ptr)`` of one column's orders at bar ``i``, starting at
    record ``ptr``: vectorbt's ``asset_flow_nb``/``cash_flow_nb`` float operations, in order
    (``add_nb`` included), so replayed equity is bit-identical to vectorbt's."""
    asset_flow = 0.0
    cash_flow = 0.0
    while ptr < col_end:
        rec = order_records[col_idxs[ptr]]
        if rec["idx"] != i:
            break
        size = rec["size"]
        if rec["side"] == _SELL:
            size *= -1
        asset_flow = add_nb(asset_flow, size)
        cash_flow = add_nb(cash_flow, -size * rec["price"] - rec["fees"])
        ptr += 1
    return asset_flow, cash_flow, ptr


@njit(cache=True, nogil=True, error_model="numpy")
def equity_metrics_nb(order_records: Any, col_idxs: Any, col_lens: Any, close: Any,
                      init_cash: float, ppy: float, edges: Any) -> Any:  # pragma: no cover
    """``(6, n_cols)``: total_return, final_equity, sharpe, sortino, max_drawdown and
    exposure of each column (cagr, a power, is left to numpy); and ``(4, S, n_cols)``:
    the sums of ``r^1..r^4`` per block of bars ``edges[b]:edges[b+1]`` (``S = 0`` for
    ``edges`` of fewer than 2 elements), the sums of
    :func:`tradelab.research._overfit_kernels.block_moments_nb` from the same replay.

    Those sums add the returns in bar order and skip the bars that are flat without an
    order, as ``block_moments_nb`` does, so they are the same bit for bit (the tests
    check it).
    """
    n = close.shape[0]
    n_cols = col_lens.shape[0]
    out = np.empty((6, n_cols), dtype=np.float64)
    n_blocks = max(edges.shape[0] - 1, 0)
    blocks = np.zeros((4, n_blocks, n_cols), dtype=np.float64)
    r = np.empty(n, dtype=np.float64)
    sq = np.empty(n, dtype=np.float64)
    flat = np.zeros(n, dtype=np.bool_)  # no position and no order: block sums skip it
    sqrt_ppy = math.sqrt(ppy)
    col_start = 0
    for col in range(n_cols):
        ptr = col_start
        col_end = col_start + col_lens[col]
        col_start = col_end
        cash = init_cash
        position = 0.0
        prev = init_cash
        peak = init_cash
        max_dd = 0.0
        dd_nan = False
        exposed = 0
        value = init_cash
        snapped = False
        next_i = order_records[col_idxs[ptr]]["idx"] if ptr < col_end else n
        for i in range(n):
            # vectorbt: asset_flow_nb + assets_nb, cash_flow_nb + cash_nb
            if i == next_i:
                asset_flow, cash_flow, ptr = bar_flows_nb(order_records, col_idxs, ptr, col_end, i)
                flat[i] = asset_flow == 0.0 and cash_flow == 0.0 and position == 0.0
                position = add_nb(position, asset_flow)
                cash = add_nb(cash, cash_flow)
                snapped = True
                next_i = order_records[col_idxs[ptr]]["idx"] if ptr < col_end else n
            else:
                flat[i] = position == 0.0
                if not snapped:
                    # a bar without orders adds 0.0: add_nb(x, 0.0) is x for every x
                    # add_nb returned (it snaps only |x| <= abs_tol), so once is enough
                    position = add_nb(position, 0.0)
                    cash = add_nb(cash, 0.0)
                    snapped = True
            value = cash + position * close[i]
            r[i] = value / prev - 1.0
            prev = value
            if position != 0:  # long or short
                exposed += 1
            top = value if value > init_cash else init_cash
            if top > peak:
                peak = top
            if value != value:
                dd_nan = True
            elif value < peak:  # else value / peak - 1.0 >= 0: not a drawdown
                dd = value / peak - 1.0
                if dd < max_dd:
                    max_dd = dd
        # metrics.compute: mean, std(ddof=1) and downside deviation as numpy does them
        mean = pairwise_sum_nb(r, 0, n) / n
        for i in range(n):
            d = r[i] - mean
            sq[i] = d * d
        std = math.sqrt(pairwise_sum_nb(sq, 0, n) / (n - 1)) if n > 1 else np.nan
        for i in range(n):
            d = r[i] if r[i] < 0.0 or r[i] != r[i] else 0.0
            sq[i] = d * d
        down = math.sqrt(pairwise_sum_nb(sq, 0, n) / n)
        out[0, col] = value / init_cash - 1.0
        out[1, col] = value
        out[2, col] = mean / std * sqrt_ppy if std > 0 else np.nan
        out[3, col] = mean / down * sqrt_ppy if down > 0 else np.nan
        out[4, col] = np.nan if dd_nan else max_dd
        out[5, col] = exposed / n
        for block in range(n_blocks):
            a1 = a2 = a3 = a4 = 0.0
            for i in range(edges[block], edges[block + 1]):
                if flat[i]:
                    continue
                x = r[i]
                x2 = x * x
                a1 += x
                a2 += x2
                a3 += x2 * x
                a4 += x2 * x2
            blocks[0, block, col] = a1
            blocks[1, block, col] = a2
            blocks[2, block, col] = a3
            blocks[3, block, col] = a4
    return out, blocks


def equity_metrics(order_records: np.ndarray, col_map: tuple[np.ndarray, np.ndarray],
                   close: np.ndarray, init_cash: float, ppy: float,
                   edges: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every metric of :data:`tradelab.research.metrics.METRICS` except the trade
    counts, per column: :func:`equity_metrics_nb`, plus cagr computed by numpy
    exactly as :func:`tradelab.research.metrics.compute` does; with ``edges``, also
    ``"blocks"``, the per-block power sums of the overfitting estimate."""
    col_idxs, col_lens = col_map
    close = np.ascontiguousarray(close, dtype=np.float64)
    metrics_, blocks = equity_metrics_nb(
        order_records, np.asarray(col_idxs, dtype=np.int64), np.asarray(col_lens, dtype=np.int64),
        close, float(init_cash), float(ppy),
        np.zeros(0, dtype=np.int64) if edges is None else np.asarray(edges, dtype=np.int64))
    total_return, final, sharpe, sortino, max_dd, exposure = metrics_
    growth = final / init_cash
    with np.errstate(divide="ignore", invalid="ignore"):
        cagr = np.where(growth > 0, np.power(np.maximum(growth, 1e-300), ppy / close.shape[0])
                        - 1.0, -1.0)
    out = {"total_return": total_return, "cagr": cagr, "sharpe": sharpe, "sortino": sortino,
           "max_drawdown": max_dd, "exposure": exposure, "final_equity": final}
    if edges is not None:
        out["blocks"] = blocks
    return out


def simulation_kernel() -> Any:
    """Install (once) and return the disk-cached, GIL-releasing copy of vectorbt's
    ``simulate_from_signals_nb`` (see the module docstring)."""
    import vectorbt.portfolio.nb as vbt_nb

    current = vbt_nb.simulate_from_signals_nb
    if getattr(current, "_tradelab_cached", False):
        return current
    with _install_lock:
        current = vbt_nb.simulate_from_signals_nb
        if not getattr(current, "_tradelab_cached", False):
            options = {k: v for k, v in current.targetoptions.items() if k != "nopython"}
            options.update(cache=True, nogil=True)
            cached = njit(**options)(current.py_func)
            cached._tradelab_cached = True
            vbt_nb.simulate_from_signals_nb = cached
            current = cached
    return current
