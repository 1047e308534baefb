"""Observability: structured logging, Prometheus metrics, health checks and their HTTP endpoint.

:func:`monitor_engine` wires all of it onto a running engine through its event
bus (no engine code changes)::

    engine = build_paper(args, store)
    mon = monitor_engine(engine, settings, Metrics(), notifier)   # metrics, logs, checks
    try:
        engine.run()
    finally:
        mon.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradelab._lazy import lazy_exports

if TYPE_CHECKING:
    from tradelab.store import Store

_EXPORTS = {
    "FeedWatch": "tradelab.monitor.health", "HealthChecks": "tradelab.monitor.health",
    "HealthMonitor": "tradelab.monitor.health", "broker_check": "tradelab.monitor.health",
    "database_check": "tradelab.monitor.health", "Metrics": "tradelab.monitor.metrics",
    "MonitorSettings": "tradelab.monitor.settings", "monitor_settings": "tradelab.monitor.settings",
}


@dataclass
class Monitoring:
    """The monitoring pieces attached to one engine or scheduler."""

    metrics: Any                 # tradelab.monitor.metrics.Metrics
    checks: Any                  # tradelab.monitor.health.HealthChecks
    health: Any = None           # tradelab.monitor.health.HealthMonitor
    server: Any = None  # tradelab.monitor.http.MonitorServer when [monitor] port != 0

    def close(self) -> None:
        """Stop the periodic checks and the HTTP server."""
        if self.health is not None:
            self.health.stop()
        if self.server is not None:
            self.server.stop()


def start_monitoring(settings: Any, checks: Any, metrics: Any, notifier: Any = None,
                     component: str = "tradelab") -> Monitoring:
    """Start periodic checks (alerting through ``notifier``) and, if configured, the HTTP server.

    Parameters
    ----------
    settings
        :class:`tradelab.config.Settings`; ``[monitor]`` is read from it.
    checks
        The readiness checks to serve and poll.
    metrics
        The :class:`Metrics` to serve (the composition root creates one per process).
    notifier
        Receives ``health_alert`` notifications (``[monitor] alert``).
    """
    from tradelab.monitor.health import HealthMonitor
    from tradelab.monitor.settings import monitor_settings

    cfg = monitor_settings(settings)
    health = HealthMonitor(checks, notifier if cfg.alert else None, cfg.check_interval, component)
    health.start()
    server = None
    if cfg.port:
        from tradelab.monitor.http import MonitorServer

        server = MonitorServer(metrics.registry, checks, cfg.host, cfg.port, component).start()
    return Monitoring(metrics, checks, health, server)


def monitor_engine(engine: Any, settings: Any, metrics: Any, notifier: Any = None,
                   cache: Any = None, store: Store | None = None) -> Monitoring:
    """Attach metrics, event logging, notifications and health checks to ``engine``.

    Parameters
    ----------
    engine
        A :class:`tradelab.engine.Engine` (uses its ``bus``, ``store`` and ``broker``).
    settings
        :class:`tradelab.config.Settings`.
    notifier
        When given, fills, risk alerts and kill-switch engagements are announced
        and failing checks raise ``health_alert``.
    cache
        When given, its ``stats()`` are exposed as cache hit/miss metrics.
    store
        The run's store, checked by the ``database`` health check.
    """
    from tradelab.monitor.health import FeedWatch, HealthChecks, broker_check, database_check
    from tradelab.monitor.logging import log_engine_events
    from tradelab.monitor.settings import monitor_settings

    cfg = monitor_settings(settings)
    metrics.attach(engine.bus)
    log_engine_events(engine.bus)
    if cache is not None:
        metrics.watch_cache(cache)
    feed = FeedWatch(cfg.feed_max_age)
    feed.attach(engine.bus)
    checks = HealthChecks()
    checks.add("feed", feed)
    if store is not None:
        checks.add("database", database_check(store))
    checks.add("broker", broker_check(engine.broker))
    if notifier is not None:
        from tradelab.notify import attach

        attach(engine.bus, notifier)
        listeners = getattr(notifier, "listeners", None)
        if listeners is not None:
            listeners.append(metrics.on_notification)
    return start_monitoring(settings, checks, metrics, notifier,
                            component=f"engine {getattr(engine, 'account', '')}".strip())


__all__ = [*sorted(_EXPORTS), "Monitoring", "monitor_engine", "start_monitoring"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
