"""Metrics: a private registry per app, fed by engine bus events and the cache's stats()."""

from __future__ import annotations

import pandas as pd

from tests.unit.monitor.engine_helper import make_engine
from tradelab.cache.memory import MemoryCache
from tradelab.cache.tiered import TieredCache
from tradelab.monitor.metrics import Metrics


def test_each_metrics_object_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.job_finished("nightly", "succeeded", 12.0)
    assert a.value("tradelab_job_runs_total", {"job": "nightly", "status": "succeeded"}) == 1.0
    assert b.value("tradelab_job_runs_total", {"job": "nightly", "status": "succeeded"}) is None
    assert a.value("tradelab_job_duration_seconds_sum", {"job": "nightly", "status": "succeeded"}) == 12.0


def test_engine_events_feed_bar_order_and_latency_metrics(spx: pd.DataFrame) -> None:
    engine = make_engine(spx)
    m = Metrics()
    m.attach(engine.bus)
    result = engine.run()
    assert m.value("tradelab_bars_processed_total", {"symbol": "SPX"}) == result.bars
    filled = m.value("tradelab_orders_total", {"state": "filled"})
    assert filled == len(result.fills) > 0
    assert m.value("tradelab_orders_total", {"state": "submitted"}) == filled
    assert m.value("tradelab_fill_latency_seconds_count") == filled
    assert m.value("tradelab_equity", {"account": "paper"}) == float(result.equity)


def test_risk_denials_are_counted_by_rule(spx: pd.DataFrame) -> None:
    engine = make_engine(spx, max_position="1")
    m = Metrics()
    m.attach(engine.bus)
    result = engine.run()
    denied = m.value("tradelab_risk_denials_total", {"rule": "max_position"})
    assert denied is not None and denied > 0
    assert m.value("tradelab_risk_alerts_total", {"rule": "max_position", "severity": "warning"}) == \
        len(result.risk_alerts)
    assert result.fills == []


def test_cache_hits_and_misses_come_from_the_cache_stats() -> None:
    cache = TieredCache([MemoryCache(max_items=10, ttl=60)])
    m = Metrics()
    m.watch_cache(cache)
    cache.set("k", 1)
    cache.get("k")
    cache.get("k")
    cache.get("missing")
    assert m.value("tradelab_cache_hits_total", {"level": "all"}) == 2
    assert m.value("tradelab_cache_misses_total", {"level": "all"}) == 1
    assert m.value("tradelab_cache_hits_total", {"level": "memory"}) == 2
    assert b"tradelab_cache_hits_total" in m.render()


def test_notification_outcomes_are_counted() -> None:
    from tradelab.notify import Outcome

    m = Metrics()
    m.on_notification(Outcome("ops", "risk_alert", "warning", "sent", 1))
    m.on_notification(Outcome("ops", "risk_alert", "warning", "failed", 4))
    m.on_notification(Outcome("ops", "order_filled", "info", "dropped", 0))
    assert m.value("tradelab_notification_failures_total", {"channel": "ops"}) == 2
    assert m.value("tradelab_notifications_total", {"channel": "ops", "status": "sent"}) == 1
