"""Column types that behave the same on SQLite and PostgreSQL.

Two problems this module solves:

* **Exact decimals.** SQLite has no decimal type: a ``NUMERIC`` column gives
  the value *numeric affinity*, so ``"0.1000000000"`` is silently stored as the
  REAL ``0.1`` and anything past ~15 significant digits drifts. :class:`Amount`
  therefore stores a canonical fixed-point string in a ``VARCHAR`` column on
  SQLite and a real ``NUMERIC(28, 10)`` on PostgreSQL. Rounding to 10 places
  happens in Python before the value reaches either backend (half to even,
  the policy of :mod:`tradelab.money`), so PostgreSQL never rounds (it would
  round half away from zero) and both return the identical
  :class:`~decimal.Decimal`.
* **Aware datetimes.** SQLite stores datetimes as naive text and PostgreSQL
  returns them in the session time zone. :class:`UTCDateTime` refuses naive
  values on the way in and always returns ``tzinfo=UTC`` on the way out.
"""

from __future__ import annotations

import decimal
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

PRECISION = 28
SCALE = 10
_QUANTUM = Decimal(1).scaleb(-SCALE)
_MAX_INTEGER_DIGITS = PRECISION - SCALE
# A private context: the default one has prec=28, which is exactly enough for
# in-range values, but out-of-range ones must reach our own error, not
# InvalidOperation from quantize().
_CONTEXT = decimal.Context(prec=PRECISION + 20, rounding=decimal.ROUND_HALF_EVEN)
# "-9" * 18 + "." + 10 digits, plus sign: the widest canonical string.
_SQLITE_WIDTH = PRECISION + 2


def to_amount(value: Decimal | int | str) -> Decimal:
    """Normalize a value to what an :class:`Amount` column stores.

    Parameters
    ----------
    value
        A :class:`~decimal.Decimal`, ``int`` or decimal string. Floats are
        refused: they are already inexact, and silently accepting them is how
        money drifts.

    Returns
    -------
    Decimal
        Rounded half to even to 10 places (like ``tradelab.money.book``),
        negative zero made positive.

    Raises
    ------
    TypeError
        For floats and other non-decimal types.
    ValueError
        For NaN, infinities and values with more than 18 integer digits.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"expected Decimal, int or str for an exact amount, got {value!r}")
    try:
        d = Decimal(value)
    except decimal.InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"amount must be finite, got {value!r}")
    q = d.quantize(_QUANTUM, context=_CONTEXT)
    if q.adjusted() >= _MAX_INTEGER_DIGITS:
        raise ValueError(
            f"amount {value!r} does not fit NUMERIC({PRECISION}, {SCALE}): "
            f"at most {_MAX_INTEGER_DIGITS} integer digits"
        )
    return q.copy_abs() if q.is_zero() else q


class Amount(TypeDecorator[Decimal]):
    """Exact money/quantity column: ``NUMERIC(28, 10)``, string-backed on SQLite."""

    impl = Numeric(PRECISION, SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(_SQLITE_WIDTH))
        return dialect.type_descriptor(Numeric(PRECISION, SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        q = to_amount(value)
        return format(q, "f") if dialect.name == "sqlite" else q

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        # Re-quantize so that both backends hand back the same exponent even
        # for rows written by hand (e.g. "1" typed into sqlite3).
        return to_amount(value if isinstance(value, Decimal) else str(value))

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


def to_utc(value: datetime) -> datetime:
    """An aware datetime converted to UTC; naive datetimes are refused.

    Raises
    ------
    TypeError
        If ``value`` is not a :class:`~datetime.datetime`.
    ValueError
        If ``value`` is naive (no way to know which zone it meant).
    """
    if not isinstance(value, datetime):
        raise TypeError(f"expected a timezone-aware datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} refused: pass tzinfo=UTC")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE``; aware UTC in and out on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        utc = to_utc(value)
        # SQLite keeps naive text; storing UTC keeps it sortable as text.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite: written by us, so it is UTC
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


def _json_default(obj: Any) -> Any:
    # Summaries and params often carry Decimals and timestamps; JSON has
    # neither, so they are stored as strings (exact, and readable by humans).
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable: {obj!r}")


def json_dumps(obj: Any) -> str:
    """The JSON serializer the store's engine uses (Decimal/datetime as strings)."""
    return json.dumps(obj, default=_json_default, sort_keys=True)
