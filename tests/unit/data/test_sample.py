"""The embedded sample source: real S&P 500 and NASDAQ daily bars."""

from __future__ import annotations

import pandas as pd
import pytest

from tradelab.data.sample import SampleSource
from tradelab.data.validate import contract_problems, validate_bars
from tradelab.errors import DataSourceError


@pytest.mark.parametrize("symbol", ["SPX", "IXIC"])
def test_shape_and_contract(symbol: str) -> None:
    bars = SampleSource().load(symbol)
    assert contract_problems(bars) == []
    assert len(bars) == 5031
    assert bars.index[0] == pd.Timestamp("1999-01-04", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2018-12-31", tz="UTC")
    _, report = validate_bars(bars, "raise", source="sample", symbol=symbol)
    assert report.ok


def test_spx_known_close(spx: pd.DataFrame) -> None:
    # S&P 500 closed 2018 at 2506.85
    assert spx.loc["2018-12-31", "close"].item() == pytest.approx(2506.85, abs=0.01)


def test_slicing_and_caret_symbol() -> None:
    bars = SampleSource().load("^ixic", start="2008-01-01", end="2008-12-31")
    assert len(bars) == 253
    assert bars.index.min() >= pd.Timestamp("2008-01-01", tz="UTC")


def test_errors_name_what_is_available() -> None:
    src = SampleSource()
    with pytest.raises(DataSourceError, match="available: SPX, IXIC"):
        src.load("DJI")
    with pytest.raises(DataSourceError, match="only '1d'"):
        src.load("SPX", interval="1h")
