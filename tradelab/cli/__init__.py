"""The ``tradelab`` command. Heavy imports happen inside commands, not here."""

from __future__ import annotations

from tradelab.cli import (  # noqa: F401  (commands register themselves)
    api_cmd,
    auth_cmd,
    broker_cmd,
    config_cmd,
    dashboard_cmd,
    data_cmd,
    db_cmd,
    demo_cmd,
    engine_cmd,
    feeds_cmd,
    jobs_cmd,
    live_cmd,
    notify_cmd,
    research_cmd,
    risk_cmd,
    strategy_cmd,
    venue_cmd,
)
from tradelab.cli._app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
