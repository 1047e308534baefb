"""AlpacaBroker (over the real alpaca-py) against the Alpaca simulator, booked by an OrderManager.

Each scenario checks the invariants: position = sum of booked fills, no client
order id twice at the venue. Reports are awaited with a deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradelab.brokers.alpaca_broker import AlpacaBroker
from tradelab.brokers.sim.alpaca_harness import AlpacaSimHandle as SimHandle
from tradelab.brokers.sim.alpaca_harness import start_alpaca_sim
from tradelab.bus import EventBus
from tradelab.clock import SimClock
from tradelab.interfaces import Broker
from tradelab.orders.brokers import BrokerRejectedError, TransientBrokerError
from tradelab.orders.manager import OrderManager
from tradelab.orders.model import Order, OrderState

from .test_alpaca_sim import KEY, SECRET, orcl_bars, wait_until

T0 = datetime(2014, 1, 2, tzinfo=UTC)
S = OrderState


def _broker(handle: SimHandle, **kw: Any) -> AlpacaBroker:
    return AlpacaBroker(api_key=KEY, secret=SECRET, rest_url=handle.rest_url, ws_url=handle.ws_url,
                        symbols=["ORCL"], timeout=5.0, **kw)


@pytest.fixture()
def venue(tmp_path: Path) -> Iterator[SimHandle]:
    handle = start_alpaca_sim(orcl_bars(), key=KEY, secret=SECRET, state_path=tmp_path / "s.json")
    yield handle
    handle.close()


@pytest.fixture()
def partial_venue(tmp_path: Path) -> Iterator[SimHandle]:
    """Each bar fills at most 2e-6 of its volume: ~23-36 ORCL shares."""
    handle = start_alpaca_sim(orcl_bars(), key=KEY, secret=SECRET, volume_fraction=2e-6,
                              state_path=tmp_path / "s.json")
    yield handle
    handle.close()


@pytest.fixture()
def broker(venue: SimHandle) -> Iterator[AlpacaBroker]:
    b = _broker(venue)
    assert b.wait_connected(30)
    yield b
    b.close()


def _manager(broker: AlpacaBroker) -> OrderManager:
    return OrderManager(broker, EventBus(), SimClock(T0), attempts=5, max_wait=0.0)


def _order(cid: str, qty: str, side: str = "buy", **kw: Any) -> Order:
    return Order(cid, "acc", "s", "ORCL", side, Decimal(qty), T0, **kw)


def _pump_until(mgr: OrderManager, broker: AlpacaBroker, cid: str, *states: OrderState,
                timeout: float = 30.0) -> Order:
    """Book the broker's reports until order ``cid`` reaches one of ``states``."""
    def reached() -> bool:
        mgr.apply_reports(broker.poll())
        return mgr.orders[cid].state in states
    wait_until(reached, timeout, f"{cid} to reach {[s.value for s in states]}")
    return mgr.orders[cid]


def _booked(mgr: OrderManager) -> Decimal:
    """Net shares of every fill the manager booked."""
    return sum((f.quantity if o.side == "buy" else -f.quantity
                for o in mgr.orders.values() for f in o.fills), Decimal(0))


def _venue_client_ids(handle: SimHandle) -> list[str]:
    return [o["client_order_id"] for o in handle.orders()]


def test_it_is_a_broker_and_hides_its_secret(broker: AlpacaBroker) -> None:
    assert isinstance(broker, Broker) and broker.simulated is False
    assert SECRET not in repr(broker) and KEY not in repr(broker)
    rules = broker.rules("ORCL")
    assert rules is not None and rules.step == Decimal("1e-9") and rules.tick == Decimal("0.01")
    assert rules.min_notional == 1
    assert broker.rules("NOPE") is None
    assert broker.balances()[broker.quote_asset].total == 100_000
    assert broker.clock().is_open is False  # between daily bars: a market order waits for the open


