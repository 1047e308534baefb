"""SnapshotBinder's shortcuts produce exactly what the column types' bind processors produce."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy.dialects import sqlite

from tradelab.money import MONEY_CONTEXT, ZERO
from tradelab.store.bulkwrite import _AMOUNT_PROBES, SnapshotBinder
from tradelab.store.tx import equity_bind_processors


def _outcome(fn, x):  # type: ignore[no-untyped-def]
    try:
        return "ok", fn(x)
    except Exception as exc:  # the same error, or the same text
        return "error", type(exc).__name__, str(exc)


def test_amount_text_equals_the_processor() -> None:
    dialect = sqlite.dialect()
    binder, proc = SnapshotBinder(dialect), equity_bind_processors(dialect)[3]
    assert binder._amount is not proc  # the shortcut is in use on SQLite
    rng = random.Random(5)
    values = list(_AMOUNT_PROBES)
    for _ in range(20000):
        k = rng.random()
        if k < 0.3:
            x = Decimal(repr(rng.uniform(-1e6, 1e6))) * Decimal(rng.randint(0, 500))
        elif k < 0.6:
            x = MONEY_CONTEXT.divide(Decimal(repr(rng.uniform(0, 1e5))), Decimal(repr(rng.uniform(1, 1e6))))
        elif k < 0.8:
            x = Decimal(rng.randint(-10**30, 10**30)).scaleb(-rng.randint(0, 40))
        else:  # ties at the 11th place: half to even
            x = Decimal(f"{rng.randint(0, 10**12)}5").scaleb(-11 - rng.randint(0, 2)) * rng.choice([1, -1])
        values.append(x)
    values += [Decimal("NaN"), Decimal("Infinity"), Decimal("1E+40"), Decimal("1E+18"), Decimal("-1E+18"),
               Decimal("999999999999999999.99999999995"), 7, "1.5"]
    for x in values:
        assert _outcome(binder._amount, x) == _outcome(proc, x), x


def test_time_text_equals_the_processor() -> None:
    dialect = sqlite.dialect()
    binder, proc = SnapshotBinder(dialect), equity_bind_processors(dialect)[2]
    assert binder._at is not proc
    rng = random.Random(1)
    base = datetime(1, 1, 1, tzinfo=UTC)
    span = (datetime(9999, 12, 31, tzinfo=UTC) - base) // timedelta(microseconds=1)
    for i in range(20000):
        t = base + timedelta(microseconds=rng.randint(0, span))
        if i % 3 == 0:
            t = t.replace(microsecond=0)
        assert binder._at(t) == proc(t)
    other = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    assert binder._at(other) == proc(other) == "2024-05-06 05:08:09.000000"
    assert _outcome(binder._at, datetime(2024, 5, 6)) == _outcome(proc, datetime(2024, 5, 6))


def test_rows_equal_rows_built_with_the_processors() -> None:
    """A curve with fills, flat stretches, new peaks and drawdowns, as the engine hands it over."""
    dialect = sqlite.dialect()
    procs = equity_bind_processors(dialect)
    binder = SnapshotBinder(dialect)
    rng = random.Random(3)
    t0 = datetime(2020, 1, 2, 21, tzinfo=UTC)
    cash = Decimal("100000")
    snaps, qty = [], ZERO
    for i in range(2000):
        if rng.random() < 0.03:  # a fill: a new cash object
            qty = ZERO if qty else Decimal(rng.randint(1, 30))
            cash = cash - Decimal(repr(rng.uniform(0, 50))) * (qty or 1)
        if qty:
            pv = MONEY_CONTEXT.multiply(qty, Decimal(repr(round(rng.uniform(3000, 5000), 2))))
            equity = MONEY_CONTEXT.add(cash, pv)
        else:
            pv, equity = ZERO, cash
        snaps.append((t0 + timedelta(days=i), cash, pv, equity))
    peak = Decimal("99000")
    rows, new_peak = [], peak
    for i in range(0, len(snaps), 170):  # several flushes
        part, new_peak = binder.rows(3, 9, new_peak, snaps[i:i + 170])
        rows += part
    expected, p = [], peak
    for at, c, pv, eq in snaps:
        p = max(p, eq)
        dd = MONEY_CONTEXT.divide(p - eq, p) if p > 0 else ZERO
        expected.append(tuple(v if f is None else f(v) for f, v in zip(procs, (3, 9, at, c, pv, eq, dd),
                                                                        strict=True)))
    assert rows == expected
    assert new_peak == p
