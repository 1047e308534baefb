"""One engine run's figures, derived from that run's own rows in the store.

An account may hold several runs (one after the other, or several engines at
once on a shared account), while the ``positions`` table and the account's
cash are account-wide. What the dashboard shows for a run is therefore
rebuilt from the run's fills (booked in execution order exactly as the
engine's :class:`~tradelab.portfolio.Portfolio` books them) and its latest
equity snapshot:

* cash, positions value, equity and drawdown: the run's latest snapshot;
* quantity, average price, cost and realized P&L (before fees) per symbol:
  the run's fills up to that snapshot;
* the run's starting cash: the snapshot's cash minus the fills' cash flows,
  so that ``equity - start = realized + unrealized - fees``;
* each open position's mark: the last bar the run received for the symbol.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from tradelab.portfolio import Portfolio

POSITION_COLUMNS = ["symbol", "quantity", "avg_price", "mark", "unrealized", "realized_pnl"]
TRADE_COLUMNS = ["symbol", "entry_time", "exit_time", "quantity", "entry_price", "exit_price",
                 "fees", "pnl", "return"]
DAILY_COLUMNS = ["day", "pnl"]


@dataclass(frozen=True)
class RunFigures:
    """What one run holds and earned, as of its latest equity snapshot."""

    start_cash: float
    cash: float
    equity: float
    drawdown: float
    realized: float
    unrealized: float
    fees: float
    positions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=POSITION_COLUMNS))
    at: datetime | None = None

    @property
    def pnl(self) -> float:
        return self.equity - self.start_cash

    @property
    def pnl_pct(self) -> float:
        return self.pnl / self.start_cash if self.start_cash else 0.0


def book(fills: list[Any]) -> Portfolio:
    """The fills booked on a zero-cash portfolio: its cash is their net cash flow."""
    pf = Portfolio(Decimal(0))
    for f in fills:
        pf.apply_fill(f.symbol, f.side, f.quantity, f.price, f.fees)
    return pf


def run_figures(fills: list[Any], last: Any, marks: dict[str, tuple[Any, float]],
                fallback_cash: float) -> RunFigures:
    """A run's figures from its fills (execution order), latest snapshot and last bars.

    Parameters
    ----------
    fills
        The run's fills (:class:`~tradelab.store.records.FillRecord`), oldest first.
    last
        The run's latest :class:`~tradelab.store.records.EquityPoint`, or ``None``.
    marks
        ``{symbol: (at, close)}``: the last bar the run received per symbol.
    fallback_cash
        The starting cash to assume before the run's first snapshot (the account's).
    """
    # Fills after the snapshot are not in its cash yet (a venue may report between bars).
    upto = [f for f in fills if last is None or f.at <= last.at]
    pf = book(upto)
    open_ = {s: p for s, p in pf.positions.items() if p.quantity}
    cost = sum((float(p.cost) for p in open_.values()), start=0.0)
    if last is None:
        start = cash = equity = fallback_cash
        value, drawdown = 0.0, 0.0
    else:
        cash, equity = float(last.cash), float(last.equity)
        value, drawdown = float(last.positions_value), float(last.drawdown)
        start = cash - float(pf.cash)
    rows = []
    for sym, p in sorted(open_.items()):
        qty = float(p.quantity)
        mark = marks[sym][1] if sym in marks else (value / qty if len(open_) == 1 else None)
        rows.append({"symbol": sym, "quantity": qty, "avg_price": float(p.avg_price),
                     "mark": mark,
                     "unrealized": None if mark is None else qty * mark - float(p.cost),
                     "realized_pnl": float(p.realized_pnl)})
    return RunFigures(
        start_cash=start, cash=cash, equity=equity, drawdown=drawdown,
        realized=float(sum((p.realized_pnl for p in pf.positions.values()), start=Decimal(0))),
        unrealized=value - cost if last is not None else 0.0, fees=float(pf.fees_paid),
        positions=pd.DataFrame(rows, columns=POSITION_COLUMNS),
        at=last.at if last is not None else None)


def closed_trades(fills: list[Any], marks: dict[str, tuple[Any, float]]) -> pd.DataFrame:
    """The run's closed round trips per symbol, newest first, with their P&L after fees."""
    # The CLI's pairing (``paper --json`` reports the same trades); imported here because
    # the dashboard server runs under the CLI, which has loaded it already.
    from tradelab.cli._summary import round_trips

    by_symbol: dict[str, list[Any]] = defaultdict(list)
    for f in fills:
        by_symbol[f.symbol].append(f)
    rows = [{"symbol": sym, **t}
            for sym, own in by_symbol.items()
            for t in round_trips(own, marks[sym][1] if sym in marks else None)
            if t["status"] == "closed"]
    df = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    return df.sort_values("exit_time", ascending=False, kind="stable").reset_index(drop=True)


def daily_pnl(curve: pd.DataFrame, start_cash: float) -> pd.DataFrame:
    """P&L per UTC day: each day's last equity minus the previous day's (the start cash first)."""
    if not len(curve):
        return pd.DataFrame(columns=DAILY_COLUMNS)
    at = pd.to_datetime(curve["at"], utc=True)
    close = curve["equity"].astype(float).groupby(at.dt.strftime("%Y-%m-%d")).last()
    pnl = close.diff()
    pnl.iloc[0] = close.iloc[0] - start_cash
    return pd.DataFrame({"day": close.index, "pnl": pnl.to_numpy()}, columns=DAILY_COLUMNS)


__all__ = ["DAILY_COLUMNS", "POSITION_COLUMNS", "TRADE_COLUMNS", "RunFigures", "book",
           "closed_trades", "daily_pnl", "run_figures"]
