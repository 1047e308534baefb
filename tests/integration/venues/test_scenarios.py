"""One scenario suite, three venues: the paper broker, CcxtBroker over the real ccxt
against the Binance-protocol simulator, AlpacaBroker over the real alpaca-py against
the Alpaca simulator (both in process, on loopback).

Each scenario is written once against :mod:`.scenario_venues` and generated for the
venues where it can exist (the paper broker has no stream, no rate limit and no
lot/notional rules, so those scenarios are not generated for it). After each one
:func:`check_invariants` holds: position = sum of booked fills; no client order id
twice at the venue; book = venue after a reconciliation (a second run finds nothing
of ours, the same open orders on both sides, each fill booked once); reconciliation
sent nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from tradelab.orders.brokers import BrokerRejectedError, TransientBrokerError
from tradelab.orders.model import OrderState
from tradelab.reconcile import Reconciler, Reconciliation, is_ours
from tradelab.reconcile.model import INFORMATIONAL
from tradelab.testing import CountingBroker, FlakyBroker

from .scenario_venues import VENUES, Book, ScenarioVenue, make_book

S = OrderState
ALL = tuple(VENUES)


def having(*needs: str) -> tuple[str, ...]:
    """The venues that have every fault or rule a scenario needs."""
    return tuple(n for n, cls in VENUES.items() if set(needs) <= cls.faults)


pytestmark = pytest.mark.slow


@pytest.fixture()
def venue(request: pytest.FixtureRequest) -> Iterator[ScenarioVenue]:
    v = VENUES[request.param]()
    try:
        yield v
    finally:
        v.close()


def on(*names: str) -> pytest.MarkDecorator:
    """Generate a scenario for these venues only (where it can exist)."""
    return pytest.mark.parametrize("venue", names, indirect=True)


def booked(book: Book, symbol: str) -> Decimal:
    """Net quantity of every fill the book holds (buys +, sells -)."""
    return sum((f.quantity if f.side == "buy" else -f.quantity
                for o in book.orders.orders.values() for f in o.fills if o.symbol == symbol),
               Decimal(0))


def reconcile(venue: ScenarioVenue, book: Book, trigger: str = "check") -> Reconciliation:
    """A Reconciler run through a CountingBroker: it must not submit or cancel anything."""
    counted = CountingBroker(venue.broker)
    outcome = Reconciler(counted, book.orders, book.portfolio, book.bus, venue.clock, account="acc",
                         symbols=[venue.symbol]).run(trigger)
    assert counted.calls["submit"] == 0 and counted.calls["cancel"] == 0, counted.calls
    return outcome


def check_invariants(venue: ScenarioVenue, book: Book) -> Reconciliation:
    """The suite's invariants, after every scenario."""
    venue.pump(book)
    outcome = reconcile(venue, book)
    assert outcome.ok and not outcome.of_kind("position_mismatch"), outcome.findings
    # What the first run caught up is now the book's: a second run finds nothing of ours
    again = reconcile(venue, book)
    assert {f.kind for f in again.findings} <= INFORMATIONAL, again.findings
    ours = {r.client_order_id for r in venue.broker.open_orders() if is_ours(r.client_order_id)}
    assert ours == {o.client_order_id for o in book.orders.open_orders()}
    fill_ids = [f.fill_id for o in book.orders.orders.values() for f in o.fills]
    assert len(fill_ids) == len(set(fill_ids)), "a fill booked twice"
    net = booked(book, venue.symbol)
    assert book.portfolio.position(venue.symbol) == net
    assert venue.venue_position() == net, (venue.venue_position(), net)
    ids = venue.venue_orders()
    assert len(ids) == len(set(ids)), f"a client order id twice at the venue: {sorted(ids)}"
    return outcome


def _at_venue(venue: ScenarioVenue, cid: str) -> int:
    return venue.venue_orders().count(cid)


# -- 1 ---------------------------------------------------------------------------------------
@on(*ALL)
def test_long_from_zero_and_back(venue: ScenarioVenue) -> None:
    book = make_book(venue.broker, venue.clock)
    assert venue.venue_position() == 0
    book.orders.add(venue.order("tl-buy-1", "buy", "1"))
    assert book.orders.submit("tl-buy-1")
    venue.next_bar(book)
    assert book.orders.orders["tl-buy-1"].state is S.FILLED
    assert venue.venue_position() == 1
    book.orders.add(venue.order("tl-sell-1", "sell", "1"))
    assert book.orders.submit("tl-sell-1")
    venue.next_bar(book)
    assert book.orders.orders["tl-sell-1"].state is S.FILLED
    assert booked(book, venue.symbol) == 0 and venue.venue_position() == 0
    assert all(len(o.fills) == 1 for o in book.orders.orders.values())
    check_invariants(venue, book)