def test_wrong_key_surfaces_as_a_venue_refusal(venue: SimHandle) -> None:
    b = AlpacaBroker(api_key=KEY, secret="wrong", rest_url=venue.rest_url, stream=False)
    with pytest.raises(BrokerRejectedError) as err:
        b.submit(_order("k-1", "1"))
    assert err.value.code == "40110000"
    for read in (b.balances, b.positions, b.open_orders, lambda: b.rules("ORCL")):
        with pytest.raises(BrokerRejectedError):
            read()


def test_an_invalid_request_is_a_reject_not_a_duplicate(venue: SimHandle) -> None:
    b = _broker(venue, stream=False)
    bad = Order("odd-1", "acc", "s", "NOPE", "buy", Decimal(1), T0)
    with pytest.raises(BrokerRejectedError) as err:  # same code as a duplicate id, other words
        b.submit(bad)
    assert err.value.code == "40010001" and "not found" in str(err.value)


def test_long_from_zero_and_back_with_a_fractional_quantity(venue: SimHandle,
                                                           broker: AlpacaBroker) -> None:
    mgr = _manager(broker)
    mgr.add(_order("buy-1", "3.25"))  # gtc by default: sent as day (fractional)
    assert mgr.submit("buy-1")
    venue.advance(1)
    buy = _pump_until(mgr, broker, "buy-1", S.FILLED)
    assert buy.filled_quantity == Decimal("3.25") and buy.avg_fill_price == Decimal("37.65")
    assert broker.positions() == {"ORCL": Decimal("3.25")}
    mgr.add(_order("sell-1", "3.25", "sell"))
    assert mgr.submit("sell-1")
    venue.advance(1)
    _pump_until(mgr, broker, "sell-1", S.FILLED)
    assert broker.positions() == {} and _booked(mgr) == 0
    assert broker.open_orders() == []
    assert sorted(_venue_client_ids(venue)) == ["buy-1", "sell-1"]


def test_whole_shares_when_the_asset_is_not_fractionable(tmp_path: Path) -> None:
    handle = start_alpaca_sim(orcl_bars(), key=KEY, secret=SECRET, whole_shares=("ORCL",),
                              state_path=tmp_path / "s.json")
    b = _broker(handle, stream=False)
    try:
        rules = b.rules("ORCL")
        assert rules is not None and rules.step == 1 and rules.min_notional == 0
        with pytest.raises(BrokerRejectedError):
            b.submit(_order("half", "0.5"))
        assert b.submit(_order("whole", "2"))
    finally:
        handle.close()


def test_partial_fill_then_cancel_books_the_fill(partial_venue: SimHandle) -> None:
    broker = _broker(partial_venue)
    try:
        assert broker.wait_connected(30)
        mgr = _manager(broker)
        mgr.add(_order("big-1", "100"))
        assert mgr.submit("big-1")
        partial_venue.advance(1)
        part = _pump_until(mgr, broker, "big-1", S.PARTIALLY_FILLED)
        assert 0 < part.filled_quantity < 100
        assert mgr.cancel("big-1")
        order = mgr.orders["big-1"]
        assert order.state is S.CANCELLED and order.filled_quantity == part.filled_quantity
        assert broker.positions()["ORCL"] == order.filled_quantity == _booked(mgr)
        mgr.apply_reports(broker.poll())  # the stream's late cancel report changes nothing
        assert order.filled_quantity == _booked(mgr)
    finally:
        broker.close()


def test_rejects_are_definitive_venue_answers(venue: SimHandle, broker: AlpacaBroker) -> None:
    mgr = _manager(broker)
    mgr.add(_order("tiny", "0.01"))  # $0.38: under $1
    assert not mgr.submit("tiny")
    assert mgr.orders["tiny"].state is S.REJECTED
    with pytest.raises(BrokerRejectedError) as err:
        broker.submit(_order("rich", "10000"))
    assert err.value.code == "40310000" and "buying power" in str(err.value)
    venue.inject("reject_min_notional=once")
    with pytest.raises(BrokerRejectedError):
        broker.submit(_order("ok-but-refused", "1"))


