"""The routine flush's statements at the DBAPI level, inside the flush's own transaction.

A routine flush (every ``flush_every`` bars) writes a handful of rows: the
orders' new fields, their audit rows, fills, the position, the cash, 50 equity
snapshots and the progress mark. Through SQLAlchemy Core each statement costs
~0.1 ms of parameter processing, result setup and events around a few µs of
SQL, which made the flush the largest per-bar cost of the engine.

:class:`DriverWriter` runs the same statements on the DBAPI connection of the
:class:`~tradelab.store.tx.Transaction` the recorder opened, so they commit (or
roll back) with everything else in it. Like
:mod:`tradelab.store.sideconn` it compiles each statement once with
SQLAlchemy for the store's dialect and converts every value with the column
types' own bind processors: the rows are byte-for-byte those the
``Transaction`` methods write (``tests/unit/engine/test_bulkwrite.py`` compares
two runs' tables). Only SQLite uses it; other dialects keep the
``Transaction`` methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import bindparam, update
from sqlalchemy.dialects import sqlite

from tradelab.money import MONEY_CONTEXT, ZERO
from tradelab.store import models as m
from tradelab.store.reads import OE, A, F, O, P, R, check_choice
from tradelab.store.sideconn import _Prepared

log = structlog.get_logger("tradelab.store.bulkwrite")


#: Order fields a flush updates through :meth:`DriverWriter.update_order` (what the
#: recorder's order events carry); of these only ``status`` is a checked choice.
ORDER_UPDATE_FIELDS = frozenset({"status", "filled_quantity", "broker_order_id", "quantity",
                                 "avg_fill_price", "reason"})


def _types(table: Any, names: Sequence[str], prefix: str = "") -> dict[str, Any]:
    return {prefix + n: table.c[n].type for n in names}


class DriverWriter:
    """Prepared flush statements for one SQLite dialect (reusable across transactions)."""

    def __init__(self, dialect: Any) -> None:
        self.dialect = dialect
        # UPDATE ... SET col = :p_col: a bindparam may not reuse a column's name in SET.
        self._cash = _Prepared(update(A).where(A.c.id == bindparam("aid")).values(
            cash=bindparam("p_cash")), dialect, {"aid": A.c.id.type, "p_cash": A.c.cash.type})
        self._progress = _Prepared(update(R).where(R.c.id == bindparam("rid")).values(
            last_bar_time=bindparam("p_t")), dialect,
            {"rid": R.c.id.type, "p_t": R.c.last_bar_time.type})
        pos_cols = ("account_id", "symbol", "quantity", "avg_price", "realized_pnl")
        ins = sqlite.insert(P).values({c: bindparam(c) for c in pos_cols})
        self._position = _Prepared(ins.on_conflict_do_update(
            index_elements=["account_id", "symbol"],
            set_={c: ins.excluded[c] for c in ("quantity", "avg_price", "realized_pnl")}),
            dialect, _types(P, pos_cols))
        ev_cols = ("order_id", "from_state", "to_state", "at", "reason")
        self._events = _Prepared(sqlite.insert(OE).values({c: bindparam(c) for c in ev_cols}),
                                 dialect, _types(OE, ev_cols))
        fill_cols = ("fill_id", "order_id", "symbol", "side", "quantity", "price", "fees", "at")
        self._fill = _Prepared(sqlite.insert(F).values({c: bindparam(c) for c in fill_cols})
                               .on_conflict_do_nothing(index_elements=["fill_id"]).returning(F.c.id),
                               dialect, _types(F, fill_cols))
        self._order_updates: dict[tuple[str, ...], _Prepared] = {}
        self.snapshots = SnapshotBinder(dialect)
        from tradelab.store.equity_sql import IDENTITY, equity_driver_sql

        self._eq_sql, order = equity_driver_sql(dialect)
        self._eq_order = None if order == IDENTITY else order

    @staticmethod
    def cursor(tx: Any) -> Any:
        """A DBAPI cursor in ``tx``'s transaction (same connection, same commit)."""
        return tx._conn.connection.driver_connection.cursor()

    def set_cash(self, cur: Any, account_id: int, cash: Decimal) -> None:
        cur.execute(self._cash.sql, self._cash.params({"aid": account_id, "p_cash": cash}))

    def set_progress(self, cur: Any, run_id: int, at: datetime) -> None:
        cur.execute(self._progress.sql, self._progress.params({"rid": run_id, "p_t": at}))
        if cur.rowcount != 1:
            from tradelab.store.errors import StoreError

            raise StoreError(f"unknown run id {run_id!r}")

    def set_position(self, cur: Any, account_id: int, symbol: str, quantity: Decimal,
                     avg_price: Decimal, realized_pnl: Decimal) -> None:
        cur.execute(self._position.sql, self._position.params(
            {"account_id": account_id, "symbol": symbol, "quantity": quantity,
             "avg_price": avg_price, "realized_pnl": realized_pnl}))

    def update_order(self, cur: Any, order_id: int, fields: Mapping[str, Any], at: datetime) -> None:
        """``Transaction.save_order(order_id=...)`` for :data:`ORDER_UPDATE_FIELDS` (validated alike)."""
        unknown = sorted(set(fields) - ORDER_UPDATE_FIELDS)
        if unknown:
            raise ValueError(f"unknown order field(s) {', '.join(unknown)}")
        values = dict(fields)
        if "status" in values:
            values["status"] = check_choice("status", values["status"], m.ORDER_STATUSES)
        keys = tuple(sorted(values))
        prep = self._order_updates.get(keys)
        if prep is None:
            stmt = update(O).where(O.c.id == bindparam("oid")).values(
                {k: bindparam("p_" + k) for k in (*keys, "updated_at")})
            types = {"oid": O.c.id.type, **_types(O, (*keys, "updated_at"), "p_")}
            prep = self._order_updates[keys] = _Prepared(stmt, self.dialect, types)
        params = {"oid": order_id, "p_updated_at": at}
        params.update({"p_" + k: v for k, v in values.items()})
        cur.execute(prep.sql, prep.params(params))

    def add_order_events(self, cur: Any,
                         rows: Sequence[tuple[int, str | None, str, datetime, str | None]]) -> None:
        if not rows:
            return
        prep = self._events
        cur.executemany(prep.sql, [prep.params({
            "order_id": oid,
            "from_state": None if a is None else check_choice("from_state", a, m.ORDER_STATUSES),
            "to_state": check_choice("to_state", b, m.ORDER_STATUSES), "at": at, "reason": reason})
            for oid, a, b, at, reason in rows])

    def add_fill(self, cur: Any, order_id: int, fill_id: str, symbol: str, side: str,
                 quantity: Decimal, price: Decimal, fees: Decimal, at: datetime) -> bool:
        prep = self._fill
        cur.execute(prep.sql, prep.params({
            "fill_id": fill_id, "order_id": order_id, "symbol": symbol,
            "side": check_choice("side", side, m.SIDES), "quantity": quantity, "price": price,
            "fees": fees, "at": at}))
        if cur.fetchone() is None:  # as Transaction.add_fill_by_id: a duplicate is ignored
            log.warning("duplicate fill ignored", fill_id=fill_id, order_id=order_id)
            return False
        return True

    def add_snapshots(self, cur: Any, account_id: int, run_id: int, peak: Decimal,
                      snaps: Sequence[tuple[datetime, Decimal, Decimal, Decimal]]) -> Decimal:
        """Insert the snapshots (one executemany); returns the new peak equity."""
        rows, peak = self.snapshots.rows(account_id, run_id, peak, snaps)
        order = self._eq_order
        cur.executemany(self._eq_sql, rows if order is None else
                        [tuple(r[i] for i in order) for r in rows])
        return peak


