"""Fixtures for the engine unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradelab.strategy.registry import StrategyRegistry


@pytest.fixture(scope="session")
def registry(project_root: Path) -> StrategyRegistry:
    """The shipped strategies (``strategies/``), without entry points."""
    return StrategyRegistry.discover([project_root / "strategies"], entry_points=False)
