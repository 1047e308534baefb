"""The borrow fee of short positions in research, exactly as the paper broker charges it.

The convention (:mod:`tradelab.execution`): a short accrues
:meth:`~tradelab.execution.Execution.borrow_charge` for each interval between two
bars it is held across (units and close of the interval's first bar, the interval's
calendar seconds), and the amount accrued is charged as an extra fixed fee on the
order that buys back (a cover, or a reversal to long). The paper broker adds the
same float terms in the same order, so the fee is the same float in both.

vectorbt 1.2's ``from_signals`` cannot book a cash flow between orders, but its
``fixed_fees`` may be given per bar and column, and an order is the only thing that
charges it (``from_signals`` places at most one order per bar and column). So the
simulation is repeated to a fixed point (:func:`simulate_with_borrow`): from a pass's
order records :func:`borrow_fees` finds each cover and what its short accrued; the
next pass charges those amounts on those bars. A fee changes later orders only (it
reduces the cash later entries are sized with), so every pass settles at least the
earliest order that still differed and the passes end after at most one per order;
it stops as soon as the fees computed from a pass equal the fees that pass charged,
which is exactly "every cover carries what its short accrued". With no borrow fee
(or no short) this is one ordinary simulation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from tradelab.errors import TradelabError
from tradelab.execution import YEAR_SECONDS, Execution

__all__ = ["BorrowFees", "borrow_fees", "interval_seconds", "run_with_borrow", "simulate_with_borrow"]

#: vectorbt's OrderSide: 0 buy, 1 sell.
_BUY = 0


@dataclass(frozen=True)
class BorrowFees:
    """What the shorts of each column accrued.

    Attributes
    ----------
    per_bar : numpy.ndarray
        ``(bars, columns)``: the borrow fee charged on the order of that bar (0 where
        no order buys back a short).
    open_accrued : numpy.ndarray
        ``(columns,)``: accrued by a short still open after the last bar (not charged).
    passes : int
        Simulations run to reach the fixed point (1: no borrow fee was charged).
    """

    per_bar: np.ndarray
    open_accrued: np.ndarray
    passes: int = 1

    @property
    def paid(self) -> np.ndarray:
        """``(columns,)``: borrow fees charged on covers, in total."""
        return np.asarray(self.per_bar.sum(axis=0), dtype=float)


def interval_seconds(index: pd.DatetimeIndex) -> np.ndarray:
    """Seconds from each bar's predecessor (0.0 for the first), as the engine computes
    them: whole microseconds / 10**6 (``datetime.timedelta.total_seconds``)."""
    micros = np.asarray(index.as_unit("ns").asi8, dtype=np.int64) // 1_000
    out = np.zeros(len(index), dtype=float)
    out[1:] = (micros[1:] - micros[:-1]).astype(float) / 1e6
    return out


def _accrue(execution: Execution, acc: float, seconds: np.ndarray, closes: np.ndarray,
            units: float) -> float:
    """``acc`` plus each interval's charge, added one at a time in bar order (as the
    paper broker adds them; ``np.add.accumulate`` is strictly sequential)."""
    if not len(seconds):
        return acc
    terms = execution.borrow_fee * (seconds / YEAR_SECONDS) * units * closes
    return float(np.add.accumulate(np.concatenate(([acc], terms)))[-1])


def borrow_fees(execution: Execution, records: np.ndarray, closes: np.ndarray,
                seconds: np.ndarray, columns: int) -> BorrowFees:
    """The borrow fee each order carries, from vectorbt order records.

    ``records``: ``pf.order_records`` (fields ``col``, ``idx``, ``size``, ``side``);
    ``closes``: the bars' closes; ``seconds``: :func:`interval_seconds` of the bars.
    """
    n = len(closes)
    per_bar = np.zeros((n, columns), dtype=float)
    open_accrued = np.zeros(columns, dtype=float)
    order = np.lexsort((records["id"], records["idx"], records["col"]))
    by_col: dict[int, list[Any]] = {}
    for k in order:
        by_col.setdefault(int(records["col"][k]), []).append(records[k])
    for col, recs in by_col.items():
        pos, acc, last = 0.0, 0.0, 0
        for rec in recs:
            i = int(rec["idx"])
            if pos < 0 and i > last:  # held short at the closes of bars last .. i-1
                acc = _accrue(execution, acc, seconds[last + 1:i + 1], closes[last:i], -pos)
            if rec["side"] == _BUY and pos < 0:
                per_bar[i, col] += acc
                acc = 0.0
            size = float(rec["size"])
            pos = pos + size if rec["side"] == _BUY else pos - size
            last = i
        if pos < 0:
            open_accrued[col] = _accrue(execution, acc, seconds[last + 1:n], closes[last:n - 1],
                                        -pos)
    return BorrowFees(per_bar, open_accrued)


def simulate_with_borrow(execution: Execution, bars: pd.DataFrame,
                         simulate: Callable[[Any], Any], columns: int = 1,
                         max_passes: int | None = None) -> tuple[Any, BorrowFees]:
    """Simulate until every cover carries its short's borrow fee (see the module doc).

    Parameters
    ----------
    execution
        The convention (its ``borrow_fee`` > 0; its ``fixed_fees`` is the per-order fee).
    bars
        The bars simulated.
    simulate
        ``simulate(fixed_fees)`` runs the simulation with ``fixed_fees`` (a float, or
        a ``(bars, columns)`` array) and returns the ``vbt.Portfolio``.
    columns
        Columns the simulation has.
    max_passes
        Bound on the passes (default: the first pass's orders + 2); exceeding it raises.

    Returns
    -------
    (portfolio, BorrowFees)
        The final pass and the fees it charged.

    Raises
    ------
    TradelabError
        The passes did not settle within ``max_passes``.
    """
    closes = bars["close"].to_numpy(dtype=float)
    seconds = interval_seconds(pd.DatetimeIndex(bars.index))
    pf = simulate(float(execution.fixed_fees))
    fees = borrow_fees(execution, pf.order_records, closes, seconds, columns)
    used = np.zeros_like(fees.per_bar)
    bound = max_passes if max_passes is not None else len(pf.order_records) + 2
    passes = 1
    while not np.array_equal(fees.per_bar, used):
        if passes >= bound:
            raise TradelabError(f"borrow fee: the simulation did not settle in {bound} passes "
                                "(the fees charged keep changing the orders)")
        used = fees.per_bar
        pf = simulate(execution.fixed_fees + used)
        fees = borrow_fees(execution, pf.order_records, closes, seconds, columns)
        passes += 1
    return pf, replace(fees, passes=passes)


def run_with_borrow(execution: Execution, bars: pd.DataFrame, signals: Any,
                    trade: Any, max_passes: int | None = None) -> tuple[Any, BorrowFees]:
    """One backtest's ``vbt.Portfolio`` with the borrow fee charged (one column;
    ``max_passes``: see :func:`simulate_with_borrow`).

    The simulation is :func:`tradelab.research.simulate.run_portfolio`'s with
    ``fixed_fees`` given per bar: the same arguments, the same kernel.
    """
    import vectorbt as vbt

    from tradelab.research._kernels import simulation_kernel
    from tradelab.research.conventions import from_signals_kwargs
    from tradelab.research.simulate import ENGINE

    if ENGINE == "numba":
        simulation_kernel()
    kwargs = from_signals_kwargs(execution, bars, signals.entries, signals.exits, trade, signals)

    def simulate(fixed_fees: Any) -> Any:
        if isinstance(fixed_fees, np.ndarray):
            fixed_fees = fixed_fees[:, 0]  # one column: per bar
        return vbt.Portfolio.from_signals(**{**kwargs, "fixed_fees": fixed_fees}, engine=ENGINE)

    return simulate_with_borrow(execution, bars, simulate, max_passes=max_passes)
