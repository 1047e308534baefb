"""A book (order manager, portfolio, bus) against a scriptable venue, as the engine holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tradelab.bus import EventBus
from tradelab.clock import SimClock
from tradelab.events import Event
from tradelab.orders.manager import OrderManager
from tradelab.orders.model import Order
from tradelab.portfolio import Portfolio
from tradelab.reconcile import Reconciler
from tradelab.testing import CountingBroker, FakeVenue, book_fills

T0 = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass
class Book:
    venue: Any             # what the reconciler talks to (a CountingBroker around the venue)
    orders: OrderManager
    portfolio: Portfolio
    bus: EventBus
    events: list[Event] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)
    notified: list[Any] = field(default_factory=list)

    def reconciler(self, **kwargs: Any) -> Reconciler:
        kwargs.setdefault("quote_asset", "USD")
        return Reconciler(self.venue, self.orders, self.portfolio, self.bus, SimClock(T0),
                          account="acc", record=self.records.append, notify=self.notified.append,
                          **kwargs)

    def order(self, cid: str, qty: int | str = 2, side: str = "buy", symbol: str = "SPX") -> Order:
        order = Order(cid, "acc", "s", symbol, side, Decimal(qty), T0)
        self.orders.add(order)
        return order

    def of_type(self, name: str) -> list[Event]:
        return [e for e in self.events if type(e).__name__ == name]


def make_book(broker: Any, cash: Decimal | int = 0) -> Book:
    """The engine's parts around ``broker``: fills reach the portfolio through the bus,
    as the engine's booking step does it (and announce the position it leaves)."""
    bus = EventBus()
    counted = CountingBroker(broker)
    orders = OrderManager(counted, bus, SimClock(T0), attempts=1, max_wait=0.0)
    book = Book(counted, orders, Portfolio(Decimal(cash), "acc"), bus)

    book_fills(bus, book.portfolio)
    bus.subscribe(Event, book.events.append)
    return book


@pytest.fixture()
def venue() -> FakeVenue:
    return FakeVenue(cash=10_000)


@pytest.fixture()
def book(venue: FakeVenue) -> Book:
    return make_book(venue, cash=10_000)
