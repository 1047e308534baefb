"""Per-run reads the dashboard needs beyond :mod:`tradelab.store.reads`.

The dashboard shows one engine run at a time (several engines may trade one
account); these queries narrow what the shared reads return per account to
one run: its open orders, its latest equity snapshot and the last bar it
received per symbol (the mark of its open positions).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from tradelab.store import models as m
from tradelab.store.bar_sql import RB
from tradelab.store.reads import EQ, A, O
from tradelab.store.records import EquityPoint, OrderRecord

_ORDER_COLUMNS = [c for c in O.c if c.name not in ("id", "account_id")]


def run_open_orders(store: Any, run_id: int) -> list[OrderRecord]:
    """Run ``run_id``'s orders still working (new, submitted, partially filled), oldest first."""
    q = (select(*_ORDER_COLUMNS, A.c.name.label("account")).join(A, A.c.id == O.c.account_id)
         .where(O.c.run_id == run_id, O.c.status.in_(m.OPEN_ORDER_STATUSES))
         .order_by(O.c.created_at, O.c.id))
    with store.engine.connect() as conn:
        return [OrderRecord(**dict(r._mapping)) for r in conn.execute(q)]


def run_last_equity(store: Any, run_id: int) -> EquityPoint | None:
    """Run ``run_id``'s latest equity snapshot, or ``None`` before its first bar."""
    q = (select(EQ.c.at, EQ.c.run_id, EQ.c.cash, EQ.c.positions_value, EQ.c.equity,
                EQ.c.drawdown).where(EQ.c.run_id == run_id)
         .order_by(EQ.c.at.desc(), EQ.c.id.desc()).limit(1))
    with store.engine.connect() as conn:
        row = conn.execute(q).one_or_none()
    return EquityPoint(**row._mapping) if row is not None else None


def run_marks(store: Any, run_id: int) -> dict[str, tuple[Any, float]]:
    """``{symbol: (at, close)}`` of the last bar run ``run_id`` received per symbol."""
    bars = RB
    last = (select(bars.c.symbol, func.max(bars.c.at).label("at"))
            .where(bars.c.run_id == run_id).group_by(bars.c.symbol).subquery())
    q = (select(bars.c.symbol, bars.c.at, bars.c.close)
         .join(last, (last.c.symbol == bars.c.symbol) & (last.c.at == bars.c.at))
         .where(bars.c.run_id == run_id))
    with store.engine.connect() as conn:
        return {r.symbol: (r.at, float(r.close)) for r in conn.execute(q)}


__all__ = ["run_last_equity", "run_marks", "run_open_orders"]
