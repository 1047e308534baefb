"""More of one run's figures for the dashboard: per-symbol performance, feed health,
the price chart's data (bars, the strategy's indicators, fill markers).

Like :mod:`tradelab.dashboard.runview` everything is derived from the run's own
rows, read in the same transaction (:func:`tradelab.store.dashboard_reads.run_rows`),
so the per-symbol P&L adds up to the run's P&L tile: per symbol, realized P&L
(before fees) + unrealized P&L - fees, over the same fills and marks as the tiles.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pandas as pd
import structlog

from tradelab.dashboard.runview import book

log = structlog.get_logger("tradelab.dashboard")
SYMBOL_COLUMNS = ["symbol", "pnl", "realized", "unrealized", "fees", "fills", "round_trips",
                  "win_rate"]
BAR_COLUMNS = ["at", "open", "high", "low", "close"]
MARKER_COLUMNS = ["at", "side", "price"]
#: The feed counts as stale once its last bar is older than this many bar intervals.
STALE_INTERVALS = 3
#: The interval assumed when a run has fewer than two bars to measure it from.
DEFAULT_INTERVAL = timedelta(minutes=1)


def symbol_performance(fills: list[Any], last: Any, positions: pd.DataFrame,
                       trades: pd.DataFrame) -> pd.DataFrame:
    """Per symbol: P&L (realized + unrealized - fees), realized, unrealized, fees, fills,
    round trips and win rate (closed round trips with a positive P&L after fees).

    Parameters
    ----------
    fills
        The run's fills, oldest first; those after ``last`` are left out, as the tiles do.
    last
        The run's latest equity snapshot (``None`` before its first bar).
    positions
        The run's open positions with their ``unrealized`` P&L
        (:attr:`tradelab.dashboard.runview.RunFigures.positions`).
    trades
        The run's closed round trips (:func:`tradelab.dashboard.runview.closed_trades`).
    """
    upto = [f for f in fills if last is None or f.at <= last.at]
    pf = book(upto)
    fees: dict[str, Decimal] = defaultdict(Decimal)
    count: dict[str, int] = defaultdict(int)
    for f in upto:
        fees[f.symbol] += Decimal(f.fees)
        count[f.symbol] += 1
    unrealized = {r.symbol: (r.unrealized or 0.0) for r in positions.itertuples()}
    rows = []
    for sym in sorted(count):
        own = trades[trades["symbol"] == sym] if len(trades) else trades
        realized = float(pf.positions[sym].realized_pnl) if sym in pf.positions else 0.0
        un = float(unrealized.get(sym, 0.0))
        rows.append({"symbol": sym, "pnl": realized + un - float(fees[sym]),
                     "realized": realized, "unrealized": un, "fees": float(fees[sym]),
                     "fills": count[sym], "round_trips": len(own),
                     "win_rate": (float((own["pnl"].astype(float) > 0).mean())
                                  if len(own) else None)})
    return pd.DataFrame(rows, columns=SYMBOL_COLUMNS)


def bar_interval(bars: list[dict[str, Any]]) -> timedelta | None:
    """The run's bar interval: the smallest step between its newest bars (``None`` below two)."""
    if len(bars) < 2:
        return None
    steps = [b["at"] - a["at"] for a, b in pairwise(bars)]
    positive = [s for s in steps if s > timedelta(0)]
    return min(positive) if positive else None


def feed_health(feed: Any, bars: list[dict[str, Any]], now: datetime | None,
                stale_after: timedelta | None = None) -> dict[str, Any]:
    """The feed's state for the panel: last bar, its age, bars received, the threshold and
    ``state`` (``no bars``, ``ok`` or ``stale``).

    ``stale_after`` defaults to :data:`STALE_INTERVALS` bar intervals (measured from the
    run's bars, else :data:`DEFAULT_INTERVAL`).
    """
    interval = bar_interval(bars)
    threshold = stale_after or STALE_INTERVALS * (interval or DEFAULT_INTERVAL)
    last = feed.last_bar
    age = (now - last) if (now is not None and last is not None) else None
    state = "no bars" if last is None else ("stale" if age is not None and age > threshold
                                            else "ok")
    return {"state": state, "last_bar": last, "age": age, "bars": feed.bars,
            "interval": interval, "threshold": threshold, "quality": list(feed.quality)}


def chart_data(run: Any, bars: list[dict[str, Any]], fills: list[Any], registry: Any
               ) -> tuple[pd.DataFrame, dict[str, list[float]], pd.DataFrame]:
    """The price chart's bars, the strategy's indicators over them and the fills in their
    time range as markers (``at, side, price``)."""
    frame = pd.DataFrame(bars, columns=["at", "open", "high", "low", "close", "volume"])
    symbol = run.symbol.split(",")[0].strip() if run is not None else ""
    start = frame["at"].iloc[0] if len(frame) else None
    marks = [{"at": f.at, "side": f.side, "price": float(f.price)} for f in fills
             if f.symbol == symbol and (start is None or f.at >= start)]
    return (frame[BAR_COLUMNS], indicators(run, frame, registry),
            pd.DataFrame(marks, columns=MARKER_COLUMNS))


def indicators(run: Any, frame: pd.DataFrame, registry: Any) -> dict[str, list[float]]:
    """The run's strategy's :meth:`~tradelab.strategy.base.Strategy.indicators` over
    ``frame``, built from the run's stored name and parameters (empty when the strategy
    is unknown here or its parameters no longer fit)."""
    if run is None or registry is None or not len(frame) or run.strategy not in registry:
        return {}
    try:
        strategy = registry.create(run.strategy, **(run.params or {}))
        series = strategy.indicators(frame.set_index("at"))
    except Exception as exc:  # a strategy's own code must not break the page
        log.warning("dashboard_indicators_failed", strategy=run.strategy,
                    error=type(exc).__name__)
        return {}
    return {name: pd.Series(s).astype(float).tolist() for name, s in series.items()}


__all__ = ["BAR_COLUMNS", "DEFAULT_INTERVAL", "MARKER_COLUMNS", "STALE_INTERVALS",
           "SYMBOL_COLUMNS", "bar_interval", "chart_data", "feed_health", "indicators",
           "symbol_performance"]
