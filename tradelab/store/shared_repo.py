"""Reads and writes of the shared account view, inside one locked transaction.

Every function here takes a :class:`~tradelab.store.tx.Transaction` whose
caller has already called :meth:`~tradelab.store.tx.Transaction.lock_account`
(PostgreSQL: ``SELECT ... FOR UPDATE`` on the account row; SQLite: the
transaction holds the database's write lock from its ``BEGIN IMMEDIATE``).
That lock is what makes "read the account, decide, write" atomic across
engine processes: a second engine's check waits until the first one's order
row (its reservation) or fills are committed, and then sees them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, select, update

from tradelab.money import MONEY_CONTEXT, ZERO
from tradelab.portfolio import Portfolio
from tradelab.store import models as m
from tradelab.store import shared_models as sm
from tradelab.store.reads import KS, A, O, P
from tradelab.store.types import to_amount, to_utc

MK = cast(Table, sm.Mark.__table__)
AR = cast(Table, sm.AccountRisk.__table__)
_CTX = MONEY_CONTEXT


@dataclass(frozen=True)
class AccountView:
    """The account as every engine on it sees it, at one locked instant.

    ``pending`` holds, per symbol, the unfilled quantity of open buy and sell
    orders: an approved order is a reservation until it fills or ends, so a
    second engine counts it before it has traded.
    """

    account_id: int
    cash: Decimal
    positions: Mapping[str, Decimal]
    avg_prices: Mapping[str, Decimal]
    pending: Mapping[str, tuple[Decimal, Decimal]]
    marks: Mapping[str, Decimal]
    day: str | None = None
    day_start_equity: Decimal | None = None
    peak_equity: Decimal | None = None
    last_equity: Decimal | None = None
    kill: tuple[bool, str, str] = (False, "", "")
    symbols: frozenset[str] = field(default_factory=frozenset)

    def mark(self, symbol: str) -> Decimal:
        """The symbol's last shared price (its average entry price if never marked)."""
        price = self.marks.get(symbol)
        return price if price is not None else self.avg_prices.get(symbol, ZERO)

    def worst_position(self, symbol: str) -> Decimal:
        """The signed position if the open orders that enlarge it fill and the others do not."""
        held = self.positions.get(symbol, ZERO)
        buys, sells = self.pending.get(symbol, (ZERO, ZERO))
        up, down = _CTX.add(held, buys), _CTX.subtract(held, sells)
        return up if abs(up) >= abs(down) else down

    @property
    def equity(self) -> Decimal:
        """Cash plus every position at its mark."""
        total = self.cash
        for sym, qty in self.positions.items():
            if qty:
                total = _CTX.add(total, _CTX.multiply(qty, self.mark(sym)))
        return total

    @property
    def gross_exposure(self) -> Decimal:
        """Σ |worst-case position| × mark over every symbol held or on order."""
        total = ZERO
        for sym in self.symbols:
            qty = self.worst_position(sym)
            if qty:
                total = _CTX.add(total, abs(_CTX.multiply(qty, self.mark(sym))))
        return total


def read_view(tx: Any, account_id: int) -> AccountView:
    """Everything the account-wide rules need, read inside ``tx``."""
    conn = tx._conn
    cash = conn.execute(select(A.c.cash).where(A.c.id == account_id)).scalar_one()
    positions, avg = {}, {}
    for sym, qty, price in conn.execute(select(P.c.symbol, P.c.quantity, P.c.avg_price)
                                        .where(P.c.account_id == account_id)):
        positions[sym], avg[sym] = qty, price
    pending: dict[str, tuple[Decimal, Decimal]] = {}
    rows = conn.execute(select(O.c.symbol, O.c.side, O.c.quantity, O.c.filled_quantity)
                        .where(O.c.account_id == account_id,
                               O.c.status.in_(m.OPEN_ORDER_STATUSES)))
    for sym, side, qty, filled in rows:
        left = _CTX.subtract(qty, filled or ZERO)
        buys, sells = pending.get(sym, (ZERO, ZERO))
        pending[sym] = (_CTX.add(buys, left), sells) if side == "buy" else (buys, _CTX.add(sells, left))
    marks = dict(conn.execute(select(MK.c.symbol, MK.c.price).where(MK.c.account_id == account_id)).all())
    risk = conn.execute(select(AR.c.day, AR.c.day_start_equity, AR.c.peak_equity, AR.c.last_equity)
                        .where(AR.c.account_id == account_id)).one_or_none()
    ks = conn.execute(select(KS.c.engaged, KS.c.reason, KS.c.changed_by)
                      .where(KS.c.account_id == account_id)).one_or_none()
    day, day_start, peak, last = tuple(risk) if risk is not None else (None, None, None, None)
    return AccountView(
        account_id, cash, positions, avg, pending, marks, day, day_start, peak, last,
        kill=(bool(ks[0]), ks[1] or "", ks[2] or "") if ks is not None else (False, "", ""),
        symbols=frozenset(positions) | frozenset(pending))


