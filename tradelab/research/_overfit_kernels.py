"""numba kernel of the overfitting estimate: per-block power sums of each column's returns.

CSCV and the deflated Sharpe ratio (:mod:`tradelab.research.overfit`) need each
trial's per-bar returns, which a sweep never materializes (10,000 columns of
5,000 bars are 400 MB). :func:`block_moments_nb` replays vectorbt's order records
exactly like :func:`tradelab.research._kernels.equity_metrics_nb` (same float
operations, so the same returns) and keeps only the sums of ``r, r^2, r^3, r^4``
per block: ``4 x S x columns`` numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from vectorbt.utils.math_ import add_nb

from tradelab.research._kernels import bar_flows_nb


@njit(cache=True, nogil=True, error_model="numpy")
def block_moments_nb(order_records: Any, col_idxs: Any, col_lens: Any, close: Any,
                     init_cash: float, edges: Any) -> Any:  # pragma: no cover (compiled)
    """``(4, S, n_cols)``: per block (bars ``edges[b]:edges[b+1]``) and column, the sums
    of ``r^1..r^4`` where ``r_t = V_t / V_{t-1} - 1`` and ``V_{-1}`` is the cash."""
    n_cols = col_lens.shape[0]
    n_blocks = edges.shape[0] - 1
    out = np.zeros((4, n_blocks, n_cols), dtype=np.float64)
    col_start = 0
    for col in range(n_cols):
        ptr = col_start
        col_end = col_start + col_lens[col]
        col_start = col_end
        cash = init_cash
        position = 0.0
        prev = init_cash
        for block in range(n_blocks):
            # sums in locals, stored once per block: no store-to-load chain per bar
            a1 = a2 = a3 = a4 = 0.0
            for i in range(edges[block], edges[block + 1]):
                # the replay of equity_metrics_nb (vectorbt's asset/cash flow and add_nb)
                asset_flow, cash_flow, ptr = bar_flows_nb(order_records, col_idxs, ptr, col_end, i)
                if asset_flow == 0.0 and cash_flow == 0.0:
                    if position == 0.0:
                        continue  # flat, and flat at the last bar: r = cash / cash - 1 = 0
                else:  # add_nb(x, 0.0) is x for every value add_nb can have returned
                    position = add_nb(position, asset_flow)
                    cash = add_nb(cash, cash_flow)
                value = cash + position * close[i]
                r = value / prev - 1.0
                prev = value
                r2 = r * r
                a1 += r
                a2 += r2
                a3 += r2 * r
                a4 += r2 * r2
            out[0, block, col] = a1
            out[1, block, col] = a2
            out[2, block, col] = a3
            out[3, block, col] = a4
    return out


def block_moments(pf: Any, close: np.ndarray, init_cash: float, edges: np.ndarray) -> np.ndarray:
    """:func:`block_moments_nb` of every column of a ``vbt.Portfolio``.

    Raises
    ------
    ValueError
        ``edges`` are not non-decreasing bar positions within ``close`` (the compiled
        kernel does not check bounds: it would read past the bars).
    """
    edges = np.asarray(edges, dtype=np.int64)
    n = len(close)
    if edges.ndim != 1 or len(edges) < 2 or edges[0] < 0 or edges[-1] > n \
            or bool(np.any(np.diff(edges) < 0)):
        raise ValueError(f"edges = {edges.tolist()}: expected at least two non-decreasing "
                         f"bar positions in [0, {n}]")
    col_idxs, col_lens = pf.orders.col_mapper.col_map
    return block_moments_nb(pf.order_records, np.asarray(col_idxs, dtype=np.int64),
                            np.asarray(col_lens, dtype=np.int64),
                            np.ascontiguousarray(close, dtype=np.float64), float(init_cash),
                            edges)
