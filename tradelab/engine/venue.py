"""What the engine does for a real venue (``broker.simulated`` is False).

A simulated venue is worked against each bar by the engine itself; a real one
fills on its own clock and says so through reports. Each bar, before the
strategies act, :meth:`VenueDesk.news` brings the book up to what the venue
did: its reports (in venue order), orders whose acknowledgement was lost asked
after once more, market orders decided earlier asked after when their report
has not arrived, and the periodic reconciliation. :meth:`VenueDesk.start` is the
reconciliation before the first bar, which may refuse the start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from tradelab.bus import StepFailed
from tradelab.errors import halt_reason
from tradelab.interfaces import Broker
from tradelab.orders.brokers import TransientBrokerError
from tradelab.orders.manager import OrderManager
from tradelab.orders.model import OrderState
from tradelab.orders.rules import conform_quantity

log = structlog.get_logger("tradelab.engine")


class VenueDesk:
    """The engine's side of a real venue.

    Parameters
    ----------
    broker, orders
        The venue and the engine's order book.
    reconciler
        ``run(trigger, adopt=...)`` → an outcome with ``ok`` and ``findings``
        (:class:`tradelab.reconcile.Reconciler`), or ``None``.
    reconcile_seconds, adopt
        Seconds between reconciliations; whether the start takes the venue's positions.
    timer
        Monotonic seconds.
    """

    def __init__(self, broker: Broker, orders: OrderManager, reconciler: Any, *,
                 reconcile_seconds: float, adopt: bool, timer: Callable[[], float]) -> None:
        self.broker, self.orders, self.reconciler = broker, orders, reconciler
        self.reconcile_seconds, self.adopt, self.timer = reconcile_seconds, adopt, timer
        self._next_reconcile = 0.0
        #: What each reconciliation found (the last one is the dashboard's).
        self.reconciliations: list[Any] = []

    def on_lot(self, symbol: str, quantity: Decimal) -> Decimal:
        """``quantity`` on the venue's lot grid (rounded down), as the venue would take it."""
        rules = self.broker.rules(symbol)
        return quantity if rules is None else conform_quantity(rules, quantity)

    def start(self) -> str | None:
        """Reconcile before trading; the reason to refuse the start, if any."""
        return self.reconcile("start") if self.reconciler is not None else None

    def news(self, now: float, at: datetime) -> str | None:
        """Bring the book up to what the venue did since the last bar; a halt reason or ``None``.

        A market order decided on an earlier bar has filled at the venue by now; if its
        report has not arrived (the stream lags, or dropped it), the venue is asked, so
        the strategy acts on the position the venue holds, not a stale one.
        """
        manager = self.orders
        try:
            manager.apply_reports(self.broker.poll())
            for order in manager.open_orders():  # one pass over the book per bar
                if order.state is OrderState.PENDING:
                    manager.resolve(order.client_order_id, attempts=1)
                elif order.order_type == "market" and order.created_at < at and \
                        order.state is not OrderState.NEW:
                    self._ask(order.client_order_id)
        except StepFailed as exc:
            return halt_reason(exc)
        if self.reconciler is not None and now >= self._next_reconcile:
            return self.reconcile("periodic")
        return None

    def _ask(self, client_order_id: str) -> None:
        try:
            report = self.broker.query(client_order_id)
        except (TransientBrokerError, TimeoutError) as exc:  # asked again next bar
            log.warning("order_query_failed", client_order_id=client_order_id, error=str(exc))
            return
        if report is not None:
            self.orders.apply_report(report)

    def reconcile(self, trigger: str) -> str | None:
        """One reconciliation; a halt reason when it fails at start or finds a mismatch then."""
        self._next_reconcile = self.timer() + self.reconcile_seconds
        try:
            outcome = self.reconciler.run(trigger, adopt=self.adopt and trigger == "start")
        except StepFailed as exc:
            return halt_reason(exc)
        except Exception as exc:  # the venue did not answer: trading on blind is not safe
            if trigger == "start":
                return f"reconciliation with {self.broker.name} failed: {exc}"
            log.warning("reconcile_failed", venue=self.broker.name, error=str(exc))
            return None
        self.reconciliations.append(outcome)
        if trigger == "start" and not outcome.ok:
            found = "; ".join(f.detail for f in outcome.findings if f.kind == "position_mismatch")
            return (f"venue {self.broker.name} disagrees with the book: {found} "
                    "(start with --adopt to take the venue's positions)")
        return None


__all__ = ["VenueDesk"]