def set_marks(tx: Any, account_id: int, prices: Mapping[str, Decimal], at: datetime) -> None:
    """Upsert the latest price of each symbol in ``prices``."""
    if not prices:
        return
    ins = tx._insert(MK)
    stmt = ins.on_conflict_do_update(index_elements=["account_id", "symbol"],
                                     set_={"price": ins.excluded.price, "at": ins.excluded.at})
    tx._conn.execute(stmt, [{"account_id": account_id, "symbol": s, "price": to_amount(p),
                             "at": to_utc(at)} for s, p in prices.items()])


def roll_risk_state(tx: Any, view: AccountView, day: date, equity: Decimal,
                    at: datetime) -> tuple[Decimal, Decimal]:
    """Advance the account's day-start, peak and last equity to ``equity`` at ``at``.

    A new (UTC) trading day opens at the last equity seen before it (the previous
    close), so the day's first move counts against its loss limit; the peak only
    ever rises. Written back in ``tx``; returns ``(day_start, peak)``.
    """
    key = day.isoformat()
    if view.day == key and view.day_start_equity is not None:
        start = view.day_start_equity
    else:
        start = view.last_equity if view.last_equity is not None else equity
    peak = equity if view.peak_equity is None or equity > view.peak_equity else view.peak_equity
    if (key, start, peak, equity) != (view.day, view.day_start_equity, view.peak_equity,
                                      view.last_equity):
        values = {"day": key, "day_start_equity": to_amount(start), "peak_equity": to_amount(peak),
                  "last_equity": to_amount(equity), "at": to_utc(at)}
        ins = tx._insert(AR)
        tx._conn.execute(ins.values(account_id=view.account_id, **values)
                         .on_conflict_do_update(index_elements=["account_id"], set_=values))
    return start, peak


def book_fills(tx: Any, account_id: int, fills: Iterable[tuple[str, str, Decimal, Decimal, Decimal]]
               ) -> None:
    """Apply ``(symbol, side, quantity, price, fees)`` fills to the account's cash and positions.

    Shared accounts cannot be written as absolute values from one engine's
    memory (the last writer would erase the others' trades): each fill is
    applied to the *stored* position and cash, under the account lock, with the
    same exact arithmetic as :class:`~tradelab.portfolio.Portfolio`.
    """
    fills = list(fills)
    if not fills:
        return
    conn = tx._conn
    symbols = {f[0] for f in fills}
    cash = conn.execute(select(A.c.cash).where(A.c.id == account_id)).scalar_one()
    book = Portfolio(cash)
    book.restore(cash, [dict(r._mapping) for r in conn.execute(
        select(P.c.symbol, P.c.quantity, P.c.avg_price, P.c.realized_pnl)
        .where(P.c.account_id == account_id, P.c.symbol.in_(symbols)))])
    for sym, side, qty, price, fees in fills:
        book.apply_fill(sym, side, qty, price, fees)
    for sym in symbols:
        pos = book.positions[sym]
        tx.set_position(account_id, sym, pos.quantity, pos.avg_price, pos.realized_pnl)
    conn.execute(update(A).where(A.c.id == account_id).values(cash=to_amount(book.cash)))


__all__ = ["AccountView", "book_fills", "read_view", "roll_risk_state", "set_marks"]
