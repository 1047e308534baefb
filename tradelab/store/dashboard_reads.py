"""Per-run reads the dashboard needs beyond :mod:`tradelab.store.reads`.

The dashboard shows one engine run at a time (several engines may trade one
account); these queries narrow what the shared reads return per account to
one run: its open orders, its latest equity snapshot and the last bar it
received per symbol (the mark of its open positions). :func:`run_rows` reads
all of a run's rows in one read transaction, so that an engine committing a
bar meanwhile cannot make its fills disagree with its equity snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from tradelab.store import models as m
from tradelab.store.bar_sql import RB
from tradelab.store.feed_reads import FeedRows, run_feed, run_recent_bars
from tradelab.store.quality_repo import DQ
from tradelab.store.reads import EQ, OE, A, O, Reader
from tradelab.store.records import EquityPoint, FillRecord, OrderRecord, RunRecord

_ORDER_COLUMNS = [c for c in O.c if c.name not in ("id", "account_id")]


def pick_run(runs: list[RunRecord], wanted: int | None) -> RunRecord | None:
    """``wanted`` if it is one of ``runs``, else the newest running run, else the newest run."""
    if wanted is not None:
        for r in runs:
            if r.id == wanted:
                return r
    running = [r for r in runs if r.status == "running"]
    return (running or runs)[-1] if runs else None


def chart_symbol(run: RunRecord) -> str:
    """The symbol a run's price chart shows: its first (a multi-symbol run lists them
    comma-separated)."""
    return run.symbol.split(",")[0].strip()


@dataclass(frozen=True)
class RunRows:
    """One account's runs and the picked run's own rows, read at one moment."""

    runs: list[RunRecord]
    run: RunRecord | None = None
    curve: list[EquityPoint] = field(default_factory=list)
    fills: list[FillRecord] = field(default_factory=list)
    last: EquityPoint | None = None
    marks: dict[str, tuple[Any, float]] = field(default_factory=dict)
    open_orders: list[OrderRecord] = field(default_factory=list)
    #: The newest order transitions and data-quality outcomes, as plain dicts.
    events: list[dict[str, Any]] = field(default_factory=list)
    #: The newest bars of the run's symbol (``at, open, high, low, close, volume``), oldest
    #: first: what the price chart draws.
    bars: list[dict[str, Any]] = field(default_factory=list)
    #: What the run received from its feed (bar count, last bar, data-quality outcomes).
    feed: FeedRows = field(default_factory=FeedRows)


def run_rows(store: Any, account: str, wanted: int | None,
             pick: Callable[[list[RunRecord], int | None], RunRecord | None] = pick_run
             ) -> RunRows:
    """The account's runs, the one ``pick`` chooses and its rows, in one read transaction."""
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # SQLite: a read transaction is a snapshot
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        reader = Reader(conn)
        runs = reader.runs(account)
        run = pick(runs, wanted)
        if run is None:
            return RunRows(runs)
        return RunRows(runs, run, reader.equity_curve(account, run.id),
                       reader.fills(account, run.id), run_last_equity(conn, run.id),
                       run_marks(conn, run.id), run_open_orders(conn, run.id),
                       run_events(conn, run.id), run_recent_bars(conn, run.id, chart_symbol(run)),
                       run_feed(conn, run.id))


def run_events(conn: Any, run_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """Run ``run_id``'s newest ``limit`` order transitions and data-quality outcomes, newest
    first, as ``{at, kind, symbol, event, detail}``."""
    orders = (select(OE.c.at, O.c.symbol, O.c.client_order_id, O.c.side, OE.c.from_state,
                     OE.c.to_state, OE.c.reason, OE.c.id)
              .join(O, O.c.id == OE.c.order_id).where(O.c.run_id == run_id)
              .order_by(OE.c.at.desc(), OE.c.id.desc()).limit(limit))
    quality = (select(DQ.c.at, DQ.c.symbol, DQ.c.kind, DQ.c.reason, DQ.c.count, DQ.c.detail,
                      DQ.c.id).where(DQ.c.run_id == run_id)
               .order_by(DQ.c.at.desc(), DQ.c.id.desc()).limit(limit))
    rows = [{"at": r.at, "kind": "order", "symbol": r.symbol,
             "event": f"{r.side} {r.client_order_id}: {r.from_state or 'new'} → {r.to_state}",
             "detail": r.reason or "", "_id": r.id} for r in conn.execute(orders)]
    rows += [{"at": r.at, "kind": f"data {r.kind}", "symbol": r.symbol,
              "event": f"{r.reason} ×{r.count}", "detail": r.detail or "", "_id": r.id}
             for r in conn.execute(quality)]
    rows.sort(key=lambda r: (r["at"], r["kind"] == "order", r["_id"]), reverse=True)
    return [{k: v for k, v in r.items() if k != "_id"} for r in rows[:limit]]


def run_open_orders(conn: Any, run_id: int) -> list[OrderRecord]:
    """Run ``run_id``'s orders still working (new, submitted, partially filled), oldest first."""
    q = (select(*_ORDER_COLUMNS, A.c.name.label("account")).join(A, A.c.id == O.c.account_id)
         .where(O.c.run_id == run_id, O.c.status.in_(m.OPEN_ORDER_STATUSES))
         .order_by(O.c.created_at, O.c.id))
    return [OrderRecord(**dict(r._mapping)) for r in conn.execute(q)]


def run_last_equity(conn: Any, run_id: int) -> EquityPoint | None:
    """Run ``run_id``'s latest equity snapshot, or ``None`` before its first bar."""
    q = (select(EQ.c.at, EQ.c.run_id, EQ.c.cash, EQ.c.positions_value, EQ.c.equity,
                EQ.c.drawdown).where(EQ.c.run_id == run_id)
         .order_by(EQ.c.at.desc(), EQ.c.id.desc()).limit(1))
    row = conn.execute(q).one_or_none()
    return EquityPoint(**row._mapping) if row is not None else None


def run_marks(conn: Any, run_id: int) -> dict[str, tuple[Any, float]]:
    """``{symbol: (at, close)}`` of the last bar run ``run_id`` received per symbol."""
    last = (select(RB.c.symbol, func.max(RB.c.at).label("at"))
            .where(RB.c.run_id == run_id).group_by(RB.c.symbol).subquery())
    q = (select(RB.c.symbol, RB.c.at, RB.c.close)
         .join(last, (last.c.symbol == RB.c.symbol) & (last.c.at == RB.c.at))
         .where(RB.c.run_id == run_id))
    return {r.symbol: (r.at, float(r.close)) for r in conn.execute(q)}


__all__ = ["RunRows", "chart_symbol", "pick_run", "run_events", "run_last_equity", "run_marks",
           "run_open_orders", "run_rows"]
