"""PollingFeed over sources whose data grows between polls: a real CSV file, and a fake."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradelab.data.files import FileSource
from tradelab.feeds.base import FeedError
from tradelab.feeds.polling import PollingFeed
from tradelab.interfaces import Bar, LiveFeed
from tradelab.testing import GrowingSource


def times(bars: list[Bar]) -> list[pd.Timestamp]:
    return [pd.Timestamp(b.time) for b in bars]


def write_yahoo(path: Path, bars: pd.DataFrame) -> None:
    """Yahoo-style CSV, replaced atomically (a reader never sees half a line)."""
    out = pd.DataFrame({"Date": bars.index.strftime("%Y-%m-%d"), "Open": bars["open"],
                        "High": bars["high"], "Low": bars["low"], "Close": bars["close"],
                        "Adj Close": bars["close"], "Volume": bars["volume"]})
    tmp = path.with_suffix(".tmp")
    out.to_csv(tmp, index=False, float_format="%.17g")
    os.replace(tmp, path)


def test_polls_a_growing_csv_file_and_delivers_each_new_bar_once(
        tmp_path: Path, spx300: pd.DataFrame) -> None:
    bars = spx300.iloc[:60]
    path = tmp_path / "SPX.csv"
    write_yahoo(path, bars.iloc[:20])
    feed = PollingFeed(FileSource(tmp_path), "SPX", poll_seconds=0.02, end=bars.index[-1])
    assert isinstance(feed, LiveFeed)

    def grow() -> None:      # another process appending a few bars at a time
        while feed.polls < 1:
            time.sleep(0.005)
        for n in (*range(23, 60, 3), 60):
            time.sleep(0.03)
            write_yahoo(path, bars.iloc[:n])

    writer = threading.Thread(target=grow, daemon=True)
    writer.start()
    got = list(feed)
    writer.join(5)
    # the first poll (20 bars) is history; everything after it arrives once, in order
    assert times(got) == list(bars.index[20:])
    assert [tuple(b[2:]) for b in got] == [tuple(r) for r in bars.iloc[20:].itertuples(index=False)]
    assert feed.polls > 5 and feed.stats()["dropped"] == {}
    hist = feed.history("SPX", bars.index[19], 5)   # warmup from the same source
    pd.testing.assert_frame_equal(hist, bars.iloc[15:20], check_freq=False, check_names=False)


def test_start_after_delivers_from_there(spx300: pd.DataFrame) -> None:
    source = GrowingSource(spx300.iloc[:50], visible=50)
    feed = PollingFeed(source, "SPX", poll_seconds=0.0, start_after=spx300.index[39],
                       end=spx300.index[49])
    assert times(list(feed)) == list(spx300.index[40:50])
    # set after construction, as the engine's recovery does on --resume
    resumed = PollingFeed(source, "SPX", poll_seconds=0.0, end=spx300.index[49])
    resumed.start_after = spx300.index[44]
    assert times(list(resumed)) == list(spx300.index[45:50])


def test_malformed_rows_are_counted_once_by_reason(spx300: pd.DataFrame) -> None:
    frame = spx300.iloc[:30].copy()
    frame.iloc[5, frame.columns.get_loc("close")] = np.nan
    frame.iloc[8, frame.columns.get_loc("high")] = frame["low"].iloc[8] * 0.5
    frame.iloc[29, frame.columns.get_loc("open")] = -1.0   # the newest row: refetched each poll
    source = GrowingSource(frame, visible=30)
    feed = PollingFeed(source, "SPX", poll_seconds=0.0, start_after=spx300.index[0] - pd.Timedelta("1D"))
    got: list[Bar] = []
    for bar in feed:
        got.append(bar)
        if len(got) == 27:
            loads = source.loads
            while source.loads < loads + 5:   # more polls of the same rows: counted once
                time.sleep(0.01)
            break
    assert times(got) == [t for i, t in enumerate(frame.index) if i not in (5, 8, 29)]
    assert feed.rejected == {"nan": 1, "high_low": 1, "non_positive": 1}


def test_an_outage_is_retried_with_backoff_and_its_gap_backfilled(spx300: pd.DataFrame) -> None:
    source = GrowingSource(spx300.iloc[:80], visible=10)
    feed = PollingFeed(source, "SPX", poll_seconds=0.01, start_after=spx300.index[4],
                       end=spx300.index[79], backoff_base=0.01, seed=3)
    got: list[Bar] = []
    for bar in feed:
        got.append(bar)
        if len(got) == 5:
            source.fail(4)          # four failed polls while 40 bars appear
            source.publish(40)
        elif len(got) < 5 or len(got) >= 45:
            source.publish(1)
    assert times(got) == list(spx300.index[5:80])
    assert feed.reconnects == 4 and feed.failed_polls == 4
    assert feed.backfilled >= 40 and len(feed.recoveries) == 1


def test_gives_up_after_max_retries(spx300: pd.DataFrame) -> None:
    source = GrowingSource(spx300.iloc[:5], visible=5)
    source.fail(100)
    feed = PollingFeed(source, "SPX", poll_seconds=0.0, backoff_base=0.001, backoff_max=0.005,
                       max_retries=3)
    with pytest.raises(FeedError, match="3 failed reconnects"):
        list(feed)


def test_a_source_that_stops_growing_is_reported_stale(spx300: pd.DataFrame) -> None:
    source = GrowingSource(spx300.iloc[:10], visible=4)
    feed = PollingFeed(source, "SPX", poll_seconds=0.02, stale_after=0.15,
                       start_after=spx300.index[2])
    got: list[Bar] = []
    for bar in feed:
        got.append(bar)
        if len(got) == 1:
            time.sleep(0.5)         # the consumer waits; the source stays silent
            source.publish(1)
        if len(got) == 2:
            break
    assert feed.stale >= 1
    assert times(got) == list(spx300.index[3:5])


def test_hold_newest_waits_for_a_later_bar(spx300: pd.DataFrame) -> None:
    source = GrowingSource(spx300.iloc[:10], visible=6)
    feed = PollingFeed(source, "SPX", poll_seconds=0.0, hold_newest=True,
                       start_after=spx300.index[0], end=spx300.index[8])
    got: list[Bar] = []
    for bar in feed:
        got.append(bar)
        source.publish(1)
    # bar 9 (the newest once 10 are visible) is still forming when bar 8 ends the run
    assert times(got) == list(spx300.index[1:9])