def test_duplicate_submit_returns_the_existing_order(venue: SimHandle, broker: AlpacaBroker) -> None:
    first = broker.submit(_order("twice", "1"))
    assert broker.submit(_order("twice", "1")) == first
    assert _venue_client_ids(venue) == ["twice"]


def test_lost_ack_is_pending_then_resolved_by_query_without_a_duplicate(
        venue: SimHandle, broker: AlpacaBroker) -> None:
    venue.inject("drop_ack=once")
    with pytest.raises(TransientBrokerError):
        broker.submit(_order("lost-0", "1"))
    assert broker.query("lost-0") is not None  # the venue has it
    mgr = _manager(broker)
    venue.inject("drop_ack=once")
    mgr.add(_order("lost-1", "2"))
    assert mgr.submit("lost-1")  # pending, then resolved by the query
    assert mgr.orders["lost-1"].state is S.SUBMITTED and mgr.orders["lost-1"].broker_order_id
    venue.advance(1)
    _pump_until(mgr, broker, "lost-1", S.FILLED)
    assert _venue_client_ids(venue) == ["lost-0", "lost-1"]


def test_unknown_outcomes_are_transient_never_rejects(venue: SimHandle) -> None:
    broker = _broker(venue, stream=False)  # no catch-up request may take the injected 5xx
    venue.inject("http5xx=1@order")
    with pytest.raises(TransientBrokerError):
        broker.submit(_order("5xx", "1"))
    assert broker.query("5xx") is None  # a 5xx is not processed: the manager may send again
    venue.stop()
    with pytest.raises(TransientBrokerError):
        broker.submit(_order("down", "1"))


def test_429_burst_backs_off_and_succeeds(venue: SimHandle) -> None:
    import time

    broker = _broker(venue, stream=False, max_retries=4)
    venue.inject("http429=3@order,retry_after=0.2")
    started = time.monotonic()
    assert broker.submit(_order("busy", "1"))
    assert time.monotonic() - started >= 0.6  # the venue's Retry-After was honoured
    assert venue.fired()["http429"] == 3
    assert _venue_client_ids(venue) == ["busy"]
    venue.inject("http429=always@order")
    with pytest.raises(TransientBrokerError):  # outlasts the back-off: outcome unknown, not refused
        broker.submit(_order("too-busy", "1"))
    assert venue.fired()["http429"] == 3 + 4


def test_stream_dropped_during_a_fill_is_caught_up(venue: SimHandle, broker: AlpacaBroker) -> None:
    mgr = _manager(broker)
    venue.inject("disconnect_after=1")  # the "new" event goes out, then the stream drops
    mgr.add(_order("gap-1", "4"))
    assert mgr.submit("gap-1")
    wait_until(lambda: broker.reconnects >= 1 or not venue.sim or not venue.sim.stream.clients, 30,
               "the stream to drop")
    venue.advance(1)  # the fill happens while the stream is down (or reconnecting)
    order = _pump_until(mgr, broker, "gap-1", S.FILLED)
    assert broker.reconnects >= 1 and order.filled_quantity == 4 == _booked(mgr)


def test_duplicate_and_out_of_order_events_are_booked_once(partial_venue: SimHandle) -> None:
    broker = _broker(partial_venue)
    try:
        assert broker.wait_connected(30)
        mgr = _manager(broker)
        partial_venue.inject("dup_events=always,reorder=0.5")
        mgr.add(_order("noisy", "60"))
        assert mgr.submit("noisy")
        partial_venue.advance(3)
        order = _pump_until(mgr, broker, "noisy", S.FILLED)
        assert order.filled_quantity == 60 == _booked(mgr)
        assert broker.positions()["ORCL"] == 60
        fired = partial_venue.fired()
        assert fired.get("dup_events", 0) >= 3 and fired.get("reorder", 0) >= 1
    finally:
        broker.close()


