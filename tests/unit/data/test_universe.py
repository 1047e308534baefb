"""The sample source's 20 large caps (close only), named universes and the panel rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradelab.data.sample import STOCKS, SampleSource, is_close_only
from tradelab.data.universe import (
    UNIVERSES,
    align,
    load_universe,
    panel_from_close,
    universe_symbols,
)
from tradelab.data.validate import contract_problems, validate_bars
from tradelab.errors import DataSourceError


def test_stocks_are_real_close_only_bars() -> None:
    bars = SampleSource().load("KO")
    assert contract_problems(bars) == []
    assert len(bars) == 8313
    assert bars.index[0] == pd.Timestamp("1990-01-02", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2022-12-28", tz="UTC")
    # skfolio's adjusted closes, e.g. KO on the last day of the file
    assert bars["close"].iloc[-1] == pytest.approx(62.609)
    assert (bars["open"] == bars["close"]).all() and (bars["high"] == bars["low"]).all()
    assert (bars["volume"] == 0).all()
    validated, report = validate_bars(bars, "raise", source="sample", symbol="KO")
    assert report.ok
    assert validated.attrs["close_only"] is True  # the mark survives validation
    assert is_close_only(validated) and not is_close_only(SampleSource().load("SPX"))
    # Without the mark, the shape of the data still identifies it.
    stripped = validated.copy()
    stripped.attrs.clear()
    assert is_close_only(stripped)


def test_sample_symbols_and_fingerprints() -> None:
    src = SampleSource()
    assert set(STOCKS) <= set(src.symbols()) and {"SPX", "IXIC"} <= set(src.symbols())
    assert src.fingerprint("PEP").startswith("skfolio-")
    assert src.fingerprint("SPX").startswith("arch-")
    with pytest.raises(DataSourceError, match=r"unknown symbol 'ZZZ'.*KO, LLY"):
        src.load("ZZZ")


def test_universes() -> None:
    assert universe_symbols("kopep") == ("KO", "PEP")
    assert len(universe_symbols("sp20")) == 20 and UNIVERSES["sp20"] == STOCKS
    assert universe_symbols("ko, pep,KO") == ("KO", "PEP")
    assert universe_symbols(["msft", "aapl"]) == ("MSFT", "AAPL")
    with pytest.raises(DataSourceError, match="universe = 'sp500': unknown; known universes: sp20"):
        universe_symbols("sp500")


def test_load_universe_slices_and_validates() -> None:
    bars = load_universe("kopep", start="2020-01-01", end="2020-12-31")
    assert list(bars) == ["KO", "PEP"]
    assert all(len(b) == 253 and contract_problems(b) == [] for b in bars.values())
    assert all(b.attrs.get("close_only") for b in bars.values())
    with pytest.raises(DataSourceError, match=r"source = 'yahoo'.*market="):
        load_universe("kopep", source="yahoo")


def test_alignment_rule_for_missing_bars() -> None:
    t = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC", name="time")
    close = pd.DataFrame({"A": [1.0, 2.0, 3.0, 4.0, 5.0],
                          "B": [np.nan, np.nan, 10.0, np.nan, 12.0]}, index=t)
    panel = panel_from_close(close)
    assert panel.symbols == ("A", "B") and panel.close_only
    # Before the first bar: NaN and not listed; a missing bar: last close held, not tradable.
    assert np.isnan(panel.close["B"].iloc[:2]).all()
    assert panel.listed["B"].tolist() == [False, False, True, True, True]
    assert panel.tradable["B"].tolist() == [False, False, True, False, True]
    assert panel.close["B"].iloc[3] == 10.0 and panel.open["B"].iloc[3] == 10.0
    assert panel.returns()["B"].iloc[3] == 0.0
    head = panel.head(3)
    assert len(head) == 3 and head.index[-1] == t[2]


def test_union_of_timestamps_and_errors() -> None:
    a = SampleSource().load("KO", start="2020-01-01", end="2020-01-10")
    b = a.iloc[::2]
    panel = align({"KO": a, "PEP": b})
    assert panel.index.equals(a.index)
    assert panel.tradable["PEP"].sum() == len(b)
    with pytest.raises(DataSourceError, match="symbol\\(s\\) without bars: PEP"):
        align({"KO": a, "PEP": a.iloc[:0]})


def test_load_universe_through_the_market_data_service(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tradelab.cache.disk import DiskCache
    from tradelab.config import DataSettings
    from tradelab.data.service import MarketData

    market = MarketData({"sample": SampleSource()}, DiskCache(tmp_path), DataSettings())
    first = load_universe("kopep", "sample", "2021-01-01", "2021-12-31", market=market)
    again = load_universe("kopep", "sample", "2021-01-01", "2021-12-31", market=market)
    assert market.stats()["hits"] == 2 and market.stats()["misses"] == 2
    # The close-only mark survives validation and the disk cache (pickled and read back).
    assert all(b.attrs.get("close_only") for b in again.values())
    assert all(first[s].equals(again[s]) for s in ("KO", "PEP"))
