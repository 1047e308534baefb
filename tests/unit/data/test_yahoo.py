"""YFinanceSource offline: frames shaped exactly like yfinance 1.7's output, no network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradelab.data.validate import contract_problems
from tradelab.data.yahoo import YFinanceSource, frame_to_bars
from tradelab.errors import DataSourceError

PRICE_COLS = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]


@pytest.fixture()
def history(fixtures: Path) -> pd.DataFrame:
    """Real ORCL rows in the shape of ``Ticker.history(auto_adjust=False, actions=False)``:
    daily index at local midnight in the exchange zone, named ``Date``; Volume int64."""
    raw = pd.read_csv(fixtures / "orcl-2014-yahoo.csv")
    index = pd.DatetimeIndex(pd.to_datetime(raw["Date"])).tz_localize("America/New_York")
    frame = raw[PRICE_COLS].set_axis(index.rename("Date"), axis=0)
    return frame.astype({"Volume": "int64"})


def _download(history: pd.DataFrame, group_by: str = "column") -> pd.DataFrame:
    """The shape of ``yf.download(["ORCL", "MSFT"], auto_adjust=False)`` (daily: naive index)."""
    frames = {"ORCL": history.tz_localize(None), "MSFT": history.tz_localize(None) * 2}
    data = pd.concat(frames.values(), axis=1, keys=frames.keys(), names=["Ticker", "Price"])
    if group_by == "column":
        data.columns = data.columns.swaplevel(0, 1)
        data = data.sort_index(level=0, axis=1)
    return data


def test_history_frame_becomes_contract_bars_on_utc_dates(history: pd.DataFrame) -> None:
    bars = frame_to_bars(history, "ORCL", adjust="raw")
    assert contract_problems(bars) == []
    # the exchange date is kept: 2014-01-02 stays 2014-01-02, not 05:00 UTC
    assert bars.index[0] == pd.Timestamp("2014-01-02", tz="UTC")
    np.testing.assert_array_equal(bars["close"].to_numpy(), history["Close"].to_numpy())


def test_adjusted_uses_adj_close(history: pd.DataFrame) -> None:
    bars = frame_to_bars(history, "ORCL", adjust="adjusted")
    np.testing.assert_allclose(bars["close"].to_numpy(), history["Adj Close"].to_numpy())
    factor = history["Adj Close"] / history["Close"]
    np.testing.assert_allclose(bars["low"].to_numpy(), (history["Low"] * factor).to_numpy())


def test_intraday_index_is_converted_not_relabelled(history: pd.DataFrame) -> None:
    intraday = history.iloc[:3].set_axis(
        pd.DatetimeIndex(["2014-01-02 09:30", "2014-01-02 09:31", "2014-01-02 09:32"],
                         tz="America/New_York", name="Datetime"), axis=0)
    bars = frame_to_bars(intraday, "ORCL", adjust="raw", interval="1m")
    assert bars.index[0] == pd.Timestamp("2014-01-02 14:30", tz="UTC")


@pytest.mark.parametrize("group_by", ["column", "ticker"])
def test_multiindex_download_frames_pick_the_symbol(history: pd.DataFrame, group_by: str) -> None:
    data = _download(history, group_by)
    orcl = frame_to_bars(data, "orcl", adjust="raw")
    msft = frame_to_bars(data, "MSFT", adjust="raw")
    pd.testing.assert_frame_equal(orcl, frame_to_bars(history, "ORCL", adjust="raw"))
    np.testing.assert_allclose(msft["close"].to_numpy(), 2 * orcl["close"].to_numpy())


def test_symbol_missing_from_multiindex(history: pd.DataFrame) -> None:
    with pytest.raises(DataSourceError, match=r"'AAPL' not in the result \(got"):
        frame_to_bars(_download(history), "AAPL")


class _Ticker:
    """Stands in for yfinance.Ticker: returns a given frame and records the call."""

    def __init__(self, frame: pd.DataFrame, calls: list[dict[str, Any]]) -> None:
        self.frame, self.calls = frame, calls

    def history(self, **kwargs: Any) -> pd.DataFrame:
        self.calls.append(kwargs)
        return self.frame


def test_load_asks_unadjusted_and_one_day_past_end(history: pd.DataFrame) -> None:
    calls: list[dict[str, Any]] = []
    src = YFinanceSource(ticker_factory=lambda s: _Ticker(history, calls))
    bars = src.load("ORCL", start="2014-01-06", end="2014-01-10")
    assert calls[0]["auto_adjust"] is False and calls[0]["actions"] is False
    assert calls[0]["start"] == "2014-01-06" and calls[0]["end"] == "2014-01-11"
    assert calls[0]["timeout"] == 30.0
    assert list(bars.index.day) == [6, 7, 8, 9, 10]
    np.testing.assert_allclose(bars["close"].to_numpy(),
                               history["Adj Close"].iloc[2:7].to_numpy())  # default adjusted


def test_empty_result_names_the_symbol() -> None:
    # what yfinance returns for an unknown ticker when it hides exceptions
    empty = pd.DataFrame(index=pd.DatetimeIndex([], name="Date"),
                         data={c: np.nan for c in PRICE_COLS})
    src = YFinanceSource(ticker_factory=lambda s: _Ticker(empty, []))
    with pytest.raises(DataSourceError, match=r"yfinance: no bars for symbol 'ZZZZ'"):
        src.load("ZZZZ")


def test_network_unavailable_is_a_clean_error(tmp_path: Path) -> None:
    yf = pytest.importorskip("yfinance")
    from curl_cffi import requests as curl

    yf.set_tz_cache_location(str(tmp_path))  # keep yfinance's tz cache out of $HOME
    # The real client, on a session whose proxy refuses every connection.
    dead = curl.Session(impersonate="chrome",
                        proxies={"http": "http://127.0.0.1:9", "https": "http://127.0.0.1:9"})
    src = YFinanceSource(timeout=2.0, ticker_factory=lambda s: yf.Ticker(s, session=dead))
    with pytest.raises(DataSourceError, match=r"yfinance: could not load 'ORCL'"):
        src.load("ORCL", start="2014-01-01", end="2014-02-01")
