"""The drift of a stored portfolio run: its fills against research over the bars it received.

The research side is :func:`tradelab.research.portfolio.backtest_portfolio` on the run's
own bars (aligned per time stamp as the engine aligned them), with the run's strategy,
parameters, universe order and stored convention, starting from the run's first cash.
Each symbol's fills are then compared trade by trade as a one-symbol run's are
(:func:`tradelab.drift.attribute`: price, fees, quantity, timing), marked at that
symbol's last close. The causes of all symbols add up to the gap except for what
sizing on a shared book moves from one symbol to another (a worse fill in one leg
leaves less cash for the next buy): that remainder is ``other``.

The bars are not compared with the source here (a one-symbol report does that); the
report says so in its data line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from tradelab.drift import DataDiff, DriftReport, attribute, trades
from tradelab.execution import Execution

NOT_COMPARED = "a portfolio run's bars are not compared with their source"


def portfolio_drift_report(strategy: Any, frames: Mapping[str, pd.DataFrame], fills: Iterable[Any],
                           execution: Execution, *, run_equity: float, initial_cash: float,
                           run_id: int | None = None, source: str = "",
                           unfilled: Sequence[tuple[Any, str, str]] = (),
                           threshold: float | None = None) -> DriftReport:
    """Research over ``frames`` (the run's bars per symbol) against the run's ``fills``.

    Parameters
    ----------
    strategy
        The run's :class:`~tradelab.strategy.portfolio.PortfolioStrategy`, with its
        parameters and universe.
    frames
        Symbol → the contract bars the run received, in universe order.
    fills
        The run's fills (``FillRecord`` or alike, with ``symbol``).
    execution
        The research convention; its cash is replaced by ``initial_cash``.
    run_equity, initial_cash
        The run's last and starting equity.
    unfilled
        ``(decision time, symbol, side)`` of run orders that did not fill completely.
    source
        The run's data source (named in the report's data line).
    threshold
        Drift (fraction of ``initial_cash``) above which the report is ``exceeded``.
    """
    from tradelab.data.universe import align
    from tradelab.research.portfolio import backtest_portfolio

    ex = replace(execution, cash=float(initial_cash))
    panel = align(frames)
    research = backtest_portfolio(strategy, panel=panel, execution=ex)
    index = pd.DatetimeIndex(panel.close.index)
    ran = list(fills)
    rows = []
    for symbol in frames:
        theirs = [{"at": o.time, "side": o.side, "quantity": o.quantity, "price": o.price,
                   "fees": o.fees} for o in research.orders.itertuples() if o.symbol == symbol]
        last_close = float(panel.close[symbol].iloc[-1])
        rows += [replace(r, symbol=symbol) for r in attribute(
            trades([f for f in ran if f.symbol == symbol], index), trades(theirs), last_close,
            index, unfilled=[(at, side) for at, s, side in unfilled if s == symbol])]
    rows.sort(key=lambda row: min(t.at for t in (row.run, row.research) if t is not None))
    return DriftReport(run_id, strategy.name, dict(strategy.params), ",".join(frames), ex,
                       len(index), float(initial_cash), float(run_equity),
                       float(research.final_equity_exact), float("nan"), rows,
                       DataDiff(source, 0, 0, 0.0, 0, None, (), NOT_COMPARED), threshold)


__all__ = ["NOT_COMPARED", "portfolio_drift_report"]
