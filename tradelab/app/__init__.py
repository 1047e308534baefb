"""The composition root: the only place that picks concrete classes.

``build(settings)`` wires the cache tiers, data sources, market-data service,
strategy registry and execution convention from configuration;
:meth:`App.engine` turns settings into a ready engine (feed, broker by name,
order manager, risk with account and per-strategy limits, kill switch,
data-quality gate, recorder) and :meth:`App.session` attaches the observers
(metrics, health, notifications). Notebooks, the CLI, jobs, the API and the
dashboard all start here.
"""

from tradelab.app.brokers import BROKERS, make_broker, register_broker
from tradelab.app.parts import build_cache, build_registry, build_sources, build_store, risk_limits
from tradelab.app.root import App, Session, build
from tradelab.app.services import (
    build_api,
    build_dashboard_services,
    build_gate,
    build_jobs,
    build_metrics,
    build_notifier,
    runner_jobs,
)
from tradelab.app.wiring import assemble_engine

__all__ = ["BROKERS", "App", "Session", "assemble_engine", "build", "build_api", "build_cache",
           "build_dashboard_services", "build_gate", "build_jobs", "build_metrics", "build_notifier",
           "build_registry", "build_sources", "build_store", "make_broker", "register_broker",
           "risk_limits", "runner_jobs"]
