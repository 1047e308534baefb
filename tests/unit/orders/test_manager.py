from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradelab.bus import EventBus
from tradelab.clock import SimClock
from tradelab.events import OrderEvent, OrderFilled, OrderSubmitted
from tradelab.execution import Execution
from tradelab.orders.brokers.paper import PaperBroker
from tradelab.orders.manager import OrderManager
from tradelab.orders.model import Order, OrderState
from tradelab.testing import FlakyBroker

T0 = datetime(2020, 1, 2, tzinfo=UTC)


def _setup(broker):
    bus, clock = EventBus(), SimClock(T0)
    events: list = []
    bus.subscribe(OrderEvent, events.append)
    return OrderManager(broker, bus, clock, attempts=5, max_wait=0.0), events


def _order(cid="c1"):
    return Order(cid, "acc", "s", "SPX", "buy", Decimal(2), T0)


@pytest.mark.parametrize("accept_then_timeout", [False, True], ids=["fails-first", "times-out-after-accept"])
def test_transient_errors_are_retried_without_duplicating(accept_then_timeout) -> None:
    paper = PaperBroker(Execution(fees=0.0))
    flaky = FlakyBroker(paper, failures=3, accept_then_timeout=accept_then_timeout)
    mgr, events = _setup(flaky)
    mgr.add(_order())
    assert mgr.submit("c1")
    assert flaky.calls == 4 and mgr.retries == 3
    assert paper.submissions == 1 and [r.client_order_id for r in paper.open_orders()] == ["c1"]
    assert [type(e).__name__ for e in events] == ["OrderRequested", "OrderSubmitted"]


def test_persistent_failure_keeps_order_new_for_a_later_retry() -> None:
    paper = PaperBroker(Execution(fees=0.0))
    flaky = FlakyBroker(paper, failures=7)
    mgr, _ = _setup(flaky)
    mgr.add(_order())
    assert not mgr.submit("c1")
    assert mgr.orders["c1"].state is OrderState.NEW
    mgr.resubmit_pending()
    assert mgr.orders["c1"].state is OrderState.SUBMITTED and paper.submissions == 1


def test_add_is_idempotent_and_fills_drive_transitions() -> None:
    paper = PaperBroker(Execution(fees=0.0))
    mgr, events = _setup(paper)
    assert mgr.add(_order()) and not mgr.add(_order())
    mgr.submit("c1")
    for u in paper.on_bar("SPX", T0 + timedelta(days=1), 10, 11, 9, 10, 1e6, "open"):
        mgr.apply(u)
        mgr.apply(u)  # a fill reported twice is booked once
    o = mgr.orders["c1"]
    assert o.state is OrderState.FILLED and o.filled_quantity == 2
    transitions = [(e.from_state, e.to_state) for e in events]
    assert transitions == [(None, "new"), ("new", "submitted"), ("submitted", "filled")]
    assert isinstance(events[1], OrderSubmitted) and isinstance(events[2], OrderFilled)
