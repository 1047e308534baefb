"""The engine's reconciliation with a real venue: the venue is the truth.

:meth:`Reconciler.run` asks the venue about every order the book holds open,
books what it missed through the order manager (fills once, from cumulative
quantities), lists the venue's open orders the book does not hold, then compares
positions and cash. It **never sends or cancels an order**: a ``pending`` order
the venue has never seen is left to the order manager's resolve, a foreign order
is left alone, and a mismatch is reported (and, when the operator asked, the
venue's state adopted into the book).

Fills reach the portfolio the way every fill does: the order manager publishes
``OrderFilled``/``OrderPartiallyFilled`` and the engine's booking step applies
them. So call :meth:`Reconciler.run` from the engine's thread *between* bus
deliveries (at start, between bars), never from inside an event handler, where
those events would be queued until after the position comparison.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any

import structlog

from tradelab.bus import EventBus
from tradelab.events import OrderSubmitted, PositionChanged, RiskAlert
from tradelab.interfaces import Broker, Clock
from tradelab.money import MONEY_CONTEXT, ZERO
from tradelab.orders.manager import OrderManager
from tradelab.orders.model import IllegalTransitionError, Order, OrderState
from tradelab.portfolio import Portfolio, Position
from tradelab.reconcile.model import (
    Finding,
    Reconciliation,
    alert_key,
    amount,
    classify_venue_order,
    compare_cash,
    compare_positions,
)

log = structlog.get_logger("tradelab.reconcile")
S = OrderState
#: The strategy name an adopted venue order is booked under.
ADOPTED = "adopted"
RULE = "reconciliation"
HISTORY = 100


class Reconciler:
    """Compares one engine's book with its venue and books what the venue did.

    Parameters
    ----------
    broker
        The venue (any :class:`tradelab.interfaces.Broker`); only its read methods
        are called (``query``, ``open_orders``, ``positions``, ``balances``).
    orders
        The engine's order book; venue reports go through
        :meth:`~tradelab.orders.manager.OrderManager.apply_report`.
    portfolio
        The engine's positions and cash (fills reach it through the bus, see the module doc).
    bus
        Where ``PositionChanged`` (adoption; the store's recorder writes it) and the
        ``RiskAlert`` announcing findings (stored and notified like any alert) go.
    clock
        Stamps the reconciliation.
    account
        The account's name (events and alerts).
    venue
        The venue's name as stored and shown (default ``broker.name``).
    quote_asset
        The venue asset the book's cash is compared with (``"USDT"``, ``"USD"``, the
        paper broker's ``"cash"``); ``None`` skips the cash comparison.
    record
        Called with every :class:`Reconciliation` (a store-backed writer, see
        :func:`tradelab.reconcile.store_writer`); ``None``: not stored.
    notify
        Called with the ``RiskAlert`` when a run found something new, besides publishing
        it on ``bus``; pass it only when no notifier listens on the bus already.
    symbols
        The symbols this engine trades: a venue position elsewhere is reported as
        ``foreign_position`` and is no mismatch; ``None`` compares every symbol.

    Notes
    -----
    A venue that cannot be asked (``TransientBrokerError``, a timeout) makes
    :meth:`run` raise: what the venue said until then is booked, and nothing is
    stored for the interrupted run. The engine refuses to start on it, and carries
    on (asking again next period) while running.
    """

    def __init__(self, broker: Broker, orders: OrderManager, portfolio: Portfolio,
                 bus: EventBus | None, clock: Clock, *, account: str, venue: str | None = None,
                 quote_asset: str | None = None,
                 record: Callable[[Reconciliation], Any] | None = None,
                 notify: Callable[[RiskAlert], Any] | None = None,
                 symbols: Collection[str] | None = None) -> None:
        self.broker, self.orders, self.portfolio = broker, orders, portfolio
        self.bus, self.clock, self.account = bus, clock, account
        self.venue = venue or str(getattr(broker, "name", "venue"))
        self.quote_asset, self.record, self.notify = quote_asset, record, notify
        self.symbols = frozenset(symbols) if symbols is not None else None
        #: The latest reconciliations, oldest first (bounded: a live run reconciles every minute).
        self.history: deque[Reconciliation] = deque(maxlen=HISTORY)
        self._announced: frozenset[tuple[Any, ...]] = frozenset()

    # -- the run --------------------------------------------------------------------
    def run(self, trigger: str, *, adopt: bool = False) -> Reconciliation:
        """Reconcile the book with the venue once.

        Parameters
        ----------
        trigger
            ``start``, ``periodic`` or ``manual`` (stored with the outcome).
        adopt
            Take the venue's state where the book differs: venue orders with our
            client ids join the book (strategy ``adopted``) and positions take the
            venue's quantity. The operator's choice (``tradelab live --adopt``).

        Returns
        -------
        Reconciliation
            ``ok`` is False when a position still differs after booking (and not adopted).
        """
        at = self.clock.now()
        findings: list[Finding] = []
        fills_before = self._fill_count()
        queried = self._catch_up_orders(findings)
        adopted = self._venue_orders(queried, findings, adopt)
        positions = self._compare_positions()
        if any(f.kind == "position_mismatch" for f in positions):
            # A fill may have landed between the order queries and the positions: ask
            # once more before calling it a mismatch (and before adopting anything).
            self._catch_up_orders(findings)
            positions = self._compare_positions()
        mismatched = False
        for f in positions:
            if f.kind == "position_mismatch" and adopt:
                f = self._adopt_position(f)
                adopted = True
            elif f.kind == "position_mismatch":
                mismatched = True
            findings.append(f)
        findings += compare_cash(self.portfolio.cash, self.broker.balances(), self.quote_asset)
        outcome = Reconciliation(at, self.venue, trigger, tuple(dict.fromkeys(findings)),
                                 self._fill_count() - fills_before, adopted, not mismatched)
        self.history.append(outcome)
        log.info("reconciled", venue=self.venue, trigger=trigger, ok=outcome.ok,
                 findings=len(findings), booked_fills=outcome.booked_fills, adopted=adopted)
        if self.record is not None:
            self.record(outcome)
        self._announce(outcome)
        return outcome

    # -- orders ---------------------------------------------------------------------
    def _fill_count(self) -> int:
        return sum(len(o.fills) for o in self.orders.orders.values())

    def _catch_up_orders(self, findings: list[Finding]) -> set[str]:
        """Ask the venue about every order the book holds open; book what it says."""
        asked: set[str] = set()
        for order in [o for o in self.orders.orders.values() if o.is_open]:
            cid = order.client_order_id
            asked.add(cid)
            state, filled = order.state, order.filled_quantity
            report = self.broker.query(cid)
            if report is None:
                findings.append(Finding("not_at_venue", order.symbol, cid, state.value, None,
                                        _unseen(state)))
                continue
            try:
                self.orders.apply_report(report)
            except IllegalTransitionError as exc:  # the venue's word the state machine refuses
                findings.append(Finding("order_state", order.symbol, cid, state.value, report.status,
                                        f"venue report not applied: {exc}"))
                continue
            if order.filled_quantity > filled:
                delta = MONEY_CONTEXT.subtract(order.filled_quantity, filled)
                findings.append(Finding(
                    "missed_fill", order.symbol, cid, amount(filled), amount(report.cum_quantity),
                    f"booked {amount(delta)} {order.symbol} {order.side} the venue filled while the "
                    f"book did not know (avg {amount(report.avg_price)})"))
            if state is S.PENDING:
                findings.append(Finding("pending_resolved", order.symbol, cid, state.value, report.status,
                                        f"submit answer was lost; the venue has it: now {order.state.value}"))
            elif order.state is not state:
                findings.append(Finding("order_state", order.symbol, cid, state.value, report.status,
                                        f"{state.value} -> {order.state.value} as the venue reports"))
        return asked

    def _venue_orders(self, asked: set[str], findings: list[Finding], adopt: bool) -> bool:
        """The venue's open orders the book does not hold open; True if one was adopted."""
        adopted = False
        for report in self.broker.open_orders():
            cid = report.client_order_id
            if cid in asked:
                continue
            known = self.orders.orders.get(cid) if cid else None
            if known is not None:  # closed here, still working there
                findings.append(Finding("order_state", report.symbol, cid, known.state.value,
                                        report.status, f"the book holds it as {known.state.value}; "
                                        "the venue still works it"))
                continue
            f = classify_venue_order(report)
            if f.kind == "unknown_ours" and adopt:
                self._adopt_order(report)
                adopted = True
                f = Finding(f.kind, f.symbol, f.client_order_id, None, f.venue,
                            f"adopted into the book as strategy {ADOPTED!r}: {f.detail}")
            findings.append(f)
        return adopted

    def _adopt_order(self, report: Any) -> None:
        # Not OrderManager.add: its OrderRequested goes to risk, and an approved order
        # is sent. The venue holds this one already: it enters the book as submitted
        # (the store's recorder writes a creation row for an event without from_state),
        # then the venue's report books what filled so far.
        now = self.clock.now()
        order = Order(report.client_order_id, self.account, ADOPTED, report.symbol, report.side,
                      report.quantity, report.venue_time, broker_order_id=report.venue_order_id,
                      state=S.SUBMITTED, updated_at=now, reason="adopted from the venue")
        self.orders.orders[order.client_order_id] = order
        if self.bus is not None:
            self.bus.publish(OrderSubmitted(now, order.client_order_id, None, S.SUBMITTED.value,
                                            "adopted from the venue", order.snapshot()))
        self.orders.apply_report(report)

    # -- positions ------------------------------------------------------------------
    def _compare_positions(self) -> list[Finding]:
        book = {s: p.quantity for s, p in self.portfolio.positions.items() if p.quantity}
        return compare_positions(book, self.broker.positions(), self.symbols)

    def _adopt_position(self, f: Finding) -> Finding:
        """Take the venue's quantity: the average price stays when the side does, else the
        last mark is the new basis (the venue does not tell what it was bought at)."""
        sym = str(f.symbol)
        venue_qty = Decimal(str(f.venue))
        pos = self.portfolio.positions.get(sym)
        if pos is None:
            pos = self.portfolio.positions[sym] = Position(sym)
        same_side = pos.quantity and venue_qty and (pos.quantity > 0) == (venue_qty > 0)
        basis = pos.avg_price if same_side else pos.last_price
        pos.quantity = venue_qty
        pos.cost = MONEY_CONTEXT.multiply(venue_qty, basis)
        if self.bus is not None:
            self.bus.publish(PositionChanged(self.clock.now(), self.account, sym, venue_qty,
                                             pos.avg_price, pos.realized_pnl, self.portfolio.cash))
        how = ("now flat" if not venue_qty else "average price kept" if same_side else
               f"basis {amount(basis)} (last mark)" if basis != ZERO else "basis 0 (no mark known)")
        return Finding(f.kind, sym, None, f.store, f.venue,
                       f"adopted the venue's {f.venue} {sym} (book had {f.store}; {how})")

    # -- announcing -----------------------------------------------------------------
    def _announce(self, outcome: Reconciliation) -> None:
        """A ``RiskAlert`` when the run found something not announced by the last one."""
        keys = frozenset(alert_key(f) for f in outcome.findings)
        new = keys - self._announced
        self._announced = keys
        if not new:
            return
        severity = "warning" if outcome.ok else "critical"
        lines = [f.detail for f in outcome.findings if alert_key(f) in new][:10]
        message = outcome.summary() + (": " + "; ".join(lines) if lines else "")
        alert = RiskAlert(outcome.at, self.account, RULE, message, severity, None, None)
        if self.bus is not None:
            self.bus.publish(alert)
        if self.notify is not None:
            self.notify(alert)


def _unseen(state: OrderState) -> str:
    if state is S.PENDING:
        return "submit answer was lost and the venue never saw the order: the order manager sends it again"
    if state is S.NEW:
        return "not sent yet: the order manager sends it"
    return f"the book holds it as {state.value}; the venue has no order with this id"


__all__ = ["ADOPTED", "Reconciler"]
