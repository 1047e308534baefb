"""The engine's portfolio decision: the panel seen so far → target weights → orders.

A :class:`Rebalancer` keeps the aligned panel of every bar the engine has seen (the
alignment rule of :mod:`tradelab.data.universe`, applied one time stamp at a time),
asks the strategy for its weights on it
(:meth:`~tradelab.strategy.portfolio.PortfolioStrategy.target_weights`, the research
code) and turns them into orders with :func:`tradelab.orders.rebalance.rebalance` and
:func:`~tradelab.orders.rebalance.net_orders`, exactly as
:func:`tradelab.research.portfolio.simulate_rebalances` does.

**History handed to the strategy.** By default the strategy's declared
:attr:`~tradelab.strategy.portfolio.PortfolioStrategy.decision_window`: the last N
bars (the tail of the same panel: held closes and ``listed`` as on the whole
history) when it declares N — ``momentum_rotation`` declares its warmup, what its
12-1 momentum reads — and **every** bar seen so far when it declares ``None`` (the
base class default): a path-dependent strategy (the pairs trade's position state)
depends on its whole history, and the same history as research is what makes the
two decide the same. A window is what keeps a decision's cost flat over a long run
(one weights computation over the history per rebalance bar otherwise; per bar under
the ``"change"`` schedule, which compares each bar's weights with the last).
``tradelab check`` verifies a declared window
(:func:`~tradelab.strategy.portfolio.check_weights_lookahead`). ``history=N``
overrides the declaration, ``history="all"`` hands every bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd

from tradelab.data.universe import Panel
from tradelab.execution import Execution
from tradelab.money import ZERO, to_decimal
from tradelab.orders.rebalance import OrderIntent, net_orders, rebalance
from tradelab.strategy.portfolio import (
    PortfolioStrategy,
    Schedule,
    declared_window,
    rebalance_bars,
)

History = int | Literal["all"] | None


class Rebalancer:
    """Target weights and rebalance orders for one :class:`PortfolioStrategy`.

    Parameters
    ----------
    strategy
        The strategy (one parameter set).
    symbols
        The universe, in panel column order.
    execution
        Fees, slippage, whole or fractional units.
    schedule
        The rebalance schedule (default: the strategy's).
    lots, threshold
        As in :func:`tradelab.research.portfolio.backtest_portfolio`.
    close_only
        The bars are close only (passed on to the panel).
    history
        Bars handed to the strategy: ``None`` (default) the strategy's declared
        ``decision_window``, ``"all"`` every bar seen, N the last N (module docstring).

    Raises
    ------
    ValueError
        ``history`` neither ``None``, ``"all"`` nor a number of bars >= 1.
    """

    def __init__(self, strategy: PortfolioStrategy, symbols: Sequence[str], execution: Execution,
                 *, schedule: Schedule | None = None, lots: Any = None, threshold: float = 0.0,
                 close_only: bool = False, history: History = None) -> None:
        #: The last bars handed to the strategy (None: every bar seen).
        self.history: int | None = _history(strategy, history)
        self.strategy = strategy
        self.symbols = tuple(symbols)
        self.column = {s: j for j, s in enumerate(self.symbols)}
        self.schedule: Schedule = schedule if schedule is not None else strategy.rebalance
        if isinstance(self.schedule, str) and self.schedule.strip().isdigit():
            self.schedule = int(self.schedule)
        two = pd.DatetimeIndex(["2000-01-03", "2000-01-04"])  # a bad schedule fails here
        rebalance_bars(two, self.schedule, pd.DataFrame(np.zeros((2, 1)), index=two))
        self.close_only = close_only
        self.fee, self.fixed = to_decimal(execution.fees), to_decimal(execution.fixed_fees)
        self.slippage = to_decimal(execution.slippage)
        self.band = to_decimal(float(threshold))
        self.lots = lots if lots is not None else (ZERO if execution.fractional else Decimal(1))
        k = len(self.symbols)
        # One Index for every panel's frames: building a string Index from a list costs
        # more than the frames themselves (pandas 3's Arrow strings).
        self._columns = pd.Index(list(self.symbols))
        self._cols: list[int] = []  # the columns of the last time stamp's bars ...
        self._col_index = np.zeros(0, dtype=np.intp)  # ... as an index array
        self._n, self._cap = 0, 1024
        self._times = np.zeros(self._cap, dtype=np.int64)
        self._close = np.full((self._cap, k), np.nan)
        self._open = np.full((self._cap, k), np.nan)
        self._real = np.zeros((self._cap, k), dtype=bool)
        self._listed = np.zeros((self._cap, k), dtype=bool)
        self._last_w: np.ndarray | None = None
        self._key = self._prev_key = (0, 0)  # calendar period of the last two time stamps

    def __len__(self) -> int:
        return self._n

    # -- the panel ------------------------------------------------------------------
    def add(self, at: datetime, bars: Sequence[Any]) -> None:
        """Append one time stamp: ``bars`` are ``Bar`` tuples (symbol, time, o, h, l, c, v)
        of the symbols that have a bar then; the others hold their last close."""
        n = self._n
        if n == self._cap:
            self._grow()
        prev = self._close[n - 1] if n else np.full(len(self.symbols), np.nan)
        self._close[n] = prev
        self._open[n] = prev  # a held bar opens where the last bar closed
        self._real[n] = False
        # One vector assignment per field, not three numpy scalar writes per symbol; the
        # column index array is reused while the same symbols come in the same order.
        cols = [self.column[bar[0]] for bar in bars]
        if cols != self._cols:
            self._cols, self._col_index = cols, np.array(cols, dtype=np.intp)
        at_cols = self._col_index
        self._open[n, at_cols] = [bar[2] for bar in bars]
        self._close[n, at_cols] = [bar[5] for bar in bars]
        self._real[n, at_cols] = True
        if n:
            np.logical_or(self._real[n], self._listed[n - 1], out=self._listed[n])
        else:
            self._listed[n] = self._real[n]
        stamp = pd.Timestamp(at)
        self._times[n] = stamp.value
        if self.schedule in ("M", "W"):
            if stamp.tzinfo is not None and stamp.utcoffset():
                stamp = stamp.tz_convert("UTC")  # calendar periods are UTC's, as in a panel
            self._prev_key, self._key = self._key, _period(stamp, self.schedule)
        self._n = n + 1

    def _grow(self) -> None:
        self._cap *= 2
        for name in ("_times", "_close", "_open", "_real", "_listed"):
            old = getattr(self, name)
            new = np.zeros((self._cap, *old.shape[1:]), dtype=old.dtype)
            if old.dtype.kind == "f":
                new[:] = np.nan
            new[:len(old)] = old
            setattr(self, name, new)

    def panel(self) -> Panel:
        """The aligned panel of every time stamp added so far (its last ``history`` rows)."""
        n = self._n
        lo = 0 if self.history is None else max(n - self.history, 0)
        index = pd.DatetimeIndex(self._times[lo:n].view("M8[ns]"), name="time").tz_localize("UTC")
        cols = self._columns

        def frame(a: np.ndarray) -> pd.DataFrame:
            # Views: rows up to n never change once added (new rows go after them, and
            # _grow copies into new arrays), so the strategy reads a stable history.
            return pd.DataFrame(a, index=index, columns=cols, copy=False)

        return Panel(frame(self._close[lo:n]), frame(self._open[lo:n]), frame(self._real[lo:n]),
                     frame(self._listed[lo:n]), self.close_only)

    # -- the decision ---------------------------------------------------------------
    def _is_scheduled(self) -> bool:
        # rebalance_bars's rule, one bar at a time: the first bar, every N-th bar, or the
        # first bar of a calendar month / ISO week (time stamps in UTC, as in a panel).
        t = self._n - 1
        if t == 0:
            return True
        if isinstance(self.schedule, int):
            return t % self.schedule == 0
        if self.schedule == "change":
            return False  # decided on the weights (targets)
        return self._key != self._prev_key

    def targets(self) -> dict[str, Decimal] | None:
        """The target weights decided on the last time stamp added, or ``None`` when it is
        not a rebalance bar (research's :func:`rebalance_bars` on the same bars)."""
        scheduled = self._is_scheduled()
        if not scheduled and self.schedule != "change":
            return None
        w = self.strategy.target_weights(self.panel()).to_numpy()[-1]
        if self.schedule == "change":
            changed = self._last_w is None or bool((w != self._last_w).any())
            self._last_w = w
            if not changed:
                return None
        return {s: to_decimal(float(w[j])) for j, s in enumerate(self.symbols) if w[j] != 0}

    def row(self, fill_open: bool) -> tuple[dict[str, Decimal], set[str]]:
        """The last time stamp's fill prices (opens, or closes) and tradable symbols."""
        n = self._n - 1
        px = (self._open if fill_open else self._close)[n]
        prices = {s: to_decimal(float(px[j])) for j, s in enumerate(self.symbols)
                  if np.isfinite(px[j])}
        can = {s for j, s in enumerate(self.symbols) if self._real[n, j]}
        return prices, can

    def orders(self, targets: dict[str, Decimal], positions: dict[str, Decimal], cash: Decimal,
               prices: dict[str, Decimal], tradable: set[str]) -> list[OrderIntent]:
        """The orders, reducing first, one per symbol: research's sizing at the fill prices."""
        # The same expression as research (default decimal context), so equal books give
        # equal equity and equal orders.
        equity = cash + sum((q * prices[s] for s, q in positions.items()), ZERO)
        return net_orders(rebalance(targets, positions, prices, equity, lots=self.lots,
                                    fee=self.fee, fixed_fee=self.fixed, slippage=self.slippage,
                                    tradable=tradable, threshold=self.band))


def _history(strategy: PortfolioStrategy, history: History) -> int | None:
    if history is None:
        return declared_window(strategy)
    if history == "all":
        return None
    if isinstance(history, bool) or not isinstance(history, int) or history < 1:
        raise ValueError(f"history = {history!r}: must be 'all' or a number of bars >= 1")
    return history


def _period(at: pd.Timestamp, schedule: Schedule) -> tuple[int, int]:
    if schedule == "M":
        return at.year, at.month
    iso = at.isocalendar()
    return iso[0], iso[1]


__all__ = ["Rebalancer"]
