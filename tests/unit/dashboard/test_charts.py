"""The charts' ranges are set with their data (the browser computes and sends back none)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pandas as pd
from bokeh.models import Range1d
from hypothesis import given
from hypothesis import strategies as st

from tradelab.dashboard.charts import DailyChart, EquityChart, PriceChart, fit


def _bounds(rng: Any) -> tuple[float, float]:
    return cast(float, rng.start), cast(float, rng.end)


FINITE = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


@given(st.lists(FINITE, min_size=1, max_size=50), st.lists(FINITE, max_size=50))
def test_fit_spans_every_value_with_room(a: list[float], b: list[float]) -> None:
    rng = Range1d(start=0, end=1)
    fit(rng, np.array(a), np.array(b))
    values = a + b
    start, end = _bounds(rng)
    assert start <= min(values) and end >= max(values)
    assert start < end
    assert (rng.reset_start, rng.reset_end) == _bounds(rng)


def test_fit_pads_by_the_span_and_keeps_the_range_without_values() -> None:
    rng = Range1d(start=0, end=1)
    fit(rng, np.array([100.0, 200.0]))
    assert _bounds(rng) == (95.0, 205.0)
    fit(rng, np.array([]), np.array([np.nan]))
    assert _bounds(rng) == (95.0, 205.0)  # nothing to draw: left as it was
    fit(rng, np.array([50.0, 50.0]))
    assert _bounds(rng) == (47.5, 52.5)


def test_each_chart_sets_its_ranges_with_its_data() -> None:
    at = pd.to_datetime(["2024-01-02 21:00", "2024-01-03 21:00", "2024-01-04 21:00"], utc=True)
    ms = at.tz_localize(None).to_numpy().astype("datetime64[ms]").astype("int64")
    equity = EquityChart()
    equity.update(pd.DataFrame({"at": at, "equity": [100.0, 110.0, 90.0]}))
    assert _bounds(equity.figure.y_range) == (89.0, 111.0)
    x0, x1 = _bounds(equity.figure.x_range)
    assert x0 < ms[0] and x1 > ms[-1]
    daily = DailyChart()
    daily.update(pd.DataFrame({"day": ["2024-01-02", "2024-01-03"], "pnl": [5.0, -15.0]}))
    assert _bounds(daily.figure.y_range) == (-16.0, 6.0)
    price = PriceChart()
    bars = pd.DataFrame({"at": at, "open": [10.0, 11.0, 12.0], "high": [11.0, 12.0, 13.0],
                         "low": [9.0, 10.0, 11.0], "close": [11.0, 12.0, 12.5]})
    price.update(bars, {"SMA(2)": [np.nan, 11.5, 12.25]},
                 pd.DataFrame({"at": at[:1], "side": ["buy"], "price": [8.0]}))
    assert _bounds(price.figure.y_range) == (7.75, 13.25)
    day = 86_400_000
    x0, x1 = _bounds(price.figure.x_range)
    assert x0 < ms[0] - day / 2 < ms[-1] + day / 2 < x1
