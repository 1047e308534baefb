"""The drift of a stored portfolio run: its fills against research over the bars it received.

The research side is :func:`tradelab.research.portfolio.backtest_portfolio` on the run's
own bars (aligned per time stamp as the engine aligned them), with the run's strategy,
parameters, universe order and stored convention, starting from the run's first cash.
Each symbol's fills are then compared trade by trade as a one-symbol run's are
(:func:`tradelab.drift.attribute`: price, fees, quantity, timing), marked at that
symbol's last close. Equity is the cash plus the positions at the last closes, so
each trade's part in it is linear and the causes of all symbols add up to the gap, up
to the engine's booking (``other``); a leg sized on less cash (a worse fill in another
leg) shows as a quantity difference.

Data differences: each symbol's bars are compared with the source's at the same times
(:func:`tradelab.drift.data_diff`), summed over the symbols, and their effect in money is
research over the run's bars minus research over the source's (when the source covers
every bar the run received).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from tradelab.drift import BAR_FIELDS, DataDiff, DriftReport, attribute, data_diff, trades
from tradelab.execution import Execution


def portfolio_drift_report(strategy: Any, frames: Mapping[str, pd.DataFrame], fills: Iterable[Any],
                           execution: Execution, *, run_equity: float, initial_cash: float,
                           run_id: int | None = None, source: str = "",
                           unfilled: Sequence[tuple[Any, str, str]] = (),
                           source_frames: Mapping[str, pd.DataFrame] | None = None,
                           source_error: str | None = None,
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
    source, source_frames, source_error
        The run's data source, its bars over the same period per symbol (for the data
        comparison), or why they could not be loaded.
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
    equity = float(research.final_equity_exact)
    data = None
    if source_frames is not None or source_error is not None:
        data = _data(strategy, frames, source_frames, source, source_error, ex, equity)
    return DriftReport(run_id, strategy.name, dict(strategy.params), ",".join(frames), ex,
                       len(index), float(initial_cash), float(run_equity), equity,
                       float("nan"), rows, data, threshold)


def _data(strategy: Any, frames: Mapping[str, pd.DataFrame],
          source_frames: Mapping[str, pd.DataFrame] | None, source: str, error: str | None,
          ex: Execution, equity: float) -> DataDiff:
    """Every symbol's :func:`~tradelab.drift.data_diff`, summed; the effect is research
    over the run's bars minus research over the source's (``None`` unless the source
    has every bar the run received)."""
    if source_frames is None or set(source_frames) != set(frames):
        return DataDiff(source, 0, 0, 0.0, sum(len(f) for f in frames.values()), None, (),
                        error or "the source lacks symbols of the run")
    from tradelab.data.universe import align
    from tradelab.research.portfolio import backtest_portfolio

    parts = {s: data_diff(f, source_frames[s], source) for s, f in frames.items()}
    effect = None
    if all(f.index.isin(source_frames[s].index).all() for s, f in frames.items()):
        other = {s: source_frames[s].loc[f.index, list(BAR_FIELDS)] for s, f in frames.items()}
        on_source = backtest_portfolio(strategy, panel=align(other), execution=ex)
        effect = equity - float(on_source.final_equity_exact)
    examples = tuple(f"{s} {e}" for s, d in parts.items() for e in d.examples)[:5]
    return DataDiff(source, sum(d.compared for d in parts.values()),
                    sum(d.differing for d in parts.values()),
                    max(d.max_abs_diff for d in parts.values()),
                    sum(d.missing for d in parts.values()), effect, examples)


__all__ = ["portfolio_drift_report"]
