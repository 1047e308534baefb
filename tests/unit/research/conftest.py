"""Fixtures for the research tests: the shipped strategies and a slice of real bars."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tradelab.strategy.registry import StrategyRegistry

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def registry() -> StrategyRegistry:
    return StrategyRegistry.discover([ROOT / "strategies"], entry_points=False)


@pytest.fixture(scope="session")
def bars(spx: pd.DataFrame) -> pd.DataFrame:
    """The last 1,500 real SPX bars (2013-2018): enough trades, quick to simulate."""
    return spx.iloc[-1500:]
