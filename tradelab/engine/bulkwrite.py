"""The routine flush's statements at the DBAPI level, inside the flush's own transaction.

A routine flush (every ``flush_every`` bars) writes a handful of rows: the
orders' new fields, their audit rows, fills, the position, the cash, 50 equity
snapshots and the progress mark. Through SQLAlchemy Core each statement costs
~0.1 ms of parameter processing, result setup and events around a few µs of
SQL, which made the flush the largest per-bar cost of the engine.

:class:`DriverWriter` runs the same statements on the DBAPI connection of the
:class:`~tradelab.store.tx.Transaction` the recorder opened, so they commit (or
roll back) with everything else in it. Like
:mod:`tradelab.engine.sideconn` it compiles each statement once with
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

from tradelab.engine.sideconn import _Prepared
from tradelab.money import MONEY_CONTEXT, ZERO
from tradelab.store import models as m
from tradelab.store.reads import OE, A, F, O, P, R, check_choice

log = structlog.get_logger("tradelab.engine.bulkwrite")


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
        from tradelab.store.tx import _IDENTITY, _equity_driver_sql

        self._eq_sql, order = _equity_driver_sql(dialect)
        self._eq_order = None if order == _IDENTITY else order

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
    curve the cash, a zero position value and the drawdown repeat for long stretches.
    """

    def __init__(self, dialect: Any) -> None:
        from tradelab.store.tx import equity_bind_processors

        self.procs = equity_bind_processors(dialect)
        self._memo: dict[Decimal, Any] = {}
        self._at = self.procs[2]
        if self._at is not None and all(_sqlite_utc_text(t) == self._at(t) for t in _PROBES):
            self._at = _at_text(self._at)

    def rows(self, account_id: int, run_id: int | None, peak: Decimal,
             snaps: Sequence[tuple[datetime, Decimal, Decimal, Decimal]]
             ) -> tuple[list[tuple[Any, ...]], Decimal]:
        aid_p, run_p, amount_p = self.procs[0], self.procs[1], self.procs[3]
        at_p = self._at
        aid = aid_p(account_id) if aid_p is not None else account_id
        run = run_p(run_id) if run_p is not None and run_id is not None else run_id
        memo = self._memo
        if len(memo) > 4096:  # distinct equities accumulate while a position is open
            memo.clear()

        def bound(x: Decimal) -> Any:
            # Equal Decimals (1.0, 1.00, -0) quantize to the same 10-place value, so the
            # memo can key on the value. All amount columns share one type (Amount).
            out = memo.get(x)
            if out is None:
                out = memo[x] = amount_p(x) if amount_p is not None else x
            return out

        rows = []
        last: tuple[Decimal, Decimal] | None = None  # (equity, peak) of the previous row
        dd = ZERO
        for at, cash, pv, equity in snaps:
            if equity > peak:
                peak = equity
            if last is None or last[0] != equity or last[1] is not peak:  # flat: same as before
                dd = MONEY_CONTEXT.divide(peak - equity, peak) if peak > 0 else ZERO
                last = (equity, peak)
            rows.append((aid, run, at_p(at) if at_p is not None else at, bound(cash), bound(pv),
                         bound(equity), bound(dd)))
        return rows, peak


# The bar times of a replay or a live feed are aware UTC datetimes. The UTCDateTime
# processor spends ~3 µs on one (to_utc, replace, SQLite's %-dict formatting) to
# produce the text below; this produces the same text in ~0.5 µs. It is used only
# when it agrees with the real processor on the probes (a store configured with
# another storage format keeps the processor), and only for tzinfo=UTC values:
# anything else (other zones, naive times, which must be refused) goes to it.
_PROBES = (datetime(2020, 1, 2, 21, 0, tzinfo=UTC), datetime(1999, 12, 31, 23, 59, 59, 123456, tzinfo=UTC),
           datetime(987, 6, 5, 4, 3, 2, 1, tzinfo=UTC))


def _sqlite_utc_text(t: datetime) -> str:
    return t.replace(tzinfo=None).isoformat(" ", "microseconds")


def _at_text(processor: Any) -> Any:
    def at(t: datetime) -> Any:
        if type(t) is datetime and t.tzinfo is UTC:
            return t.replace(tzinfo=None).isoformat(" ", "microseconds")
        return processor(t)

    return at
