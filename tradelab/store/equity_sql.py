"""The equity-snapshot INSERT at the driver level: column order, bind processors, SQL per dialect.

Shared by :class:`~tradelab.store.tx.Transaction` and the engine's bulk writer
(:mod:`tradelab.store.bulkwrite`), so both write the same bytes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert

from tradelab.store.reads import EQ

EQUITY_COLUMNS = ("account_id", "run_id", "at", "cash", "positions_value", "equity", "drawdown")
IDENTITY = tuple(range(len(EQUITY_COLUMNS)))
_EQ_DRIVER_SQL: dict[str, tuple[str, tuple[int, ...] | None]] = {}


def equity_bind_processors(dialect: Any) -> tuple[Any, ...]:
    """Per :data:`EQUITY_COLUMNS`, the column type's bind processor for ``dialect`` (or None)."""
    # dialect_impl(): the processor SQLAlchemy's execution uses (a TypeDecorator's
    # unadapted bind_processor() would run its generic impl instead).
    return tuple(EQ.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in EQUITY_COLUMNS)


def equity_driver_sql(dialect: Any) -> tuple[str, tuple[int, ...] | None]:
    # The INSERT compiled once per dialect; for positional paramstyles, where each
    # EQUITY_COLUMNS value goes in the statement's parameter order.
    found = _EQ_DRIVER_SQL.get(dialect.name)
    if found is None:
        stmt = insert(EQ).inline().values({c: bindparam(c) for c in EQUITY_COLUMNS})  # no RETURNING
        compiled = stmt.compile(dialect=dialect)
        order = (tuple(EQUITY_COLUMNS.index(n) for n in compiled.positiontup or ())
                 if compiled.positional else None)
        found = _EQ_DRIVER_SQL[dialect.name] = (str(compiled), order)
    return found


__all__ = ["EQUITY_COLUMNS", "IDENTITY", "equity_bind_processors", "equity_driver_sql"]
