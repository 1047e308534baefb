"""The OrderManager: owns orders, drives the state machine, talks to the broker.

* Client order ids are deterministic (:func:`tradelab.orders.model.client_order_id`);
  :meth:`OrderManager.add` ignores an id it already holds, so a restarted engine
  that regenerates an order does not create it twice.
* Submission retries transient broker errors with tenacity. It never creates a
  second order: every retry re-sends the *same* client id and the broker
  dedupes by it, which also covers a timeout *after* the broker accepted.
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
    OrderRejected,
    OrderRequested,
    OrderSubmitted,
)
from tradelab.interfaces import Broker, Clock
from tradelab.money import MONEY_CONTEXT
from tradelab.orders.brokers import BrokerRejectedError, BrokerUpdate, TransientBrokerError
from tradelab.orders.model import Order, OrderState

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

        Transient errors are retried; if they persist the order stays ``new``
        and :meth:`resubmit_pending` tries again later (same client id).
        """
        order = self.orders[client_order_id]
        if order.state is not S.NEW:
            return order.state is not S.REJECTED
        try:
            try:  # first attempt without tenacity: building a Retrying costs ~30 µs per order
                broker_id = self.broker.submit(order)
            except (TransientBrokerError, TimeoutError):
                if self.attempts <= 1:
                    raise
                broker_id = self._retry_submit(order)
        except BrokerRejectedError as exc:
            self.reject(client_order_id, str(exc), by="broker")
            return False
        except (TransientBrokerError, TimeoutError) as exc:
            log.error("order_submit_failed", client_order_id=client_order_id,
                      attempts=self.attempts, error=str(exc))
            return False
        order.broker_order_id = broker_id
        before = self._move(order, S.SUBMITTED)
        latency = self.timer() - started if started is not None else 0.0
        self.bus.publish(OrderSubmitted(self.clock.now(), client_order_id, before, S.SUBMITTED.value,
                                        "", order.snapshot(), latency))
        return True

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
        """Retry orders still ``new`` after a failed submission (the broker dedupes)."""
        for order in list(self.orders.values()):
            if order.state is S.NEW:
                self.submit(order.client_order_id)

    def cancel(self, client_order_id: str, reason: str = "cancelled") -> bool:
        order = self.orders.get(client_order_id)
        if order is None or not order.is_open:
            return False
        if order.state is not S.NEW:
            self.broker.cancel(client_order_id)
        before = self._move(order, S.CANCELLED, reason)
        self.bus.publish(OrderCancelled(self.clock.now(), client_order_id, before, S.CANCELLED.value,
                                        reason, order.snapshot()))
        return True

    # -- broker reports -------------------------------------------------------------
    def apply(self, update: BrokerUpdate) -> None:
        """Apply a fill, reject, cancel or expiry reported by the broker."""
        order = self.orders.get(update.client_order_id)
        if order is None:
            log.warning("unknown_order_update", client_order_id=update.client_order_id, kind=update.kind)
            return
        now = self.clock.now()
        cid = update.client_order_id
        if update.kind == "fill":
            fill = update.fill
            assert fill is not None
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
            done = order.filled_quantity >= order.quantity
            to = S.FILLED if done else S.PARTIALLY_FILLED
            before = self._move(order, to)
            kind = OrderFilled if done else OrderPartiallyFilled
            self.bus.publish(kind(now, cid, before, to.value, "", order.snapshot(), fill))
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

    def restore(self, orders: list[Order]) -> None:
        """Load orders from the store (no events: they are history, not news)."""
        for order in orders:
            self.orders[order.client_order_id] = order
