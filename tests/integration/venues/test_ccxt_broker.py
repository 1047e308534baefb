"""CcxtBroker (real ccxt 4.5.90 clients) against the Binance simulator, booked by an OrderManager."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.venues.binance_helpers import (
    KEY,
    SECRET,
    SYMBOL,
    count_client_ids,
    eth_bars,
    manager,
    order,
    pump,
    wait_for,
)
from tradelab.brokers.ccxt_broker import CcxtBroker
from tradelab.brokers.sim.harness import start_binance_sim
from tradelab.orders.brokers import BrokerRejectedError, TransientBrokerError, VenueRuleDenied
from tradelab.orders.model import OrderState
from tradelab.orders.rules import conform


def _start(**kw):
    sim = start_binance_sim(eth_bars(volume=kw.pop("volume", 50.0)), key=KEY, secret=SECRET, start=20, **kw)
    broker = CcxtBroker("binance", api_key=KEY, secret=SECRET, rest_url=sim.rest_url, ws_url=sim.ws_url,
                        symbols=[SYMBOL], timeout=5.0, backoff=0.05)
    wait_for(broker.stream.connected.is_set)
    return sim, broker


@pytest.fixture
def venue():
    sim, broker = _start()
    yield sim, broker
    broker.close()
    sim.close()


def _settle(mgr, broker, cid, state=OrderState.FILLED):
    def done():
        pump(mgr, broker)
        return mgr.orders[cid].state is state
    wait_for(done)


def test_long_from_zero_and_back(venue) -> None:
    sim, broker = venue
    mgr, _ = manager(broker)
    assert broker.positions() == {}
    mgr.add(order("buy-1", "buy", "0.5"))
    assert mgr.submit("buy-1")
    sim.advance(1)
    _settle(mgr, broker, "buy-1")
    assert broker.positions() == {SYMBOL: Decimal("0.5")}
    mgr.add(order("sell-1", "sell", "0.5"))
    assert mgr.submit("sell-1")
    sim.advance(1)
    _settle(mgr, broker, "sell-1")
    fills = [f for cid in ("buy-1", "sell-1") for f in mgr.orders[cid].fills]
    assert sum(f.quantity if f.side == "buy" else -f.quantity for f in fills) == 0
    assert broker.positions() == {} and broker.open_orders() == []
    assert len(fills) == 2  # one fill each: a stream event and a catch-up of it book once
    assert all(f.fees > 0 for f in fills)


def test_partial_fill_then_cancel_books_the_fill() -> None:
    sim, broker = _start(volume=1.0, volume_fraction=0.25)  # 0.25 ETH per bar
    try:
        mgr, _ = manager(broker)
        mgr.add(order("part-1", "buy", "1", "limit", "2100"))
        assert mgr.submit("part-1")
        sim.advance(1)
        _settle(mgr, broker, "part-1", OrderState.PARTIALLY_FILLED)
        assert mgr.cancel("part-1")
        got = mgr.orders["part-1"]
        assert got.state is OrderState.CANCELLED and got.filled_quantity == Decimal("0.25")
        assert broker.positions() == {SYMBOL: Decimal("0.25")}
        pump(mgr, broker)  # the stream's copies of the same events change nothing
        assert len(got.fills) == 1
    finally:
        broker.close()
        sim.close()


def test_min_notional_denied_before_submit_and_venue_reject_is_definitive(venue) -> None:
    sim, broker = venue
    rules = broker.rules(SYMBOL)
    assert rules is not None and rules.min_notional == Decimal(10) and rules.step == Decimal("0.0001")
    assert not rules.shortable
    with pytest.raises(VenueRuleDenied, match="minimum notional"):
        conform(rules, "buy", Decimal("0.004"), Decimal(2000))
    sim.inject("reject_min_notional=once")
    with pytest.raises(BrokerRejectedError) as err:
        broker.submit(order("rej-1", "buy", "0.5"))
    assert err.value.code == "-1013"
    mgr, _ = manager(broker)
    sim.inject("reject_min_notional=once")
    mgr.add(order("rej-2", "buy", "0.5"))
    assert not mgr.submit("rej-2") and mgr.orders["rej-2"].state is OrderState.REJECTED
    assert count_client_ids(sim, "rej-2") == 0


def test_lost_ack_is_pending_then_resolved_by_query_without_duplicate(venue) -> None:
    sim, broker = venue
    sim.inject("drop_ack=once")
    with pytest.raises(TransientBrokerError):
        broker.submit(order("lost-0", "buy", "0.5"))
    assert broker.query("lost-0").status == "accepted"
    mgr, events = manager(broker)
    sim.inject("drop_ack=once")
    mgr.add(order("lost-1", "buy", "0.5"))
    assert mgr.submit("lost-1")  # pending, then resolved by the query
    assert "OrderPending" in [type(e).__name__ for e in events]
    assert mgr.orders["lost-1"].state is OrderState.SUBMITTED
    sim.advance(1)
    _settle(mgr, broker, "lost-1")
    assert count_client_ids(sim, "lost-1") == 1
    # a blind re-send of the same id is recognised: the venue's id comes back, nothing new placed
    mgr2, _ = manager(broker)
    mgr2.add(order("dup-1", "buy", "0.5", "limit", "1500"))
    assert mgr2.submit("dup-1")
    again = broker.submit(order("dup-1", "buy", "0.5", "limit", "1500"))
    assert again == mgr2.orders["dup-1"].broker_order_id
    assert count_client_ids(sim, "dup-1") == 1


def test_429_burst_backs_off_and_succeeds(venue) -> None:
    sim, broker = venue
    sim.inject("http429=3@order,retry_after=0.1")
    venue_id = broker.submit(order("rl-1", "buy", "0.5"))
    assert venue_id and broker.rate_limited == 3 and count_client_ids(sim, "rl-1") == 1
    sim.inject("http5xx=1@order")
    with pytest.raises(TransientBrokerError):
        broker.submit(order("5xx-1", "buy", "0.5"))
    assert broker.query("5xx-1") is None  # the 5xx was not processed: safe to send again


def test_stream_dropped_during_a_fill_is_caught_up(venue) -> None:
    sim, broker = venue
    mgr, _ = manager(broker)
    mgr.add(order("gap-1", "buy", "0.5"))
    assert mgr.submit("gap-1")
    wait_for(lambda: broker.stream.reconnects == 0 and sim.disconnect() == 1)
    sim.advance(1)  # fills while nobody listens: the event is lost
    _settle(mgr, broker, "gap-1")  # the reconnect's catch-up query brings it
    assert broker.stream.reconnects >= 1 and len(mgr.orders["gap-1"].fills) == 1


def test_duplicate_and_out_of_order_events_book_each_fill_once() -> None:
    sim, broker = _start(volume=1.0, volume_fraction=0.25)
    try:
        mgr, _ = manager(broker)
        sim.inject("dup_events=always,reorder=0.5")
        mgr.add(order("dup-f", "buy", "1"))
        assert mgr.submit("dup-f")
        for _ in range(4):
            sim.advance(1)
        _settle(mgr, broker, "dup-f")
        got = mgr.orders["dup-f"]
        assert got.filled_quantity == Decimal(1) and sum(f.quantity for f in got.fills) == Decimal(1)
        assert broker.positions() == {SYMBOL: Decimal(1)}
        assert sim.fired()["dup_events"] >= 2
    finally:
        broker.close()
        sim.close()


def test_simulator_restart_keeps_state_and_the_broker_reconnects(venue) -> None:
    sim, broker = venue
    mgr, _ = manager(broker)
    mgr.add(order("rs-1", "buy", "0.5", "limit", "2100"))
    assert mgr.submit("rs-1")
    sim.restart()
    sim.advance(1)
    _settle(mgr, broker, "rs-1")
    assert count_client_ids(sim, "rs-1") == 1 and broker.positions() == {SYMBOL: Decimal("0.5")}


def test_stop_order_and_a_venue_order_placed_by_hand(venue) -> None:
    sim, broker = venue
    sim.place(SYMBOL, "buy", "0.25", type_="LIMIT", price="1500", client_id="by-hand-1")
    mgr, _ = manager(broker)
    mgr.add(order("stop-1", "buy", "0.5", "stop", "2500"))  # far above: rests untriggered
    assert mgr.submit("stop-1")
    open_ids = sorted(r.client_order_id for r in broker.open_orders())
    assert open_ids == ["by-hand-1", "stop-1"]
    stop = next(o for o in sim.orders() if o["clientOrderId"] == "stop-1")
    assert stop["type"] == "STOP_LOSS" and stop["stopPrice"] == "2500.00000000"
    assert mgr.cancel("stop-1") and mgr.orders["stop-1"].state is OrderState.CANCELLED
    wait_for(lambda: (pump(mgr, broker), mgr.unknown_reports >= 1)[1])  # not ours: reported apart


def test_credentials_stay_out_of_repr_and_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("TRADELAB_CCXT_API_KEY", "env-key-abcdef")
    monkeypatch.setenv("TRADELAB_CCXT_SECRET", "env-secret-abcdef")
    broker = CcxtBroker("binance", rest_url="http://127.0.0.1:9", stream=False)
    assert broker.rest.apiKey == "env-key-abcdef"
    assert "env-secret" not in repr(broker) and "env-key" not in repr(broker)
    from tradelab.monitor.redact import redact_text

    assert "env-secret-abcdef" not in redact_text("secret=env-secret-abcdef")
