"""Reads (and an operator's correction) of ``run_bars``: the bars a run received.

The engine's recorder writes them (see :mod:`tradelab.store.bar_sql`); the drift
report (:mod:`tradelab.drift`) replays research over them. Rows leave as plain
dicts (``symbol, at, open, high, low, close, volume``), ready for
``pandas.DataFrame``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from tradelab.store.bar_sql import RB
from tradelab.store.types import to_utc

_FIELDS = ("open", "high", "low", "close", "volume")


def run_bars(store: Any, run_id: int, symbol: str | None = None) -> list[dict[str, Any]]:
    """The bars run ``run_id`` processed, in time order (then symbol).

    Parameters
    ----------
    store
        A :class:`tradelab.store.Store`.
    run_id
        The run.
    symbol
        Only this symbol's bars (default: all of the run's).

    Returns
    -------
    list of dict
        ``symbol, at`` (aware UTC), ``open, high, low, close, volume`` (float).
    """
    q = select(RB.c.symbol, RB.c.at, *(RB.c[f] for f in _FIELDS)).where(RB.c.run_id == run_id)
    if symbol is not None:
        q = q.where(RB.c.symbol == symbol)
    with store.engine.connect() as conn:
        rows = conn.execute(q.order_by(RB.c.at, RB.c.symbol)).all()
    return [dict(r._mapping) for r in rows]


def run_bar_count(store: Any, run_id: int) -> int:
    """How many bars run ``run_id`` has recorded."""
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RB)
                                .where(RB.c.run_id == run_id)).scalar_one())


def correct_run_bar(store: Any, run_id: int, symbol: str, at: datetime, **values: float) -> bool:
    """Overwrite fields of one recorded bar (an operator's correction, or a test's injected error).

    Returns
    -------
    bool
        Whether the bar existed.
    """
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown bar field(s) {', '.join(unknown)}")
    if not values:
        return False
    stmt = (update(RB).where(RB.c.run_id == run_id, RB.c.symbol == symbol, RB.c.at == to_utc(at))
            .values({k: float(v) for k, v in values.items()}))
    with store._write.begin() as conn:
        return bool(conn.execute(stmt).rowcount)


__all__ = ["correct_run_bar", "run_bar_count", "run_bars"]
