"""The composition root: the only place that picks concrete classes.

``build(settings)`` wires the cache tiers, data sources, market-data service,
strategy registry and execution convention from configuration;
:meth:`App.engine` turns settings into a ready engine (feed, broker by name,
order manager, risk with account and per-strategy limits, kill switch,
data-quality gate, recorder) and :meth:`App.session` attaches the observers
(metrics, health, notifications). Notebooks, the CLI, jobs, the API and the
dashboard all start here.

Names are resolved on first use (:mod:`tradelab._lazy`): a command that needs the
registry does not import the engine, brokers and feeds too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradelab._lazy import lazy_exports

if TYPE_CHECKING:  # the real names, for the type checker; at run time they load on first use
    from tradelab.app.brokers import BROKERS, make_broker, register_broker
    from tradelab.app.parts import build_cache, build_registry, build_sources, build_store, risk_limits
    from tradelab.app.root import App, Session, build, drift_reports
    from tradelab.app.services import (
        build_api,
        build_dashboard_services,
        build_gate,
        build_jobs,
        build_metrics,
        build_notifier,
        build_scheduler,
        runner_jobs,
    )
    from tradelab.app.wiring import assemble_engine

_EXPORTS = {
    "BROKERS": "brokers", "make_broker": "brokers", "register_broker": "brokers",
    "build_cache": "parts", "build_registry": "parts", "build_sources": "parts",
    "build_store": "parts", "risk_limits": "parts",
    "App": "root", "Session": "root", "build": "root", "drift_reports": "root",
    "build_api": "services", "build_dashboard_services": "services", "build_gate": "services",
    "build_jobs": "services", "build_metrics": "services", "build_notifier": "services",
    "build_scheduler": "services", "runner_jobs": "services",
    "assemble_engine": "wiring",
}
__all__ = ["BROKERS", "App", "Session", "assemble_engine", "build", "build_api", "build_cache",
           "build_dashboard_services", "build_gate", "build_jobs", "build_metrics", "build_notifier",
           "build_registry", "build_scheduler", "build_sources", "build_store", "drift_reports",
           "make_broker",
           "register_broker", "risk_limits", "runner_jobs"]
assert sorted(__all__) == sorted(_EXPORTS)  # one list of names, kept in step with the table


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
