"""The event loop with fakes from tradelab.testing: orders, risk, stop and shutdown."""

from __future__ import annotations

import pytest

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.engine.loop import Engine
from tradelab.events import BarReceived, EngineStopped, EquitySnapshotted, OrderCancelled, RiskAlert
from tradelab.execution import Execution
from tradelab.orders.brokers.paper import PaperBroker
from tradelab.orders.model import OrderState, client_order_id
from tradelab.testing import FlakyBroker, RecordingBroker, make_bars


@pytest.fixture()
def bars():
    return make_bars(300, seed=5)


@pytest.fixture()
def strategy(registry):
    return registry.create("sma_cross", fast=3, slow=8)


def _engine(strategy, bars, broker=None, **config) -> Engine:
    return assemble_engine([(strategy, "X")], ReplayFeed(bars, "X"), Execution(), broker=broker,
                  config=EngineConfig(**config))


def test_every_entry_becomes_one_order_with_a_deterministic_id(strategy, bars) -> None:
    broker = RecordingBroker()  # accepts, never fills: the engine stays flat
    result = _engine(strategy, bars, broker).run()
    flags = strategy.generate(bars)
    decided = bars.index[(flags.entries & ~flags.exits).to_numpy()]
    expected = [client_order_id("memory", "sma_cross", "X", t.to_pydatetime(), "buy") for t in decided]
    assert list(broker.sent) == expected and len(expected) > 3
    assert result.bars == len(bars) and result.stopped == "finished"
    assert len(result.latencies) == len(expected)


def test_each_bar_is_announced_and_marked(strategy, bars) -> None:
    engine = _engine(strategy, bars, RecordingBroker())
    engine.run()
    assert engine.bus.published[BarReceived.__name__] == len(bars)
    assert engine.bus.published[EquitySnapshotted.__name__] == len(bars)
    assert engine.bus.published[EngineStopped.__name__] == 1
    assert engine.bus.error_count == 0


@pytest.mark.parametrize("cancel", [True, False], ids=["cancel_on_stop", "keep_on_stop"])
def test_shutdown_cancels_or_keeps_open_orders(strategy, bars, cancel) -> None:
    broker = RecordingBroker()
    engine = _engine(strategy, bars, broker, cancel_on_stop=cancel)
    cancelled: list[OrderCancelled] = []
    engine.bus.subscribe(OrderCancelled, cancelled.append)
    engine.run()
    states = {o.state for o in engine.orders.orders.values()}
    if cancel:
        assert states == {OrderState.CANCELLED}
        assert sorted(broker.cancelled) == sorted(broker.sent)
        assert len(cancelled) == len(broker.sent)
    else:
        assert states == {OrderState.SUBMITTED}
        assert broker.cancelled == [] and cancelled == []
        assert sorted(broker.open_ids()) == sorted(broker.sent)


def test_request_stop_ends_after_the_current_bar(strategy, bars) -> None:
    engine = _engine(strategy, bars, RecordingBroker())
    result = engine.run(on_bar=lambda b: engine.request_stop("test") if engine.bars == 40 else None)
    assert result.bars == 40 and result.stopped == "stopped"
    assert engine.feed.delivered == 40


def test_an_engaged_kill_switch_denies_every_order(strategy, bars) -> None:
    broker = RecordingBroker()
    engine = _engine(strategy, bars, broker)
    engine.kill_switch.engage("test halt", by="test")
    result = engine.run()
    assert broker.sent == {}
    denials = [a for a in result.risk_alerts if a.rule == "kill_switch"]
    assert denials and len(denials) == len(engine.orders.orders)
    assert {o.state for o in engine.orders.orders.values()} == {OrderState.REJECTED}


def test_lost_replies_are_retried_without_sending_twice(strategy, bars) -> None:
    inner = PaperBroker(Execution(), 100_000.0)
    flaky = FlakyBroker(inner, failures=2, accept_then_timeout=True)
    engine = _engine(strategy, bars, flaky, retry_max_wait=0.0)
    result = engine.run()
    assert engine.orders.retries == 2
    assert inner.submissions == len(engine.orders.orders)  # each client id accepted once
    assert all(o.state is not OrderState.NEW for o in engine.orders.orders.values())
    assert result.stopped == "finished"


def test_risk_alerts_are_collected(strategy, bars) -> None:
    from tradelab.risk.rules import RiskLimits

    engine = assemble_engine([(strategy, "X")], ReplayFeed(bars, "X"), Execution(), broker=RecordingBroker(),
                    limits=RiskLimits(allowed_symbols=frozenset({"Y"})))
    alerts: list[RiskAlert] = []
    engine.bus.subscribe(RiskAlert, alerts.append)
    result = engine.run()
    assert alerts and result.risk_alerts == alerts
    assert all(a.severity == "warning" for a in alerts)
