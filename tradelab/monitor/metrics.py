"""Prometheus metrics on a registry owned by the app (never the global default one).

Engine metrics are fed by a bus subscriber (:meth:`Metrics.attach`), cache hit
and miss counts are read from the cache's ``stats()`` at scrape time by a
custom collector, notification outcomes arrive through the notifier's
listener hook, and job runs are recorded by the job runner.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from tradelab.events import (
    BarReceived,
    EquitySnapshotted,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    RiskAlert,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
JOB_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)


class CacheCollector(Collector):
    """Exposes a cache's ``stats()`` (hits, misses per level) at scrape time.

    Parameters
    ----------
    cache
        Anything with ``stats()`` returning ``hits``/``misses`` and optionally
        ``levels`` (a list of per-level stats with a ``name``), like
        :class:`~tradelab.cache.tiered.TieredCache`.
    """

    def __init__(self, cache: Any) -> None:
        self.cache = cache

    def describe(self) -> list[Any]:
        # Declared up front so registration does not call stats() (disk I/O).
        return [CounterMetricFamily("tradelab_cache_hits", "Cache hits", labels=["level"]),
                CounterMetricFamily("tradelab_cache_misses", "Cache misses", labels=["level"]),
                GaugeMetricFamily("tradelab_cache_entries", "Entries held", labels=["level"])]

    def collect(self) -> Iterator[Any]:
        stats = self.cache.stats()
        hits = CounterMetricFamily("tradelab_cache_hits", "Cache hits", labels=["level"])
        misses = CounterMetricFamily("tradelab_cache_misses", "Cache misses", labels=["level"])
        size = GaugeMetricFamily("tradelab_cache_entries", "Entries held", labels=["level"])
        hits.add_metric(["all"], float(stats.get("hits", 0)))
        misses.add_metric(["all"], float(stats.get("misses", 0)))
        for level in stats.get("levels", ()):
            name = str(level.get("name", "?"))
            hits.add_metric([name], float(level.get("hits", 0)))
            misses.add_metric([name], float(level.get("misses", 0)))
            if "size" in level:
                size.add_metric([name], float(level["size"]))
        yield hits
        yield misses
        yield size


class Metrics:
    """All tradelab metrics on one :class:`~prometheus_client.CollectorRegistry`.

    Parameters
    ----------
    registry
        Defaults to a new private registry, so two apps (or two tests) in one
        process never share or collide on metrics.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.bars = Counter("tradelab_bars_processed", "Bars processed by the engine",
                            ["symbol"], registry=r)
        self.orders = Counter("tradelab_orders", "Order state transitions by target state",
                              ["state"], registry=r)
        self.risk_denials = Counter("tradelab_risk_denials", "Orders denied by risk rules",
                                    ["rule"], registry=r)
        self.risk_alerts = Counter("tradelab_risk_alerts", "Risk alerts", ["rule", "severity"],
                                   registry=r)
        self.submit_latency = Histogram("tradelab_order_submit_latency_seconds",
                                        "Bar arrival to broker acknowledgement (wall clock)",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.fill_latency = Histogram("tradelab_fill_latency_seconds",
                                      "Order submission to fill (wall clock)",
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.equity = Gauge("tradelab_equity", "Latest mark-to-market equity", ["account"], registry=r)
        self.last_bar = Gauge("tradelab_last_bar_timestamp_seconds",
                              "Wall-clock time the last bar was processed", registry=r)
        self.notifications = Counter("tradelab_notifications", "Notification outcomes",
                                     ["channel", "status"], registry=r)
        self.notification_failures = Counter("tradelab_notification_failures",
                                             "Notifications not delivered (failed or dropped)",
                                             ["channel"], registry=r)
        self.job_runs = Counter("tradelab_job_runs", "Job runs by outcome", ["job", "status"],
                                registry=r)
        self.job_duration = Histogram("tradelab_job_duration_seconds", "Job run durations",
                                      ["job", "status"], buckets=JOB_BUCKETS, registry=r)
        # The data-quality gate (tradelab.data.quality): kind is rejected, dropped,
        # repaired, gap or stale; reason is the validation kind or the feed's reject reason.
        self.data_quality = Counter("tradelab_data_quality", "Data-quality outcomes",
                                    ["kind", "source", "symbol", "reason"], registry=r)
        self.data_quality_breaches = Counter("tradelab_data_quality_breaches",
                                             "[data.quality] thresholds breached",
                                             ["threshold", "action"], registry=r)
        self.feed_staleness = Gauge("tradelab_feed_staleness_seconds",
                                    "Seconds the engine waited for the latest fresh bar",
                                    ["source", "symbol"], registry=r)
        self._submitted: dict[str, float] = {}
        self._cache: CacheCollector | None = None

    # -- feeding -----------------------------------------------------------------------
    def attach(self, bus: Any) -> None:
        """Subscribe to engine events on ``bus``."""
        bus.subscribe(BarReceived, self._on_bar)
        bus.subscribe(OrderEvent, self._on_order)
        bus.subscribe(OrderSubmitted, self._on_submitted)
        bus.subscribe(OrderFilled, self._on_filled)
        bus.subscribe(OrderRejected, self._on_rejected)
        bus.subscribe(RiskAlert, self._on_risk)
        bus.subscribe(EquitySnapshotted, self._on_equity)
        from tradelab.data.quality import FeedStaleness, QualityBreached, QualityRecorded

        bus.subscribe(QualityRecorded, self._on_quality)
        bus.subscribe(QualityBreached, self._on_breach)
        bus.subscribe(FeedStaleness, self._on_staleness)

    def watch_cache(self, cache: Any) -> None:
        """Expose ``cache.stats()`` hits and misses (once per registry)."""
        if self._cache is None:
            self._cache = CacheCollector(cache)
            self.registry.register(self._cache)

    def on_notification(self, outcome: Any) -> None:
        """A :class:`~tradelab.notify.notifier.Notifier` listener."""
        self.notifications.labels(outcome.channel, outcome.status).inc()
        if outcome.status != "sent":
            self.notification_failures.labels(outcome.channel).inc()

    def job_finished(self, job: str, status: str, seconds: float | None) -> None:
        """Record one job run's outcome and duration."""
        self.job_runs.labels(job, status).inc()
        if seconds is not None:
            self.job_duration.labels(job, status).observe(max(seconds, 0.0))

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """A sample's current value (e.g. ``tradelab_orders_total``), for checks and tests."""
        return self.registry.get_sample_value(name, labels or {})

    # -- handlers (engine thread: keep them cheap) --------------------------------------
    def _on_bar(self, ev: BarReceived) -> None:
        self.bars.labels(ev.symbol).inc()
        self.last_bar.set(time.time())

    def _on_order(self, ev: OrderEvent) -> None:
        self.orders.labels(ev.to_state).inc()

    def _on_submitted(self, ev: OrderSubmitted) -> None:
        self._submitted[ev.client_order_id] = time.perf_counter()
        if ev.latency_s:
            self.submit_latency.observe(ev.latency_s)

    def _on_filled(self, ev: OrderFilled) -> None:
        started = self._submitted.pop(ev.client_order_id, None)
        if started is not None:
            self.fill_latency.observe(time.perf_counter() - started)

    def _on_rejected(self, ev: OrderRejected) -> None:
        self._submitted.pop(ev.client_order_id, None)
        if ev.by == "risk":
            self.risk_denials.labels(_rule(ev.reason)).inc()

    def _on_risk(self, ev: RiskAlert) -> None:
        self.risk_alerts.labels(ev.rule, ev.severity).inc()

    def _on_equity(self, ev: EquitySnapshotted) -> None:
        self.equity.labels(ev.account).set(float(ev.equity))

    def _on_quality(self, ev: Any) -> None:
        self.data_quality.labels(ev.kind, ev.source, ev.symbol, ev.reason).inc(ev.count)

    def _on_breach(self, ev: Any) -> None:
        self.data_quality_breaches.labels(ev.breach.threshold, ev.action).inc()

    def _on_staleness(self, ev: Any) -> None:
        self.feed_staleness.labels(ev.source, ev.symbol).set(ev.seconds)


def _rule(reason: str) -> str:
    # Risk rejections read "<rule>: <detail>"; keep the label set small and stable.
    head = (reason or "unknown").split(":", 1)[0].strip()
    return head if head and len(head) <= 40 and " " not in head else "other"
