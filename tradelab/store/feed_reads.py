"""Per-run reads behind the dashboard's price chart and feed-health panel.

What a run received from its feed, from the store's own rows: the last bars of
a symbol (``run_bars``, written by the engine with each bar's snapshot), how
many bars it received and when the last one was, and its data-quality outcomes
(``data_quality_events``) summed per kind, reason and symbol. They run on the
caller's connection so that :func:`tradelab.store.dashboard_reads.run_rows`
reads them in the same read transaction as the run's fills and snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from tradelab.store.bar_sql import RB
from tradelab.store.quality_repo import DQ

#: Bars the price chart shows at most (the newest ones): the page stays fast.
CHART_BARS = 500
_OHLCV = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class FeedRows:
    """What one run received: bar count, first and last bar time, data-quality outcomes."""

    bars: int = 0
    first_bar: datetime | None = None
    last_bar: datetime | None = None
    #: ``{kind, reason, symbol, count, last_at}`` per (kind, reason, symbol), newest first.
    quality: list[dict[str, Any]] = field(default_factory=list)


def run_recent_bars(conn: Any, run_id: int, symbol: str,
                    limit: int = CHART_BARS) -> list[dict[str, Any]]:
    """The newest ``limit`` bars run ``run_id`` received for ``symbol``, oldest first.

    Parameters
    ----------
    conn
        An open SQLAlchemy connection to the store.
    run_id, symbol
        The run and the symbol.
    limit
        How many bars at most (the newest ones).

    Returns
    -------
    list of dict
        ``at`` (aware UTC), ``open, high, low, close, volume`` (float).
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    q = (select(RB.c.at, *(RB.c[f] for f in _OHLCV))
         .where(RB.c.run_id == run_id, RB.c.symbol == symbol)
         .order_by(RB.c.at.desc()).limit(limit))
    return [dict(r._mapping) for r in reversed(conn.execute(q).all())]


def run_feed(conn: Any, run_id: int) -> FeedRows:
    """How many bars run ``run_id`` received, its first and last bar time, and its
    data-quality outcomes summed per (kind, reason, symbol)."""
    n, first, last = conn.execute(
        select(func.count(), func.min(RB.c.at), func.max(RB.c.at))
        .where(RB.c.run_id == run_id)).one()
    q = (select(DQ.c.kind, DQ.c.reason, DQ.c.symbol, func.sum(DQ.c.count).label("count"),
                func.max(DQ.c.at).label("last_at"))
         .where(DQ.c.run_id == run_id).group_by(DQ.c.kind, DQ.c.reason, DQ.c.symbol))
    quality = sorted((dict(r._mapping) for r in conn.execute(q)),
                     key=lambda r: (r["last_at"], r["kind"], r["reason"]), reverse=True)
    for row in quality:
        row["count"] = int(row["count"])
    return FeedRows(int(n), first, last, quality)


__all__ = ["CHART_BARS", "FeedRows", "run_feed", "run_recent_bars"]
