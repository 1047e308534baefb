"""Shared fixtures. Area-specific fixtures live next to their tests."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent

# Real servers started by the harness: PostgreSQL (pg_server, pg_url, pg_db_url, store_url)
# and Redis (redis_server, redis_url).
pytest_plugins = ["tests.pg", "tests.redis_harness"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/* from the current results")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def spx() -> pd.DataFrame:
    """Real S&P 500 daily bars 1999-2018 from the embedded sample source."""
    from tradelab.data.sample import SampleSource

    return SampleSource().load("SPX")


@pytest.fixture()
def environ(tmp_path: Path) -> dict[str, str]:
    """A clean environment for load_config(): only the project home and a private cache."""
    return {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(tmp_path / "cache"),
            "PATH": os.environ.get("PATH", "")}


@pytest.fixture(scope="session")
def registry(project_root: Path):
    """The shipped strategies (``strategies/``), without entry points."""
    from tradelab.strategy.registry import StrategyRegistry

    return StrategyRegistry.discover([project_root / "strategies"], entry_points=False)
