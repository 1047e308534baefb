"""Periodic checks alert on state changes (not on every failed poll); feed staleness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tradelab.monitor.health import FeedWatch, HealthChecks, HealthMonitor, broker_check, database_check
from tradelab.store import Store


class Collect:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], str | None]] = []

    def notify(self, event_type: str, context: dict[str, Any], *, severity: str | None = None,
               reference: str | None = None) -> int:
        self.sent.append((event_type, context, severity))
        return 1


def test_feed_becomes_stale_without_bars() -> None:
    now = [100.0]
    feed = FeedWatch(max_age=30, clock=lambda: now[0])
    assert feed()[0] is True
    now[0] = 131.0
    assert feed()[0] is False
    feed.seen()
    assert feed()[0] is True
    now[0] = 200.0
    ok, detail = feed()
    assert not ok and detail.startswith("69.0s since last bar")


def test_alerts_fire_on_failure_and_recovery_only() -> None:
    state = {"db": True}
    checks = HealthChecks()
    checks.add("database", lambda: (state["db"], "probe"))
    notifier = Collect()
    mon = HealthMonitor(checks, notifier, component="engine paper")
    mon.run_once()
    assert notifier.sent == []
    state["db"] = False
    mon.run_once()
    mon.run_once()
    state["db"] = True
    mon.run_once()
    assert [(e, c["check"], c["ok"], s) for e, c, s in notifier.sent] == [
        ("health_alert", "database", False, "error"), ("health_alert", "database", True, "info")]


def test_database_and_broker_checks(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    assert database_check(store)() == (True, "reachable")
    store.close()
    broken = Store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    checks = HealthChecks()
    checks.add("database", database_check(broken))

    class Broker:
        connected = False

    checks.add("broker", broker_check(Broker()))
    results = {r.name: r for r in checks.run()}
    assert not results["database"].ok and results["database"].detail.startswith("OperationalError")
    assert not results["broker"].ok