# -- 2 ---------------------------------------------------------------------------------------
@on(*ALL)
def test_partial_fill_then_cancel(venue: ScenarioVenue) -> None:
    book = make_book(venue.broker, venue.clock)
    limit = (venue.price * Decimal("1.05")).quantize(Decimal("0.01"))  # through the market
    book.orders.add(venue.order("tl-part-1", "buy", "20", "limit", limit))
    assert book.orders.submit("tl-part-1")
    order = book.orders.orders["tl-part-1"]
    venue.next_bar(book, until=lambda: order.state is S.PARTIALLY_FILLED)
    part = order.filled_quantity
    assert 0 < part < 20
    assert book.orders.cancel("tl-part-1")
    assert order.state is S.CANCELLED and order.filled_quantity == part
    venue.pump(book)  # the stream's late copies change nothing
    assert order.filled_quantity == part == booked(book, venue.symbol)
    check_invariants(venue, book)


# -- 3 ---------------------------------------------------------------------------------------
@on(*having("min_notional"))
def test_reject_for_min_notional(venue: ScenarioVenue) -> None:
    from tradelab.risk.manager import KillSwitch, RiskManager

    rules = venue.broker.rules(venue.symbol)
    assert rules is not None and rules.min_notional > 0
    tiny = str(rules.step)  # one lot: far under the minimum notional at SPX's price
    book = make_book(venue.broker, venue.clock)
    RiskManager("acc", book.portfolio, book.bus, venue.clock, KillSwitch("acc", book.bus, venue.clock),
                book.orders.reject, venue_rules=venue.broker.rules)
    book.orders.add(venue.order("tl-tiny-1", "buy", tiny))
    denied = book.orders.orders["tl-tiny-1"]
    assert denied.state is S.REJECTED and "minimum notional" in denied.reason
    assert _at_venue(venue, "tl-tiny-1") == 0  # denied before submit: never sent
    # Sent anyway (no risk in the way): the venue's definitive reject, never pending
    direct = make_book(venue.broker, venue.clock)
    direct.orders.add(venue.order("tl-tiny-2", "buy", tiny))
    assert not direct.orders.submit("tl-tiny-2")
    assert direct.orders.orders["tl-tiny-2"].state is S.REJECTED
    assert "OrderPending" not in direct.kinds()
    with pytest.raises(BrokerRejectedError):
        venue.broker.submit(venue.order("tl-tiny-3", "buy", tiny))
    check_invariants(venue, direct)


# -- 4 ---------------------------------------------------------------------------------------
@on(*having("drop_ack"))
def test_lost_ack_resolved_by_query(venue: ScenarioVenue) -> None:
    if venue.name == "paper":  # accepted, then the reply is lost
        flaky = FlakyBroker(venue.broker, failures=1, accept_then_timeout=True)
        book = make_book(flaky, venue.clock)
    else:
        venue.inject("drop_ack=once")
        book = make_book(venue.broker, venue.clock)
    book.orders.add(venue.order("tl-lost-1", "buy", "1"))
    assert book.orders.submit("tl-lost-1")
    order = book.orders.orders["tl-lost-1"]
    assert order.state is S.SUBMITTED and order.broker_order_id
    if venue.name == "paper":
        assert flaky.calls == 2 and venue.broker.submissions == 1  # the re-send was deduped
    else:
        assert "OrderPending" in book.kinds() and venue.sim.fired().get("drop_ack") == 1
    venue.next_bar(book)
    assert order.state is S.FILLED and _at_venue(venue, "tl-lost-1") == 1
    check_invariants(venue, book)


# -- 5 ---------------------------------------------------------------------------------------
@on(*having("http429"))
def test_429_burst_backs_off(venue: ScenarioVenue) -> None:
    venue.inject("http429=3@order,retry_after=0.1")
    book = make_book(venue.broker, venue.clock)
    book.orders.add(venue.order("tl-rl-1", "buy", "1"))
    assert book.orders.submit("tl-rl-1")
    assert venue.sim.fired()["http429"] == 3 and "OrderPending" not in book.kinds()
    assert _at_venue(venue, "tl-rl-1") == 1
    venue.next_bar(book)
    assert book.orders.orders["tl-rl-1"].state is S.FILLED
    check_invariants(venue, book)


