"""Fixtures: a seeded SQLite store, the dashboard's services and three users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.api.helpers import PASSWORDS, ROOT, SECRET, auth_settings, seed_trading
from tradelab.dashboard.services import DashboardServices, open_services
from tradelab.store import Store
from tradelab.strategy.registry import StrategyRegistry


class RecordingJobs:
    """A jobs backend that records triggers instead of running notebooks."""

    def __init__(self) -> None:
        self.triggered: list[tuple[str, str]] = []

    def jobs(self) -> list[dict[str, Any]]:
        return [{"name": "nightly", "detail": {}}]

    def runs(self, job: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return []

    def trigger(self, name: str, parameters: dict[str, Any], by: str) -> dict[str, Any]:
        self.triggered.append((name, by))
        return {"id": "queued", "job": name, "status": "queued", "detail": {"by": by}}


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'dash.db'}")
    s.upgrade()
    seed_trading(s)
    yield s
    s.close()


@pytest.fixture()
def jobs() -> RecordingJobs:
    return RecordingJobs()


@pytest.fixture()
def services(store: Store, jobs: RecordingJobs) -> DashboardServices:
    registry = StrategyRegistry.discover([ROOT / "strategies"], entry_points=False)
    svc = open_services(store=store, registry=registry, auth=auth_settings(), secret=SECRET,
                        jobs=jobs)
    for name, pw in PASSWORDS.items():
        svc.auth.add_user(name, pw, name, actor="test")
    return svc
