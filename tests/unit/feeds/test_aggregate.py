"""Ticks → bars: OHLCV, the late-tick policy, and ticks derived from real bars aggregating back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradelab.feeds.aggregate import TickAggregator, aggregate, bar_ticks
from tradelab.testing import make_bars

T0 = datetime(2024, 1, 2, 9, 30, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_one_minute_bars_from_ticks() -> None:
    agg = TickAggregator("X", "1m")
    out = []
    for s, p, q in [(0, 10.0, 1), (10, 12.0, 2), (20, 9.0, 1), (59, 11.0, 3), (60, 11.5, 1)]:
        out += agg.add(at(s), p, q)
    assert len(out) == 1
    b = out[0]
    assert (b.symbol, b.time, b.open, b.high, b.low, b.close, b.volume) == \
        ("X", T0, 10.0, 12.0, 9.0, 11.0, 7.0)
    (last,) = agg.flush()
    assert (last.time, last.open, last.close, last.volume) == (at(60), 11.5, 11.5, 1.0)
    assert agg.counts["bars"] == 2


def test_out_of_order_ticks_in_an_open_bar_set_open_and_close_by_time() -> None:
    agg = TickAggregator("X", "1m")
    agg.add(at(30), 10.0, 1)
    agg.add(at(5), 8.0, 1)      # earlier: becomes the open
    agg.add(at(50), 9.0, 1)
    agg.add(at(40), 12.0, 1)    # before the last: not the close
    (b,) = agg.flush()
    assert (b.open, b.high, b.low, b.close) == (8.0, 12.0, 8.0, 9.0)
    assert agg.counts["late_accepted"] == 2


def test_ticks_for_a_closed_bar_are_dropped_and_counted() -> None:
    agg = TickAggregator("X", "1m")
    agg.add(at(10), 10.0, 1)
    (closed,) = agg.add(at(61), 11.0, 1)
    assert agg.add(at(59), 99.0, 5) == []
    assert agg.counts["late_dropped"] == 1
    assert closed.high == 10.0           # a bar, once emitted, is never revised


def test_grace_keeps_a_bar_open_for_late_ticks() -> None:
    agg = TickAggregator("X", "1m", grace="5s")
    agg.add(at(10), 10.0, 1)
    assert agg.add(at(63), 11.0, 1) == []          # within grace: minute 0 still open
    assert agg.add(at(58), 13.0, 1) == []          # accepted into minute 0
    (b,) = agg.add(at(65), 11.0, 1)                # 60 + 5 reached: minute 0 closes
    assert (b.time, b.high, b.close) == (T0, 13.0, 13.0)
    assert agg.counts["late_dropped"] == 0


def test_invalid_ticks_are_dropped_and_counted() -> None:
    agg = TickAggregator("X", "1m")
    for p, q in [(float("nan"), 1), (0.0, 1), (-1.0, 1), (1.0, -1), (1.0, float("inf"))]:
        assert agg.add(at(1), p, q) == []
    assert agg.counts["invalid"] == 5 and agg.flush() == []


def test_empty_intervals_make_no_bar() -> None:
    got = aggregate([(at(0), 1.0, 1), (at(300), 2.0, 1)], "X", "1m")
    assert list(got.index) == [T0, at(300)]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        TickAggregator("X", "0s")
    with pytest.raises(ValueError):
        bar_ticks(T0, 1, 1, 1, 1, 1, "1m", n=3)


def test_real_bars_survive_ticks_and_aggregation(spx: pd.DataFrame) -> None:
    bars = spx.iloc[:500]
    ticks = [tick for t, row in zip(bars.index, bars.itertuples(index=False), strict=True)
             for tick in bar_ticks(t, *row, interval="1d", n=5)]
    got = aggregate(ticks, "SPX", "1d")
    assert list(got.index) == list(bars.index)
    np.testing.assert_array_equal(got[["open", "high", "low", "close"]].to_numpy(),
                                  bars[["open", "high", "low", "close"]].to_numpy())
    np.testing.assert_allclose(got["volume"].to_numpy(), bars["volume"].to_numpy(), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       per_bar=st.integers(4, 12), freq=st.sampled_from(["1min", "1h", "1D"]),
       shuffle=st.booleans(), data=st.data())
def test_property_ticks_from_bars_aggregate_to_the_bars(n: int, seed: int, per_bar: int,
                                                        freq: str, shuffle: bool,
                                                        data: st.DataObject) -> None:
    """Aggregating ticks derived from bars reproduces the bars' OHLCV; shuffling the ticks
    within each bar (a late tick inside its still-open bar) changes nothing."""
    bars = make_bars(n, seed=seed % 10_000, start="2024-01-01", freq=freq)
    ticks = []
    for t, row in zip(bars.index, bars.itertuples(index=False), strict=True):
        chunk = bar_ticks(t, *row, interval=freq, n=per_bar)
        if shuffle:
            chunk = data.draw(st.permutations(chunk))
        ticks += chunk
    got = aggregate(ticks, "X", freq)
    assert list(got.index) == list(bars.index)
    np.testing.assert_array_equal(got[["open", "high", "low", "close"]].to_numpy(),
                                  bars[["open", "high", "low", "close"]].to_numpy())
    np.testing.assert_allclose(got["volume"].to_numpy(), bars["volume"].to_numpy(), rtol=1e-12)