def test_venue_restart_keeps_state_and_the_stream_resumes(venue: SimHandle,
                                                          broker: AlpacaBroker) -> None:
    mgr = _manager(broker)
    mgr.add(_order("before", "1.5"))
    assert mgr.submit("before")
    venue.advance(1)
    _pump_until(mgr, broker, "before", S.FILLED)
    connects = broker.reconnects
    venue.restart()
    wait_until(lambda: broker.reconnects > connects, 60, "the stream to reconnect")
    assert broker.positions() == {"ORCL": Decimal("1.5")}
    report = broker.query("before")
    assert report is not None and report.status == "filled"
    mgr.add(_order("after", "1"))
    assert mgr.submit("after")
    venue.advance(1)
    _pump_until(mgr, broker, "after", S.FILLED)
    assert broker.positions()["ORCL"] == Decimal("2.5") == _booked(mgr)
    assert sorted(_venue_client_ids(venue)) == ["after", "before"]


def test_reconciliation_books_missed_fills_and_reports_a_hand_placed_order(venue: SimHandle) -> None:
    """No stream at all: the Reconciler finds the fill by query; a foreign order is left alone."""
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import LimitOrderRequest

    from tradelab.events import OrderFilled, OrderPartiallyFilled
    from tradelab.portfolio import Portfolio
    from tradelab.reconcile import Reconciler

    broker = _broker(venue, stream=False)
    mgr = _manager(broker)
    portfolio = Portfolio(Decimal(100_000), "acc")

    def book_fill(ev: Any) -> None:
        f = ev.fill
        if f is not None:
            portfolio.apply_fill(f.symbol, f.side, f.quantity, f.price, f.fees)
    mgr.bus.subscribe(OrderFilled, book_fill)
    mgr.bus.subscribe(OrderPartiallyFilled, book_fill)
    hand = TradingClient(KEY, SECRET, paper=True, url_override=venue.rest_url)
    hand.submit_order(LimitOrderRequest(symbol="ORCL", qty=1, side=OrderSide.BUY, limit_price=20.0,
                                        time_in_force=TimeInForce.GTC, client_order_id="by-hand"))
    mgr.add(_order("tl-recon-1", "5"))
    assert mgr.submit("tl-recon-1")
    venue.advance(1)
    placed = len(venue.orders())
    rec = Reconciler(broker, mgr, portfolio, mgr.bus, SimClock(T0), account="acc",
                     quote_asset=broker.quote_asset, symbols={"ORCL"}).run("periodic")
    order = mgr.orders["tl-recon-1"]
    assert order.state is S.FILLED and order.filled_quantity == 5
    assert portfolio.positions["ORCL"].quantity == 5 == broker.positions()["ORCL"]
    assert portfolio.cash == broker.balances()["USD"].total
    assert [f.kind for f in rec.findings if f.client_order_id == "by-hand"] == ["foreign_order"]
    assert rec.ok and len(venue.orders()) == placed  # reconciliation sent nothing


def test_against_a_child_process_venue_killed_and_restarted(tmp_path: Path) -> None:
    """``tradelab venue-sim alpaca`` in its own process: SIGKILLed, started again from its state."""
    handle = start_alpaca_sim(orcl_bars(), key=KEY, secret=SECRET, in_process=False,
                              state_path=tmp_path / "s.json")
    broker = _broker(handle)
    try:
        assert broker.wait_connected(60)
        mgr = _manager(broker)
        mgr.add(_order("child-1", "2.5"))
        assert mgr.submit("child-1")
        handle.advance(1)
        _pump_until(mgr, broker, "child-1", S.FILLED)
        mgr.add(_order("child-2", "1", order_type="limit", limit_price=Decimal("20")))
        assert mgr.submit("child-2")
        connects = broker.reconnects
        handle.kill()  # SIGKILL: only what every change already wrote survives
        handle.restart()
        wait_until(lambda: broker.reconnects > connects, 60, "the stream to reconnect")
        assert broker.positions() == {"ORCL": Decimal("2.5")}
        report = broker.query("child-2")
        assert report is not None and report.status == "accepted"
        assert mgr.cancel("child-2") and mgr.orders["child-2"].state is S.CANCELLED
        assert sorted(_venue_client_ids(handle)) == ["child-1", "child-2"]
    finally:
        broker.close()
        handle.close()
