"""A real venue's reports: booked from the cumulative quantity, once, in venue order;
a lost acknowledgement is pending until the venue is asked; a cancel racing a fill
ends with the fill booked."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradelab.bus import EventBus
from tradelab.clock import SimClock
from tradelab.events import OrderEvent, OrderFilled, OrderPartiallyFilled
from tradelab.orders.manager import OrderManager
from tradelab.orders.model import Order, OrderState
from tradelab.testing import CountingBroker, FakeVenue

T0 = datetime(2026, 1, 5, tzinfo=UTC)
S = OrderState


def _book(venue):
    bus, clock = EventBus(), SimClock(T0)
    events: list = []
    bus.subscribe(OrderEvent, events.append)
    return OrderManager(venue, bus, clock, attempts=3, max_wait=0.0), events


def _order(cid="c1", qty=10):
    return Order(cid, "acc", "s", "BTC/USDT", "buy", Decimal(qty), T0, estimate=Decimal(qty))


def _fills(events):
    return [e.fill for e in events if isinstance(e, OrderFilled | OrderPartiallyFilled) and e.fill]


def test_duplicate_late_and_missed_reports_book_each_unit_once() -> None:
    venue = FakeVenue(cash=1000)
    mgr, events = _book(venue)
    mgr.add(_order())
    assert mgr.submit("c1")
    r1 = venue.fill("c1", 3, "100")
    r2 = venue.fill("c1", 2, "101")
    r3 = venue.fill("c1", 5, "102", fee="0.5")
    # r2 is lost; r3 arrives first, then r1 late, then r3 again (a reconnect's replay).
    mgr.apply_reports([r3])
    mgr.apply_report(r1)
    mgr.apply_report(r3)
    order = mgr.orders["c1"]
    assert order.state is S.FILLED and order.filled_quantity == 10
    fills = _fills(events)
    assert sum(f.quantity for f in fills) == 10 and len(fills) == 1  # caught up in one fill
    # The catch-up fill is priced so the order's average equals the venue's.
    assert order.avg_fill_price == r3.avg_price
    assert r2.cum_quantity == 5  # (what was missed: covered by r3's cumulative quantity)


def test_reports_applied_in_venue_order_within_a_batch() -> None:
    venue = FakeVenue(cash=1000)
    mgr, events = _book(venue)
    mgr.add(_order())
    mgr.submit("c1")
    r1 = venue.fill("c1", 4, "100")
    r2 = venue.fill("c1", 6, "110")
    mgr.apply_reports([r2, r1])  # delivered out of order
    fills = _fills(events)
    assert [(f.quantity, f.price, f.fill_id) for f in fills] == [
        (Decimal(4), Decimal(100), r1.trade_id), (Decimal(6), Decimal(110), r2.trade_id)]


def test_lost_ack_is_pending_then_resolved_by_query_without_a_second_submit() -> None:
    venue = FakeVenue(cash=1000)
    venue.drop_acks = 1
    counted = CountingBroker(venue)
    mgr, events = _book(counted)
    mgr.add(_order())
    assert mgr.submit("c1")
    assert counted.calls["submit"] == 1 and counted.calls["query"] == 1
    assert [e.to_state for e in events] == ["new", "pending", "submitted"]
    assert mgr.orders["c1"].broker_order_id == "v-c1"


def test_an_order_the_venue_never_saw_is_sent_again_under_the_same_id() -> None:
    venue = FakeVenue(cash=1000)
    mgr, _ = _book(venue)
    mgr.add(_order())
    order = mgr.orders["c1"]
    order.transition(S.PENDING, T0)  # e.g. restored after a crash mid-submit
    assert venue.query("c1") is None
    assert mgr.resolve("c1")
    assert order.state is S.SUBMITTED and list(venue.reports) == ["c1"]


def test_cancel_racing_a_fill_ends_with_the_fill_booked() -> None:
    venue = FakeVenue(cash=1000)
    mgr, events = _book(venue)
    mgr.add(_order())
    mgr.submit("c1")
    venue.fill("c1", 4, "100")  # executed at the venue before the cancel arrives
    mgr.cancel("c1", "strategy exit")
    order = mgr.orders["c1"]
    assert order.state is S.CANCELLED and order.filled_quantity == 4
    assert [e.to_state for e in events][-2:] == ["partially_filled", "cancelled"]


def test_a_fully_filled_order_cannot_be_cancelled_and_is_booked_filled() -> None:
    venue = FakeVenue(cash=1000)
    mgr, _ = _book(venue)
    mgr.add(_order())
    mgr.submit("c1")
    venue.fill("c1", 10, "100")
    assert not mgr.cancel("c1")
    assert mgr.orders["c1"].state is S.FILLED


def test_a_venue_reject_is_final_only_when_the_venue_says_so() -> None:
    venue = FakeVenue(cash=1000)
    mgr, _ = _book(venue)
    mgr.add(_order())
    mgr.submit("c1")
    rejected = replace(venue.query("c1"), status="rejected", reason="insufficient balance", sequence=9)
    mgr.apply_report(rejected)
    assert mgr.orders["c1"].state is S.REJECTED
    assert mgr.orders["c1"].reason == "insufficient balance"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=6), st.randoms())
def test_any_delivery_of_reports_books_exactly_the_venue_quantity(parts, rnd) -> None:
    venue = FakeVenue(cash=10**6)
    mgr, events = _book(venue)
    total = sum(parts)
    mgr.add(_order(qty=total))
    mgr.submit("c1")
    reports = [venue.fill("c1", q, str(100 + i)) for i, q in enumerate(parts)]
    delivered = [r for r in reports if rnd.random() < 0.7] + [r for r in reports if rnd.random() < 0.3]
    rnd.shuffle(delivered)
    for r in delivered:
        mgr.apply_report(r)
    mgr.apply_report(venue.query("c1"))  # the reconciliation's query catches up the rest
    order = mgr.orders["c1"]
    booked = _fills(events)
    assert sum(f.quantity for f in booked) == total == order.filled_quantity
    assert len({f.fill_id for f in booked}) == len(booked)
    notional = sum(f.quantity * f.price for f in booked)
    assert abs(notional - sum(Decimal(q) * (100 + i) for i, q in enumerate(parts))) < Decimal("1e-6")
    assert order.state is S.FILLED
