from __future__ import annotations

from datetime import UTC, datetime

from tradelab.bus import EventBus
from tradelab.events import BarReceived, Event, RiskAlert

T = datetime(2020, 1, 1, tzinfo=UTC)


def _bar(close: float = 1.0) -> BarReceived:
    return BarReceived(T, "X", 1.0, 1.0, 1.0, close, 1.0)


def test_events_published_from_handlers_are_delivered_fifo() -> None:
    bus, seen = EventBus(), []

    def on_bar(ev: BarReceived) -> None:
        seen.append(("bar", ev.close))
        if ev.close == 1.0:
            bus.publish(RiskAlert(T, "a", "r", "m"))
            bus.publish(_bar(2.0))

    bus.subscribe(BarReceived, on_bar)
    bus.subscribe(BarReceived, lambda ev: seen.append(("second", ev.close)))
    bus.subscribe(RiskAlert, lambda ev: seen.append(("alert", ev.rule)))
    bus.publish(_bar())
    assert seen == [("bar", 1.0), ("second", 1.0), ("alert", "r"), ("bar", 2.0), ("second", 2.0)]


def test_handler_errors_are_isolated_and_counted() -> None:
    bus, seen = EventBus(), []

    def broken(ev: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe(BarReceived, broken)
    bus.subscribe(BarReceived, seen.append)
    bus.publish(_bar())
    bus.publish(_bar())
    assert len(seen) == 2
    assert bus.error_count == 2


def test_base_class_subscription_receives_subclasses() -> None:
    bus, seen = EventBus(), []
    bus.subscribe(Event, seen.append)
    bus.publish(_bar())
    assert len(seen) == 1


def test_wants_counts_an_unheard_event_as_published_and_sees_base_subscriptions() -> None:
    bus = EventBus()
    assert not bus.wants(BarReceived) and not bus.has_subscribers(BarReceived)
    bus.publish(_bar())  # publishing to nobody counts it the same way
    assert bus.published[BarReceived.__name__] == 2
    seen: list[Event] = []
    bus.subscribe(Event, seen.append)  # a base-class subscription hears every event
    assert bus.wants(BarReceived) and bus.has_subscribers(RiskAlert)
    assert bus.published[BarReceived.__name__] == 2  # wants() counts only skipped events
