"""Fixtures for data tests: real bars copied into tests/fixtures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tradelab.data.bars import normalize_frame

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture()
def orcl() -> pd.DataFrame:
    """42 real daily Oracle bars (2014), contract format, clean."""
    return normalize_frame(pd.read_csv(FIXTURES / "orcl-2014-yahoo.csv"))
