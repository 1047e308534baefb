"""ReplayFeed: time order across symbols, resume, history, throttling, close()."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from tradelab.feeds.replay import ReplayFeed
from tradelab.interfaces import Bar
from tradelab.testing import make_bars


def test_bars_arrive_as_floats_in_time_order() -> None:
    bars = make_bars(20, seed=1)
    got = list(ReplayFeed(bars, "X"))
    assert [b.time for b in got] == list(bars.index.to_pydatetime())
    first = got[0]
    assert isinstance(first, Bar) and first.symbol == "X"
    assert (first.open, first.close) == (bars["open"].iloc[0], bars["close"].iloc[0])
    assert all(isinstance(v, float) for v in first[2:])


def test_symbols_are_merged_by_time_and_ties_keep_the_given_order() -> None:
    daily = make_bars(5, seed=1, start="2024-01-01")
    every_other = make_bars(3, seed=2, start="2024-01-01", freq="2D")
    got = [(b.time.day, b.symbol) for b in ReplayFeed({"A": daily, "B": every_other})]
    assert got == [(1, "A"), (1, "B"), (2, "A"), (3, "A"), (3, "B"), (4, "A"), (5, "A"), (5, "B")]
    got = [(b.time.day, b.symbol) for b in ReplayFeed({"B": every_other, "A": daily})]
    assert got[:2] == [(1, "B"), (1, "A")]


def test_start_after_skips_what_a_resumed_run_already_processed() -> None:
    bars = make_bars(10, seed=1)
    cut = bars.index[6]
    feed = ReplayFeed(bars, "X", start_after=cut.to_pydatetime())
    assert len(feed) == 3
    assert [b.time for b in feed] == list(bars.index[7:].to_pydatetime())
    pd.testing.assert_frame_equal(feed.future("X"), bars.iloc[7:])


def test_history_is_the_warmup_before_the_resume_point() -> None:
    bars = make_bars(10, seed=1)
    feed = ReplayFeed(bars, "X")
    pd.testing.assert_frame_equal(feed.history("X", bars.index[5].to_pydatetime(), 3), bars.iloc[3:6])
    assert feed.history("X", None, 3).empty


def test_close_stops_after_the_current_bar() -> None:
    feed = ReplayFeed(make_bars(50, seed=1), "X")
    seen = []
    for bar in feed:
        seen.append(bar)
        if len(seen) == 4:
            feed.close()
    assert len(seen) == 4 and feed.delivered == 4


def test_speed_throttles_to_bars_per_second() -> None:
    feed = ReplayFeed(make_bars(6, seed=1), "X", speed=100.0)
    t0 = time.perf_counter()
    assert len(list(feed)) == 6
    assert time.perf_counter() - t0 >= 0.045  # 5 intervals of 10 ms after the first bar


@pytest.mark.parametrize("speed", [0, -1, "fast"])
def test_bad_speed_is_refused(speed) -> None:
    with pytest.raises(ValueError, match="speed"):
        ReplayFeed(make_bars(3), "X", speed=speed)
