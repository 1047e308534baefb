"""The OrderManager: owns orders, drives the state machine, talks to the broker.

* Client order ids are deterministic (:func:`tradelab.orders.model.client_order_id`);
  :meth:`OrderManager.add` ignores an id it already holds, so a restarted engine
  that regenerates an order does not create it twice.
* A submission whose answer is lost (``TransientBrokerError``, a timeout) makes
  the order ``pending``: the venue may hold it. It is resolved by asking the venue
  (:meth:`OrderManager.resolve`, a query by client id, retried with back-off);
  only when the venue says it has never seen the id is it sent again, with the
  same id. It is never rejected without the venue saying so.
* A real venue's reports (:class:`~tradelab.orders.brokers.OrderReport`) are
  booked from their *cumulative* filled quantity (:meth:`OrderManager.apply_report`):
  a duplicate or late report adds nothing, a missed one is caught up by the next,
  and a cancel that races a fill ends with the fill booked.
* Every transition publishes an event (``OrderRequested``, ``OrderSubmitted``,
  ``OrderFilled``, ...) carrying ``from_state``/``to_state``; the store writer
  turns each into an ``order_events`` row.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from tradelab.bus import EventBus
from tradelab.events import (
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderPending,
    OrderRejected,
    OrderRequested,
    OrderSubmitted,
)
from tradelab.interfaces import Broker, Clock
from tradelab.money import MONEY_CONTEXT, QUANTUM, ZERO
from tradelab.orders.brokers import BrokerRejectedError, BrokerUpdate, OrderReport, TransientBrokerError
from tradelab.orders.model import Fill, Order, OrderState

log = structlog.get_logger("tradelab.orders")
S = OrderState


class OrderManager:
    """Order book of one engine.

    Parameters
    ----------
    broker
        Where orders go.
    bus
        Where lifecycle events are published.
    clock
        Time stamps of transitions.
    attempts, max_wait
        Tenacity policy for transient broker errors: at most ``attempts`` tries,
        exponential back-off capped at ``max_wait`` seconds (0 in tests).
    """

    def __init__(self, broker: Broker, bus: EventBus, clock: Clock, attempts: int = 5,
                 max_wait: float = 2.0, timer: Callable[[], float] = time.perf_counter) -> None:
        self.broker, self.bus, self.clock = broker, bus, clock
        self.attempts, self.max_wait, self.timer = attempts, max_wait, timer
        self.orders: dict[str, Order] = {}
        self.retries = 0
        #: Reports about orders this book does not hold (reconciliation looks at them).
        self.unknown_reports = 0
        #: Pending orders (lost acknowledgements) the venue's word resolved.
        self.resolved = 0
        #: A real venue (not simulated): cancels wait for the venue's word, entries are sized.
        self.live = not getattr(broker, "simulated", False)

    # -- lifecycle ------------------------------------------------------------------
    def add(self, order: Order) -> bool:
        """Register a new order (state ``new``); False if the client id is already known."""
        if order.client_order_id in self.orders:
            return False
        self.orders[order.client_order_id] = order
        self.bus.publish(OrderRequested(self.clock.now(), order.client_order_id, None, S.NEW.value,
                                        "", order.snapshot()))
        return True

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open]

    def _move(self, order: Order, to: OrderState, reason: str = "") -> str:
        return order.transition(to, self.clock.now(), reason).value

    def reject(self, client_order_id: str, reason: str, by: str = "risk") -> None:
        order = self.orders[client_order_id]
        before = self._move(order, S.REJECTED, reason)
        self.bus.publish(OrderRejected(self.clock.now(), client_order_id, before, S.REJECTED.value,
                                       reason, order.snapshot(), by))

    def submit(self, client_order_id: str, started: float | None = None) -> bool:
        """Send a ``new`` order to the broker; True once the broker has it.

        Transient errors are retried on a simulated venue (it dedupes by client id).
        On a real venue a lost answer makes the order ``pending`` and
        :meth:`resolve` asks the venue what became of it.
        """
        order = self.orders[client_order_id]
        if order.state is S.PENDING:
            return self.resolve(client_order_id)
        if order.state is not S.NEW:
            return order.state is not S.REJECTED
        try:
            try:  # first attempt without tenacity: building a Retrying costs ~30 µs per order
                broker_id = self.broker.submit(order)
            except (TransientBrokerError, TimeoutError):
                if self.attempts <= 1 or self.live:
                    raise
                broker_id = self._retry_submit(order)
        except BrokerRejectedError as exc:
            self.reject(client_order_id, str(exc), by="broker")
            return False
        except (TransientBrokerError, TimeoutError) as exc:
            log.error("order_submit_failed", client_order_id=client_order_id,
                      attempts=1 if self.live else self.attempts, error=str(exc))
            if not self.live:
                return False
            self._pending(order, f"answer lost: {exc}")
            return self.resolve(client_order_id)
        self._submitted(order, broker_id, started)
        return True

    def _submitted(self, order: Order, broker_id: str, started: float | None) -> None:
        if broker_id:
            order.broker_order_id = broker_id
        before = self._move(order, S.SUBMITTED)
        latency = self.timer() - started if started is not None else 0.0
        self.bus.publish(OrderSubmitted(self.clock.now(), order.client_order_id, before,
                                        S.SUBMITTED.value, "", order.snapshot(), latency))

    def _pending(self, order: Order, reason: str) -> None:
        before = self._move(order, S.PENDING, reason)
        self.bus.publish(OrderPending(self.clock.now(), order.client_order_id, before, S.PENDING.value,
                                      reason, order.snapshot()))

    def resolve(self, client_order_id: str, attempts: int | None = None) -> bool:
        """Find out from the venue what became of a ``new`` or ``pending`` order.

        Asks the venue by client id (retrying transient errors with back-off). A
        report moves the order to what the venue says (fills booked). ``None`` (the
        venue has never seen the id) sends it again under the same id. If the venue
        cannot be asked, the order stays ``pending`` and the engine asks again later.
        True once the venue holds the order.
        """
        order = self.orders[client_order_id]
        if order.state not in (S.NEW, S.PENDING):
            return order.state is not S.REJECTED
        for attempt in range(max(self.attempts if attempts is None else attempts, 1)):
            if attempt:
                self.retries += 1
                time.sleep(min(0.05 * 2 ** attempt, self.max_wait))
            try:
                report = self.broker.query(client_order_id)
            except (TransientBrokerError, TimeoutError) as exc:
                log.warning("order_query_failed", client_order_id=client_order_id, error=str(exc))
                continue
            if report is not None:
                self.apply_report(report)
                return order.state is not S.REJECTED
            try:  # the venue never saw it: sending it (same id) is not a duplicate
                broker_id = self.broker.submit(order)
            except BrokerRejectedError as exc:
                self.reject(client_order_id, str(exc), by="broker")
                return False
            except (TransientBrokerError, TimeoutError) as exc:
                if order.state is S.NEW:
                    self._pending(order, f"answer lost: {exc}")
                continue
            self._submitted(order, broker_id, None)
            return True
        if order.state is S.NEW and self.live:
            self._pending(order, "venue unreachable")
        return False

    def _retry_submit(self, order: Order) -> str:
        """Attempts 2..``attempts`` of a submission (same client id: the broker dedupes)."""
        broker_id = ""
        time.sleep(min(0.05, self.max_wait))  # the back-off tenacity would have applied first
        for attempt in Retrying(stop=stop_after_attempt(self.attempts - 1),
                                wait=wait_exponential(multiplier=0.05, max=self.max_wait),
                                retry=retry_if_exception_type((TransientBrokerError, TimeoutError)),
                                reraise=True):
            with attempt:
                self.retries += 1
                broker_id = self.broker.submit(order)
        return broker_id

    def resubmit_pending(self) -> None:
        """Resolve orders left ``new`` or ``pending`` (a crash or a lost answer): ask the
        venue first on a real one; a simulated venue dedupes a re-send by client id."""
        for order in list(self.orders.values()):
            if order.state is S.NEW and not self.live:
                self.submit(order.client_order_id)
            elif order.state in (S.NEW, S.PENDING):
                self.resolve(order.client_order_id)

    def cancel(self, client_order_id: str, reason: str = "cancelled") -> bool:
        """Cancel an open order. On a real venue the venue's answer decides: what
        filled before the cancel arrived is booked, then the cancellation."""
        order = self.orders.get(client_order_id)
        if order is None or not order.is_open:
            return False
        if self.live and order.state is not S.NEW:
            try:
                self.broker.cancel(client_order_id)
                report = self.broker.query(client_order_id)
            except (TransientBrokerError, TimeoutError) as exc:
                log.warning("order_cancel_unconfirmed", client_order_id=client_order_id, error=str(exc))
                return False
            if report is not None:
                self.apply_report(report, reason=reason)
            return order.state is S.CANCELLED
        if order.state is not S.NEW:
            self.broker.cancel(client_order_id)
        before = self._move(order, S.CANCELLED, reason)
        self.bus.publish(OrderCancelled(self.clock.now(), client_order_id, before, S.CANCELLED.value,
                                        reason, order.snapshot()))
        return True

    # -- broker reports -------------------------------------------------------------
    def apply(self, update: BrokerUpdate | OrderReport) -> None:
        """Apply a fill, reject, cancel or expiry reported by the broker."""
        if isinstance(update, OrderReport):
            self.apply_report(update)
            return
        order = self.orders.get(update.client_order_id)
        if order is None:
            log.warning("unknown_order_update", client_order_id=update.client_order_id, kind=update.kind)
            return
        now = self.clock.now()
        cid = update.client_order_id
        if update.kind == "fill":
            fill = update.fill
            assert fill is not None
            self._book(order, fill)
        elif update.kind == "reject":
            self.reject(cid, update.reason, by="broker")
        elif update.kind == "expire":
            before = self._move(order, S.EXPIRED, update.reason)
            self.bus.publish(OrderExpired(now, cid, before, S.EXPIRED.value, update.reason,
                                          order.snapshot()))
        elif update.kind == "cancel":
            before = self._move(order, S.CANCELLED, update.reason)
            self.bus.publish(OrderCancelled(now, cid, before, S.CANCELLED.value, update.reason,
                                            order.snapshot()))
        else:
            raise ValueError(f"unknown broker update kind {update.kind!r}")

    def _book(self, order: Order, fill: Fill, done: bool | None = None) -> None:
        if any(f.fill_id == fill.fill_id for f in order.fills):
            return  # a fill reported twice (reconnect, replay) is booked once
        ctx = MONEY_CONTEXT
        total = ctx.add(order.filled_quantity, fill.quantity)
        order.avg_fill_price = ctx.divide(
            ctx.add(ctx.multiply(order.avg_fill_price, order.filled_quantity),
                    ctx.multiply(fill.price, fill.quantity)), total)
        order.filled_quantity = total
        order.fees = ctx.add(order.fees, fill.fees)
        order.fills.append(fill)
        if order.quantity is None:
            order.quantity = fill.quantity  # sized at fill time
        if done is None:
            done = order.filled_quantity >= order.quantity
        to = S.FILLED if done else S.PARTIALLY_FILLED
        before = self._move(order, to)
        kind = OrderFilled if done else OrderPartiallyFilled
        self.bus.publish(kind(self.clock.now(), order.client_order_id, before, to.value, "",
                              order.snapshot(), fill))

    def apply_reports(self, reports: list[OrderReport]) -> None:
        """Apply a batch of venue reports in venue order (per order, by ``sequence``)."""
        for report in sorted(reports, key=lambda r: (r.sequence, r.venue_time)):
            self.apply_report(report)

    def apply_report(self, report: OrderReport, reason: str = "") -> bool:
        """Bring one order to what the venue reports; True when anything changed.

        Fills are booked from the cumulative quantity: the part of ``cum_quantity``
        not booked yet becomes one fill (the announced execution, with its trade id
        and fee, when it is exactly that; else a catch-up fill priced so that the
        order's average equals the venue's, id ``<venue id>@<cum>``). A report whose
        cumulative quantity is already booked adds no fill, so a duplicate or a late
        report changes nothing.
        """
        order = self.orders.get(report.client_order_id)
        if order is None:
            self.unknown_reports += 1
            log.warning("unknown_order_report", client_order_id=report.client_order_id,
                        venue_order_id=report.venue_order_id, status=report.status)
            return False
        if not order.is_open:
            return False  # terminal here already: what the venue adds now is history
        changed = False
        if report.venue_order_id and order.broker_order_id != report.venue_order_id:
            order.broker_order_id = report.venue_order_id
        if report.status == "rejected" and order.filled_quantity == 0 and report.cum_quantity == 0:
            self.resolved += order.state is S.PENDING
            self.reject(order.client_order_id, report.reason or "rejected by the venue", by="broker")
            return True
        if order.state in (S.NEW, S.PENDING):
            self.resolved += order.state is S.PENDING
            self._submitted(order, report.venue_order_id, None)
            changed = True
        ctx = MONEY_CONTEXT
        delta = ctx.subtract(report.cum_quantity, order.filled_quantity)
        if delta > 0:
            if order.quantity is None:
                order.quantity = report.quantity
            if delta == report.last_quantity and report.trade_id:
                fill = Fill(report.trade_id, order.client_order_id, order.symbol, order.side, delta,
                            report.last_price, report.fee, report.venue_time)
            else:
                notional = ctx.subtract(ctx.multiply(report.cum_quantity, report.avg_price),
                                        ctx.multiply(order.filled_quantity, order.avg_fill_price))
                price = ctx.divide(notional, delta).quantize(QUANTUM, context=ctx)
                fee = report.fee
                if report.cum_fee is not None:
                    fee = max(ctx.subtract(report.cum_fee, order.fees), ZERO)
                fill = Fill(f"{report.venue_order_id or order.client_order_id}@{report.cum_quantity}",
                            order.client_order_id, order.symbol, order.side, delta, price, fee,
                            report.venue_time)
            done = report.status == "filled" or report.cum_quantity >= (order.quantity or delta)
            self._book(order, fill, done=done)
            changed = True
        now = self.clock.now()
        why = report.reason or reason
        if report.status == "filled" and order.is_open and order.filled_quantity > 0:
            before = self._move(order, S.FILLED)  # e.g. the venue's quantity rounded ours down
            self.bus.publish(OrderFilled(now, order.client_order_id, before, S.FILLED.value, "",
                                         order.snapshot(), None))
        elif report.status in ("cancelled", "rejected") and order.is_open:
            before = self._move(order, S.CANCELLED, why or "cancelled")
            self.bus.publish(OrderCancelled(now, order.client_order_id, before, S.CANCELLED.value,
                                            why or "cancelled", order.snapshot()))
            changed = True
        elif report.status == "expired" and order.is_open:
            before = self._move(order, S.EXPIRED, why or "expired")
            self.bus.publish(OrderExpired(now, order.client_order_id, before, S.EXPIRED.value,
                                          why or "expired", order.snapshot()))
            changed = True
        return changed

    def restore(self, orders: list[Order]) -> None:
        """Load orders from the store (no events: they are history, not news)."""
        for order in orders:
            self.orders[order.client_order_id] = order