# -- 6 ---------------------------------------------------------------------------------------
@on(*having("disconnect"))
def test_stream_dropped_during_a_fill(venue: ScenarioVenue) -> None:
    book = make_book(venue.broker, venue.clock)
    book.orders.add(venue.order("tl-gap-1", "buy", "1"))
    assert book.orders.submit("tl-gap-1")
    before = venue.reconnects()
    assert venue.sim.disconnect() >= 1
    venue.next_bar(book)  # filled while nobody listened: the reconnect's catch-up brings it
    order = book.orders.orders["tl-gap-1"]
    assert order.state is S.FILLED and len(order.fills) == 1
    assert venue.reconnects() > before
    check_invariants(venue, book)


# -- 7 ---------------------------------------------------------------------------------------
@on(*ALL)
def test_foreign_venue_order_at_start_is_reported_and_left_alone(venue: ScenarioVenue) -> None:
    venue.place_foreign("manual-1")
    book = make_book(venue.broker, venue.clock)
    outcome = reconcile(venue, book, "start")
    assert outcome.ok
    assert [f.client_order_id for f in outcome.of_kind("foreign_order")] == ["manual-1"]
    assert "manual-1" not in book.orders.orders
    assert [r.client_order_id for r in venue.broker.open_orders()] == ["manual-1"]  # untouched
    book.orders.add(venue.order("tl-own-1", "buy", "1"))  # trading goes on beside it
    assert book.orders.submit("tl-own-1")
    venue.next_bar(book)
    assert check_invariants(venue, book).of_kind("foreign_order")


# -- 8 ---------------------------------------------------------------------------------------
@on(*ALL)
def test_killed_between_submit_and_ack_then_restart_and_reconcile(venue: ScenarioVenue) -> None:
    # Written ahead, then the process dies. kill-1 (stored new) reached the venue and its
    # acknowledgement was never recorded; kill-3's lost answer was recorded (pending)
    # before the kill; kill-2 (stored new) was never sent.
    sent, unsent, lost = (venue.order(f"tl-kill-{k}", "buy", "1") for k in (1, 2, 3))
    stored = [sent.snapshot(), unsent.snapshot(), lost.snapshot()]
    stored[2].state = S.PENDING
    if venue.name == "paper":
        venue.broker.submit(sent)
        venue.broker.submit(lost)
    else:
        venue.inject("drop_ack=2")
        for order in (sent, lost):
            with pytest.raises(TransientBrokerError):
                venue.broker.submit(order)
    assert [_at_venue(venue, f"tl-kill-{k}") for k in (1, 2, 3)] == [1, 0, 1]
    broker = venue.reopen()  # the restarted process: a new client, a book from the store
    book = make_book(broker, venue.clock)
    book.orders.restore(stored)
    outcome = reconcile(venue, book, "start")
    orders = book.orders.orders
    assert orders["tl-kill-1"].state is S.SUBMITTED and orders["tl-kill-3"].state is S.SUBMITTED
    assert [f.client_order_id for f in outcome.of_kind("pending_resolved")] == ["tl-kill-3"]
    assert [f.client_order_id for f in outcome.of_kind("not_at_venue")] == ["tl-kill-2"]
    book.orders.resubmit_pending()  # the order manager, not reconciliation, sends the unsent one
    assert orders["tl-kill-2"].state is S.SUBMITTED
    venue.next_bar(book)
    assert all(o.state is S.FILLED for o in orders.values())
    assert [_at_venue(venue, f"tl-kill-{k}") for k in (1, 2, 3)] == [1, 1, 1]
    assert booked(book, venue.symbol) == 3
    check_invariants(venue, book)


def test_each_scenario_runs_where_it_can_exist() -> None:
    """The matrix: a scenario is generated only for venues that have what it needs."""
    sim_only = {"test_reject_for_min_notional", "test_429_burst_backs_off",
                "test_stream_dropped_during_a_fill"}
    for name, fn in list(globals().items()):
        if not name.startswith("test_") or not hasattr(fn, "pytestmark"):
            continue
        venues = next(m.args[1] for m in fn.pytestmark if m.name == "parametrize")
        assert tuple(venues) == (("binance", "alpaca") if name in sim_only else ALL), name