class SnapshotBinder:
    """Equity snapshots in database form: the bytes ``Transaction.add_equity_snapshots`` stores.

    The drawdown is computed here, at the flush, from the ordered equities and the
    peak before them (exactly the expression the recorder used per bar). Amounts go
    through the column type's bind processor once per *distinct* value: along a
    curve the cash, a zero position value and the drawdown repeat for long stretches
    (see :meth:`rows`).
    On SQLite the processor's work for a Decimal (quantize to 10 places, range
    check, fixed-point text) is done by :func:`_amount_text` without SQLAlchemy's
    wrappers, and the time by :func:`_at_text`; each is used only when it returns
    exactly what the real processor returns on probe values.
    """

    def __init__(self, dialect: Any) -> None:
        from tradelab.store.equity_sql import equity_bind_processors

        self.procs = equity_bind_processors(dialect)
        self._at = self.procs[2]
        if self._at is not None:
            fast_at = _at_text(self._at)
            if all(_sqlite_utc_text(t) == self._at(t) == fast_at(t) for t in _PROBES):
                self._at = fast_at
        amount = self.procs[3]
        if amount is not None:
            fast = _amount_text(amount)
            if all(fast(x) == amount(x) for x in _AMOUNT_PROBES):
                amount = fast
        self._amount = amount

    def rows(self, account_id: int, run_id: int | None, peak: Decimal,
             snaps: Sequence[tuple[datetime, Decimal, Decimal, Decimal]]
             ) -> tuple[list[tuple[Any, ...]], Decimal]:
        aid_p, run_p = self.procs[0], self.procs[1]
        amount = self._amount
        at_p = self._at
        aid = aid_p(account_id) if aid_p is not None else account_id
        run = run_p(run_id) if run_p is not None and run_id is not None else run_id
        # Each amount is converted when it is not the very object of the previous row:
        # the engine hands over the same cash object until a fill, the same zero while
        # flat, and the cash itself as the equity while flat. (Keying a memo on the
        # value would hash a fresh Decimal per bar while a position is open, which
        # costs about as much as converting it.) Any zero drawdown has one text.
        conv = amount if amount is not None else _same
        zero_b = conv(ZERO) if amount is not None else None
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        last_equity: Decimal | None = None  # equity and peak of the previous drawdown
        last_peak: Decimal | None = None
        dd_b: Any = None
        cash_o = pv_o = eq_o = _NONE
        cash_b = pv_b = eq_b = None
        divide = MONEY_CONTEXT.divide
        for at, cash, pv, equity in snaps:
            if equity > peak:
                peak = equity
            if last_equity is None or last_equity != equity or last_peak is not peak:  # flat: same as before
                dd = divide(peak - equity, peak) if peak > 0 else ZERO
                last_equity, last_peak = equity, peak
                dd_b = zero_b if zero_b is not None and not dd else conv(dd)
            if cash is not cash_o:
                cash_o, cash_b = cash, conv(cash)
            if pv is not pv_o:
                pv_o, pv_b = pv, conv(pv)
            if equity is not eq_o:
                eq_o, eq_b = equity, (cash_b if equity is cash else conv(equity))
            append((aid, run, at_p(at) if at_p is not None else at, cash_b, pv_b, eq_b, dd_b))
        return rows, peak


