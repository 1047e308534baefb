"""The borrow fee of short positions in research, exactly as the paper broker charges it.

The convention (:mod:`tradelab.execution`): a short accrues
:meth:`~tradelab.execution.Execution.borrow_charge` for each interval between two
bars it is held across (units and close of the interval's first bar, the interval's
calendar seconds), and the amount accrued is charged as an extra fixed fee on the
order that buys back (a cover, or a reversal to long; a partial cover carries the
share of the units it buys back, :func:`cover_charge`). The paper broker adds the
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

__all__ = ["BorrowFees", "PanelBorrow", "borrow_fees", "cover_charge", "interval_seconds",
           "simulate_with_borrow"]

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


def cover_charge(accrued: float, bought: float, short: float) -> float:
    """The part of ``accrued`` a buy of ``bought`` units charges on a short of ``short``.

    A buy that covers the whole short (or reverses it) carries the whole accrual; a
    partial cover (a rebalance that reduces a short) carries the share of the units it
    buys back, ``accrued * (bought / short)``, and the rest stays accrued on the units
    still short. The paper broker evaluates the same float expression.
    """
    return accrued if bought >= short else accrued * (bought / short)


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
    Per column, in bar order: while short, each interval's term is added to the accrual
    (:func:`_accrue`'s arithmetic), and a buy charges :func:`cover_charge` of it. The loop
    is compiled (:func:`tradelab.research._borrow_kernels.borrow_fees_nb`, the same float
    operations): a sweep's fixed point runs it on every order of a chunk at each pass.
    """
    from tradelab.research._borrow_kernels import borrow_fees_nb

    order = np.lexsort((records["id"], records["idx"], records["col"]))
    rec = records[order]
    per_bar, open_accrued = borrow_fees_nb(
        np.ascontiguousarray(rec["col"], dtype=np.int64),
        np.ascontiguousarray(rec["idx"], dtype=np.int64),
        np.ascontiguousarray(rec["size"], dtype=np.float64),
        np.ascontiguousarray(rec["side"], dtype=np.int64),
        np.ascontiguousarray(closes, dtype=np.float64),
        np.ascontiguousarray(seconds, dtype=np.float64),
        float(execution.borrow_fee), float(YEAR_SECONDS), int(columns))
    return BorrowFees(per_bar, open_accrued)


def simulate_with_borrow(execution: Execution, bars: pd.DataFrame,
                         simulate: Callable[[Any], Any], columns: int = 1,
                         max_passes: int | None = None,
                         records_of: Callable[[Any], np.ndarray] | None = None
                         ) -> tuple[Any, BorrowFees]:
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
    records_of
        The order records of what ``simulate`` returned (default: a Portfolio's
        ``order_records``; the direct kernel returns the records themselves).

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
    records = records_of if records_of is not None else (lambda pf: pf.order_records)
    pf = simulate(float(execution.fixed_fees))
    fees = borrow_fees(execution, records(pf), closes, seconds, columns)
    used = np.zeros_like(fees.per_bar)
    bound = max_passes if max_passes is not None else len(records(pf)) + 2
    passes = 1
    while not np.array_equal(fees.per_bar, used):
        if passes >= bound:
            raise TradelabError(f"borrow fee: the simulation did not settle in {bound} passes "
                                "(the fees charged keep changing the orders)")
        used = fees.per_bar
        pf = simulate(execution.fixed_fees + used)
        fees = borrow_fees(execution, records(pf), closes, seconds, columns)
        passes += 1
    return pf, replace(fees, passes=passes)


class PanelBorrow:
    """The borrow fee of a portfolio's shorts over an aligned panel, booked as it goes.

    :func:`tradelab.research.portfolio.simulate_rebalances` books its orders in time
    order, so no fixed point is needed: before an order of a symbol fills at bar ``e``,
    :meth:`charge` adds what its short accrued over the symbol's own bars since it was
    last marked (the paper broker's open phase: each interval from a real bar's close to
    the symbol's next real bar, valued at that close) and returns the part the order
    carries (:func:`cover_charge`); :meth:`mark` records the position held after the
    bar (the paper broker's close phase). Symbols without a bar are skipped as the
    engine skips them: their interval runs to the next bar they have.

    Parameters
    ----------
    execution
        The convention (``borrow_fee`` the annual rate).
    panel_index
        The panel's time stamps.
    close
        ``(bars, symbols)`` closes (NaN where a symbol has no bar).
    real
        ``(bars, symbols)``: the symbol has a bar (the panel's ``tradable``).
    """

    def __init__(self, execution: Execution, panel_index: pd.DatetimeIndex, close: np.ndarray,
                 real: np.ndarray) -> None:
        self.execution = execution
        self._micros = np.asarray(panel_index.as_unit("ns").asi8, dtype=np.int64) // 1_000
        self._close = close
        self._real = real
        n, k = close.shape
        #: ``(bars, symbols)``: the borrow fee charged on the order of that bar and symbol.
        self.per_bar = np.zeros((n, k), dtype=float)
        self._accrued: dict[int, float] = {}
        self._marks: dict[int, tuple[int, float]] = {}  # column -> (bar, units short)

    def _accrue(self, j: int, e: int) -> None:
        mark = self._marks.pop(j, None)
        if mark is None:
            return
        m, units = mark
        bars = np.flatnonzero(self._real[m + 1:e + 1, j]) + (m + 1)
        if not len(bars):
            self._marks[j] = mark
            return
        prev = np.concatenate(([m], bars[:-1]))
        # the engine's timedelta.total_seconds(): whole microseconds / 10**6
        seconds = (self._micros[bars] - self._micros[prev]).astype(float) / 1e6
        self._accrued[j] = _accrue(self.execution, self._accrued.get(j, 0.0), seconds,
                                   self._close[prev, j], units)
        self._marks[j] = (int(bars[-1]), units)

    def charge(self, j: int, e: int, bought: float, short: float) -> float:
        """The borrow fee a buy of ``bought`` units of column ``j`` at bar ``e`` carries
        while ``short`` units are held short (0.0 when not short); books it."""
        self._accrue(j, e)
        if short <= 0:
            return 0.0
        acc = self._accrued.pop(j, 0.0)
        fee = cover_charge(acc, bought, short)
        if acc - fee:
            self._accrued[j] = acc - fee
        self.per_bar[e, j] += fee
        return fee

    def mark(self, j: int, e: int, held: float) -> None:
        """Column ``j`` holds ``held`` units after bar ``e`` (a short accrues from here)."""
        self._accrue(j, e)
        if held < 0:
            self._marks[j] = (e, -held)
        else:
            self._marks.pop(j, None)
            self._accrued.pop(j, None)

    def open_accrued(self) -> np.ndarray:
        """``(symbols,)``: accrued through the last bar by shorts still open (not charged)."""
        n, k = self._close.shape
        for j in list(self._marks):
            self._accrue(j, n - 1)
        out = np.zeros(k, dtype=float)
        for j, acc in self._accrued.items():
            out[j] = acc
        return out
