"""The paper broker: simulated fills under the shared execution convention.

Market orders fill like research (:mod:`tradelab.execution`): with
``fill="next_open"`` at the open of the first bar *after* the bar the order
was decided on, with ``fill="close"`` at that bar's close. An entry without a
quantity is sized at fill time with :meth:`Execution.entry_fill` on the cash
the account holds then, exactly as vectorbt sizes it. Limit orders fill when a
bar trades through the limit (at the limit, or the open if it gapped through),
optionally only up to a fraction of the bar's volume; stop orders trigger on
the bar's range and fill at the stop (or the open after a gap) plus slippage.
``day`` orders expire at the close of their first eligible bar; ``gtc`` stay.

Shorts: a sell without a quantity is a short entry (or, while long, a
reversal) sized at fill time with :meth:`Execution.short_entry_fill` on the free
cash (cash less twice the short positions' entry value, vectorbt's
``free_cash``), a buy without a quantity while short is a reversal to long;
both need ``allow_short``.

Declared exits (stop-loss, take-profit, trailing) are **emulated**: the engine
decides with :func:`tradelab.strategy.exits.apply_exits` whether and at which
price a stop fills in a bar, and hands this venue a stop order whose
``stop_price`` is that price, decided on (``created_at``) the bar being worked:
the engine places it before the bar's open phase, which no other order can be
(an order decided on a bar is placed after that bar's open phase). Such an
order fills in that open phase at exactly that price plus slippage; later bars
work it as an ordinary stop (a resumed run). One function decides the price for
research and the engine alike; native stop orders here would be a second
implementation of the same intrabar rules.

Borrow fee (``Execution.borrow_fee`` > 0): a short accrues
:meth:`Execution.borrow_charge` over each interval from a bar's close it was held
at (its units, that close) to the next bar of its symbol, added in float in bar
order at the next bar's open phase, before anything fills, exactly as research
sums it (:mod:`tradelab.research.borrow`); the next fill that buys while short (a
cover or a reversal) carries the whole accrual (a partial cover: the share of the units
it buys back, the rest staying accrued) as an extra fixed fee
(:meth:`Execution.with_extra_fee`), so the fee is on the fill in the store and a
restart rebuilds the book from fills. A real venue bills borrow itself: only this
simulated venue charges it.

The broker keeps its own ledger (cash, positions), like a venue would; after a
restart :meth:`PaperBroker.restore` rebuilds it and the open orders from
the store, which is how reconciliation works for a simulated venue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from tradelab.execution import Execution
from tradelab.money import MONEY_CONTEXT, QUANTUM, ZERO, book, to_decimal
from tradelab.orders.brokers import BrokerRejectedError, BrokerUpdate, OrderReport, VenueBalance
from tradelab.orders.model import Fill, Order


@dataclass(slots=True)
class _Working:
    order: Order          # the broker's own copy
    filled: Decimal
    fills: int
    triggered: bool       # stop orders: has the stop been hit
    open: bool = True
    status: str = "accepted"   # as a venue would report it (OrderReport.status)
    notional: Decimal = ZERO   # sum of quantity x price filled (the average price's numerator)
    reason: str = ""


class PaperBroker:
    """Simulated venue.

    Parameters
    ----------
    execution
        The convention (fill bar, fees, slippage, sizing, whole/fractional units).
    cash
        Starting cash of the account at the venue.
    symbols
        Tradable symbols; ``None`` accepts any symbol. Others are rejected.
    volume_fraction
        If set, limit orders fill at most this fraction of a bar's volume per bar
        (partial fills); ``None`` fills them completely.
    allow_short
        Whether sells beyond the position are accepted.
    """

    name = "paper"
    #: Fills are a pure function of bars and committed state: the engine works this
    #: venue's orders against each bar, and a resume rebuilds it from the store.
    simulated = True

    def __init__(self, execution: Execution, cash: Decimal | float = 0.0,
                 symbols: set[str] | None = None, volume_fraction: float | None = None,
                 allow_short: bool = False) -> None:
        self.execution = execution
        self.cash = to_decimal(cash or execution.cash)
        self.positions_held: dict[str, Decimal] = {}
        self.symbols = set(symbols) if symbols is not None else None
        self.volume_fraction = volume_fraction
        self.allow_short = allow_short
        self._orders: dict[str, _Working] = {}
        self._open: dict[str, _Working] = {}
        #: Entry value of each short position (vectorbt's ``debt``): quantity x fill price.
        self.debt: dict[str, Decimal] = {}
        self.submissions = 0  # accepted submissions, duplicates excluded (tests count these)
        #: Borrow fee accrued by each short since its entry or last cover (float, see above).
        self.borrow_accrued: dict[str, float] = {}
        #: Borrow fees charged on covers so far (every symbol; a resume rebuilds it).
        self.borrow_paid = 0.0
        #: Each short at its symbol's last close: (bar time, close, units short).
        self._short_marks: dict[str, tuple[datetime, float, float]] = {}

    # -- Broker protocol ------------------------------------------------------------
    def submit(self, order: Order) -> str:
        """Accept an order; a client id seen before returns the same broker id (dedupe)."""
        known = self._orders.get(order.client_order_id)
        if known is not None:
            return known.order.broker_order_id
        if self.symbols is not None and order.symbol not in self.symbols:
            raise BrokerRejectedError(f"unknown symbol {order.symbol!r}; tradable: "
                                      f"{', '.join(sorted(self.symbols))}")
        if order.order_type not in ("market", "limit", "stop"):
            raise BrokerRejectedError(f"unsupported order type {order.order_type!r}")
        if order.order_type == "limit" and order.limit_price is None:
            raise BrokerRejectedError("limit order without limit_price")
        if order.order_type == "stop" and order.stop_price is None:
            raise BrokerRejectedError("stop order without stop_price")
        if order.quantity is None and order.side != "buy" and not self.allow_short:
            raise BrokerRejectedError(f"short selling is not enabled at this venue: sell "
                                      f"{order.symbol} without a quantity")
        copy = order.snapshot()
        copy.broker_order_id = "paper-" + order.client_order_id
        work = _Working(copy, ZERO, 0, False)
        self._orders[order.client_order_id] = self._open[order.client_order_id] = work
        self.submissions += 1
        return copy.broker_order_id

    def cancel(self, client_order_id: str) -> bool:
        """Cancel an open order; False when it is not open (filled, unknown)."""
        work = self._open.pop(client_order_id, None)
        if work is None:
            return False
        work.open, work.status = False, "cancelled"
        return True

    def query(self, client_order_id: str) -> OrderReport | None:
        """The venue's view of one order; ``None`` for an id it never accepted."""
        work = self._orders.get(client_order_id)
        return None if work is None else self._report(work)

    def open_orders(self) -> list[OrderReport]:
        return [self._report(w) for w in self._open.values()]

    def balances(self) -> dict[str, VenueBalance]:
        return {"cash": VenueBalance("cash", self.cash)}

    def positions(self) -> dict[str, Decimal]:
        return {k: v for k, v in self.positions_held.items() if v}

    def rules(self, symbol: str) -> None:
        """No lot or tick rules: the execution convention sizes (whole or fractional units)."""
        return None

    def _report(self, work: _Working) -> OrderReport:
        o = work.order
        status = work.status
        if status == "accepted" and work.filled > 0:
            status = "partially_filled"
        avg = MONEY_CONTEXT.divide(work.notional, work.filled) if work.filled else ZERO
        return OrderReport(o.client_order_id, o.broker_order_id, status, o.symbol, o.side,
                           o.quantity if o.quantity is not None else work.filled, work.filled, avg,
                           o.updated_at or o.created_at, sequence=work.fills, reason=work.reason)

    def poll(self) -> list[BrokerUpdate]:
        """A simulated venue reports through :meth:`on_bar`; nothing arrives in between."""
        return []

    # -- simulation -----------------------------------------------------------------
    def on_bar(self, symbol: str, at: datetime, o: float, h: float, low: float, c: float,
               v: float, phase: str) -> list[BrokerUpdate]:
        """Work the open orders of ``symbol`` against a bar.

        ``phase="open"`` runs when the bar arrives, before strategies act (next-open
        market fills, limit and stop orders against the bar's range); ``"close"``
        runs after them (close fills, day-order expiry).
        """
        if not self.execution.borrow_fee:
            return self._work(symbol, at, o, h, low, c, v, phase)
        if phase == "open":
            self._accrue_borrow(symbol, at)
        out = self._work(symbol, at, o, h, low, c, v, phase)
        if phase != "open":
            self._mark_short(symbol, at, c)
        return out

    def _accrue_borrow(self, symbol: str, at: datetime) -> None:
        """Add the interval from the last close a short was held at to this bar."""
        mark = self._short_marks.pop(symbol, None)
        if mark is not None:
            since, close, units = mark
            self.borrow_accrued[symbol] = self.borrow_accrued.get(symbol, 0.0) + \
                self.execution.borrow_charge((at - since).total_seconds(), units, close)

    def _mark_short(self, symbol: str, at: datetime, close: float) -> None:
        held = self.positions_held.get(symbol, ZERO)
        if held < 0:
            self._short_marks[symbol] = (at, close, float(-held))
        else:
            self._short_marks.pop(symbol, None)

    def _work(self, symbol: str, at: datetime, o: float, h: float, low: float, c: float,
              v: float, phase: str) -> list[BrokerUpdate]:
        if not self._open:
            return []
        out: list[BrokerUpdate] = []
        fill_at_close = self.execution.fill == "close"
        for cid, work in list(self._open.items()):
            order = work.order
            if order.symbol != symbol:
                continue
            if phase == "open":
                if order.order_type == "stop" and order.created_at == at:
                    # an emulated declared exit: at the price exits.apply_exits gave
                    out.append(self._fill(work, float(order.stop_price), at, slip=True))  # type: ignore[arg-type]
                    continue
                if order.created_at >= at:
                    continue
                if order.order_type == "market":
                    if not fill_at_close:
                        out.append(self._fill(work, o, at, slip=True))
                elif order.order_type == "limit":
                    self._work_limit(work, at, o, h, low, v, out)
                else:
                    self._work_stop(work, at, o, h, low, out)
            else:
                if order.order_type == "market" and fill_at_close and order.created_at <= at:
                    out.append(self._fill(work, c, at, slip=True))
                elif (work.open and order.time_in_force == "day" and order.created_at < at):
                    self._close(cid, "expired", "day order not filled by the close")
                    out.append(BrokerUpdate("expire", cid, reason="day order not filled by the close"))
        return out

    def _work_limit(self, work: _Working, at: datetime, o: float, h: float, low: float, v: float,
                    out: list[BrokerUpdate]) -> None:
        limit = float(work.order.limit_price)  # type: ignore[arg-type]
        buy = work.order.side == "buy"
        if (buy and low <= limit) or (not buy and h >= limit):
            price = min(o, limit) if buy else max(o, limit)  # a gap through the limit fills at the open
            cap = None
            if self.volume_fraction is not None:
                cap = to_decimal(v * self.volume_fraction)
                if not self.execution.fractional:
                    cap = cap.to_integral_value(rounding=ROUND_FLOOR)
                if cap <= 0:
                    return
            out.append(self._fill(work, price, at, slip=False, cap=cap))

    def _work_stop(self, work: _Working, at: datetime, o: float, h: float, low: float,
                   out: list[BrokerUpdate]) -> None:
        stop = float(work.order.stop_price)  # type: ignore[arg-type]
        buy = work.order.side == "buy"
        if (buy and h >= stop) or (not buy and low <= stop):
            price = max(o, stop) if buy else min(o, stop)
            out.append(self._fill(work, price, at, slip=True))

    def _close(self, cid: str, status: str = "rejected", reason: str = "") -> None:
        work = self._open.pop(cid, None)
        if work is not None:
            work.open, work.status, work.reason = False, status, reason

    def _fill(self, work: _Working, raw: float, at: datetime, slip: bool,
              cap: Decimal | None = None) -> BrokerUpdate:
        order, ex, ctx = work.order, self.execution, MONEY_CONTEXT
        buy = order.side == "buy"
        held = self.positions_held.get(order.symbol, ZERO)
        borrow = self.borrow_accrued.get(order.symbol, 0.0) if buy and held < 0 else 0.0
        ex = ex.with_extra_fee(borrow)  # a buy while short carries the accrued borrow fee
        if order.quantity is None:   # an entry sized now, like vectorbt
            if buy:  # long entry, or a reversal covering the short held
                qty_f, price_f, fees_f = ex.entry_fill(float(self.cash), raw, plus=float(max(-held, ZERO)))
            else:
                qty_f, price_f, fees_f = ex.short_entry_fill(float(self.free_cash()), raw,
                                                             plus=float(max(held, ZERO)))
            if qty_f <= 0:
                self._close(order.client_order_id)
                return BrokerUpdate("reject", order.client_order_id,
                                    reason=f"insufficient cash: {self.cash} does not "
                                           f"{'buy' if buy else 'sell short'} one unit "
                                           f"of {order.symbol} at {raw}")
            # Quantity rounds down so booking never spends more than the cash held.
            qty = to_decimal(qty_f).quantize(QUANTUM, rounding=ROUND_FLOOR)
            price, fees = book(price_f), book(fees_f)
        else:
            qty = ctx.subtract(order.quantity, work.filled)
            if cap is not None:
                qty = min(qty, cap)
            if borrow and qty < -held:  # a partial cover: the share of the units bought back
                borrow = borrow * (float(qty) / float(-held))  # research.borrow.cover_charge
                ex = self.execution.with_extra_fee(borrow)
            price_f = ex.fill_price(raw, buy) if slip else raw
            price = book(price_f)
            fees = book(ex.order_fees(float(qty), price_f))
            if buy and ctx.add(ctx.multiply(qty, price), fees) > self.cash:
                self._close(order.client_order_id)
                return BrokerUpdate("reject", order.client_order_id,
                                    reason=f"insufficient cash: {qty} {order.symbol} at {price} plus "
                                           f"fees {fees} exceeds cash {self.cash}")
            if not buy and not self.allow_short and qty > held:
                self._close(order.client_order_id)
                return BrokerUpdate("reject", order.client_order_id,
                                    reason=f"insufficient position: sell {qty} {order.symbol}, hold {held}")
        if borrow:
            left = self.borrow_accrued.pop(order.symbol, 0.0) - borrow
            if left:  # a partial cover: the rest stays on the units still short
                self.borrow_accrued[order.symbol] = left
            self.borrow_paid += borrow
        signed = qty if buy else -qty
        self.cash = ctx.subtract(ctx.subtract(self.cash, ctx.multiply(signed, price)), fees)
        after = self.positions_held[order.symbol] = ctx.add(held, signed)
        if held < 0 or after < 0:
            self._book_debt(order.symbol, held, after, price)
        work.filled = ctx.add(work.filled, qty)
        work.notional = ctx.add(work.notional, ctx.multiply(qty, price))
        work.fills += 1
        if order.quantity is None or work.filled >= order.quantity:
            self._close(order.client_order_id, "filled")
        fill = Fill(f"{order.client_order_id}-{work.fills}", order.client_order_id, order.symbol,
                    order.side, qty, price, fees, at)
        return BrokerUpdate("fill", order.client_order_id, fill=fill)

    def free_cash(self) -> Decimal:
        """Cash not tied up by shorts: ``cash - 2 * debt`` (vectorbt's ``free_cash``)."""
        if not self.debt:
            return self.cash
        total = sum(self.debt.values(), ZERO)
        return MONEY_CONTEXT.subtract(self.cash, MONEY_CONTEXT.multiply(2, total))

    def _book_debt(self, symbol: str, held: Decimal, after: Decimal, price: Decimal) -> None:
        ctx = MONEY_CONTEXT
        debt = self.debt.get(symbol, ZERO)
        if held < 0:  # covered (part of) the short at its average entry price
            covered = min(-held, max(ctx.subtract(after, held), ZERO))
            debt = ctx.subtract(debt, ctx.divide(ctx.multiply(debt, covered), -held)) \
                if covered < -held else ZERO
        if after < 0:  # shorted more: at this fill's price
            added = -after if held >= 0 else max(ctx.subtract(held, after), ZERO)
            debt = ctx.add(debt, ctx.multiply(added, price))
        if after >= 0 or not debt:
            self.debt.pop(symbol, None)
        else:
            self.debt[symbol] = debt

    # -- recovery -------------------------------------------------------------------
    def rebuild_borrow(self, symbol: str, fills: list[Fill],
                       bars: Iterable[tuple[datetime, float]]) -> None:
        """After :meth:`restore`: the borrow fee an open short of ``symbol`` accrued so far,
        and what its covers were charged (added to :attr:`borrow_paid`).

        Replays :meth:`on_bar`'s accrual over the run's bars of ``symbol`` (time, close;
        through the last bar processed) and its fills (``fills``: the run's, in order; a
        buy while short is where the accrual was charged and restarted), so a resumed
        run charges the cover what an uninterrupted one would.
        """
        if not self.execution.borrow_fee:
            return
        by_bar: dict[float, list[Fill]] = {}  # keyed by POSIX time: store and feed types differ
        for f in fills:
            if f.symbol == symbol:
                by_bar.setdefault(f.at.timestamp(), []).append(f)
        held = ZERO
        self._short_marks.pop(symbol, None)
        self.borrow_accrued.pop(symbol, None)
        for at, close in bars:
            self._accrue_borrow(symbol, at)
            for f in by_bar.get(at.timestamp(), ()):
                if f.side == "buy" and held < 0:  # as _fill charged it
                    acc = self.borrow_accrued.pop(symbol, 0.0)
                    charge = acc if f.quantity >= -held else acc * (float(f.quantity) / float(-held))
                    self.borrow_paid += charge
                    if acc - charge:
                        self.borrow_accrued[symbol] = acc - charge
                held = MONEY_CONTEXT.add(held, f.quantity if f.side == "buy" else -f.quantity)
            self._short_marks.pop(symbol, None)
            if held < 0:
                self._short_marks[symbol] = (at, float(close), float(-held))

    def restore(self, cash: Decimal, positions: dict[str, Decimal], orders: list[Order]) -> None:
        """Rebuild the venue from the store: ledger plus the orders it had accepted."""
        self.cash = to_decimal(cash)
        self.positions_held = {k: to_decimal(v) for k, v in positions.items()}
        # The store keeps no entry prices here: a restored short's debt is unknown, so
        # free cash is the cash (it only matters for a second symbol's short entry).
        self.debt = {}
        self._orders, self._open = {}, {}
        for order in orders:
            copy = order.snapshot()
            copy.broker_order_id = copy.broker_order_id or "paper-" + order.client_order_id
            notional = sum((MONEY_CONTEXT.multiply(f.quantity, f.price) for f in order.fills), ZERO)
            work = _Working(copy, order.filled_quantity, len(order.fills), False, notional=notional)
            self._orders[order.client_order_id] = self._open[order.client_order_id] = work
