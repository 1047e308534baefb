"""The ``run_bars`` INSERT at the driver level: the bars a run received, written with its snapshots.

The recorder buffers each bar the engine processed and writes them in the same
transaction as the equity snapshots and the progress mark (see
:mod:`tradelab.store.recorder`), so the stored bars always end exactly at
``runs.last_bar_time``: a resume continues after it and writes each later bar
once. The statement still ignores a bar already stored (``ON CONFLICT DO
NOTHING`` on the ``(run_id, symbol, at)`` key), because a bar is a fact the run
received, and a second write of the same key can only repeat it.

Like :mod:`tradelab.store.equity_sql` it skips SQLAlchemy's per-row parameter
processing (one ``executemany`` per flush, the columns' own bind processors
applied once per value), which keeps the cost per bar to a few µs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.dialects import postgresql, sqlite

from tradelab.store import models as m

RB = cast(Table, m.RunBar.__table__)
RUN_BAR_COLUMNS = ("run_id", "symbol", "at", "open", "high", "low", "close", "volume")
_KEY = ["run_id", "symbol", "at"]
_IDENTITY = tuple(range(len(RUN_BAR_COLUMNS)))


def _same(x: Any) -> Any:
    return x


def _statement(dialect: Any) -> Any:
    values: dict[str, Any] = {c: bindparam(c) for c in RUN_BAR_COLUMNS}
    if dialect.name == "sqlite":
        return sqlite.insert(RB).values(values).on_conflict_do_nothing(index_elements=_KEY)
    if dialect.name == "postgresql":
        return postgresql.insert(RB).values(values).on_conflict_do_nothing(index_elements=_KEY)
    return insert(RB).values(values)  # no upsert: the progress mark alone prevents repeats


class BarWriter:
    """The compiled ``run_bars`` INSERT and its bind processors for one dialect.

    Parameters
    ----------
    dialect
        The store connection's SQLAlchemy dialect.
    """

    def __init__(self, dialect: Any) -> None:
        compiled = _statement(dialect).compile(dialect=dialect)
        self.sql = str(compiled)
        self._names = not compiled.positional
        self._order = (tuple(RUN_BAR_COLUMNS.index(n) for n in compiled.positiontup or ())
                       if compiled.positional else None)
        procs = [RB.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in RUN_BAR_COLUMNS]
        at = procs[2]
        if at is not None and dialect.name == "sqlite":
            # The memoized UTC text the snapshots use, when it agrees with the processor.
            from tradelab.store.bulkwrite import _PROBES, _at_text

            fast = _at_text(at)
            if all(fast(t) == at(t) for t in _PROBES):
                at = fast
        self._at = at
        # The prices and volume are converted with float() in rows(): the Float columns'
        # processors (SQLite: to_float) would only repeat that.
        self._other = [(i, p) for i, p in enumerate(procs[:2]) if p is not None]

    def rows(self, run_id: int, bars: Sequence[Sequence[Any]]) -> list[Any]:
        """Database-form parameters for ``bars`` (``(symbol, at, o, h, l, c, v)`` each)."""
        at = self._at if self._at is not None else _same
        if not self._other and not self._names and self._order == _IDENTITY:
            # SQLite: one tuple per bar, nothing else to convert (float() keeps the bar
            # contract's floats as they are and turns a stray int or numpy scalar into one).
            return [(run_id, b[0], at(b[1]), float(b[2]), float(b[3]), float(b[4]), float(b[5]),
                     float(b[6])) for b in bars]
        out: list[list[Any]] = [
            [run_id, b[0], at(b[1]), float(b[2]), float(b[3]), float(b[4]), float(b[5]), float(b[6])]
            for b in bars]
        for i, proc in self._other:
            for r in out:
                r[i] = proc(r[i])
        if self._names:
            return [dict(zip(RUN_BAR_COLUMNS, r, strict=True)) for r in out]
        order = self._order or _IDENTITY
        return [tuple(r[i] for i in order) for r in out]

    def write_cursor(self, cur: Any, run_id: int, bars: Sequence[Sequence[Any]]) -> None:
        """One ``executemany`` on a DBAPI cursor inside the caller's transaction."""
        if bars:
            cur.executemany(self.sql, self.rows(run_id, bars))

    def write_connection(self, conn: Any, run_id: int, bars: Sequence[Sequence[Any]]) -> None:
        """The same statement through a SQLAlchemy connection's ``exec_driver_sql``."""
        if bars:
            conn.exec_driver_sql(self.sql, self.rows(run_id, bars))


__all__ = ["RUN_BAR_COLUMNS", "BarWriter"]