_NONE = object()  # "no previous row" for the identity checks


def _same(x: Any) -> Any:
    return x


# Amount's bind processor on SQLite is ``format(to_amount(x), "f")``: quantize half to
# even to 10 places in a 48-digit context, refuse more than 18 integer digits, make a
# zero positive. For a finite Decimal in range, :func:`_amount_text` does those same
# operations directly (~0.4 µs instead of ~1.2 µs through SQLAlchemy's and the type's
# wrappers); anything else (ints, strings, NaN, out-of-range values: errors) goes to
# the processor. SnapshotBinder uses it only when it agrees with the processor on
# _AMOUNT_PROBES (PostgreSQL's processor returns Decimals, so it never does there).
_AMOUNT_PROBES = tuple(Decimal(x) for x in (
    "0", "-0", "0E-30", "-0E+5", "1", "-1", "0.1", "100000", "100000.00000000000000000000",
    "12.34567890123456789", "98765.43210987654321", "-98765.43210987654321",
    "0.00000000005", "0.00000000015", "0.00000000025", "-0.00000000005", "0.000000000049999",
    "123456789012345678.9999999999", "-123456789012345678.12345678905", "1E+17", "-4.2E-7",
    "0.03127364509912364519283746512983746", "99999.99999999995"))


def _amount_text(processor: Any) -> Any:
    from tradelab.store.types import _CONTEXT, _MAX_INTEGER_DIGITS, _QUANTUM

    def amount(x: Any) -> Any:
        if type(x) is Decimal and x.is_finite():
            try:
                q = x.quantize(_QUANTUM, context=_CONTEXT)
            except ArithmeticError:
                return processor(x)  # raises the processor's own error
            adjusted = q.adjusted()
            if adjusted < _MAX_INTEGER_DIGITS:
                if adjusted >= -6:  # nonzero, and str() writes it without an exponent: the same text
                    return str(q)
                return format(q if q else q.copy_abs(), "f")
        return processor(x)

    return amount


# The bar times of a replay or a live feed are aware UTC datetimes. The UTCDateTime
# processor spends ~3 µs on one (to_utc, replace, SQLite's %-dict formatting) to
# produce the text below; this produces the same text in ~0.4 µs. It is used only
# when it agrees with the real processor on the probes (a store configured with
# another storage format keeps the processor), and only for tzinfo=UTC values:
# anything else (other zones, naive times, which must be refused) goes to it.
_PROBES = (datetime(2020, 1, 2, 21, 0, tzinfo=UTC), datetime(1999, 12, 31, 23, 59, 59, 123456, tzinfo=UTC),
           datetime(987, 6, 5, 4, 3, 2, 1, tzinfo=UTC))


def _sqlite_utc_text(t: datetime) -> str:
    return t.replace(tzinfo=None).isoformat(" ", "microseconds")


_TIME_TEXT = " %02d:%02d:%02d.%06d"  # the time part of isoformat(" ", "microseconds")


def _at_text(processor: Any) -> Any:
    # The date's isoformat (a naive date: fast) and the time of day's text, which
    # repeats from bar to bar (memoized): ~0.4 µs, against ~1.3 µs for an aware
    # datetime's isoformat.
    times: dict[tuple[int, int, int, int], str] = {}

    def at(t: datetime) -> Any:
        if type(t) is datetime and t.tzinfo is UTC:
            key = (t.hour, t.minute, t.second, t.microsecond)
            tod = times.get(key)
            if tod is None:
                if len(times) > 4096:  # e.g. tick times: every one distinct
                    times.clear()
                tod = times[key] = _TIME_TEXT % key
            return t.date().isoformat() + tod
        return processor(t)

    return at
