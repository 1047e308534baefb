from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tradelab.strategy import indicators as ind


def test_sma_matches_pandas_and_is_window_local(spx: pd.DataFrame) -> None:
    close = spx["close"]
    for w in (2, 10, 200):
        ours = ind.sma(close, w)
        np.testing.assert_allclose(ours, close.rolling(w).mean().to_numpy(), rtol=1e-12)
        # bit-identical on the last `w` bars alone: the live engine's view
        for i in range(w, len(close), 251):
            assert ind.sma(close.iloc[i - w + 1:i + 1], w)[-1] == ours[i]


def test_array_windows_give_one_column_per_combination(spx: pd.DataFrame) -> None:
    close = spx["close"].iloc[:400]
    out = ind.sma(close, np.array([5, 20, 5]))
    assert out.shape == (400, 3)
    np.testing.assert_array_equal(out[:, 0], ind.sma(close, 5))
    np.testing.assert_array_equal(out[:, 2], out[:, 0])


def test_rsi_bounds_and_reference(spx: pd.DataFrame) -> None:
    close = spx["close"].iloc[:600]
    r = ind.rsi(close, 14)
    assert np.isnan(r[:14]).all() and not np.isnan(r[14:]).any()
    assert ((r[14:] >= 0) & (r[14:] <= 100)).all()
    d = close.diff()
    ref = 100 - 100 / (1 + d.clip(lower=0).rolling(14).mean() / (-d.clip(upper=0)).rolling(14).mean())
    np.testing.assert_allclose(r[14:], ref.to_numpy()[14:], rtol=1e-9)


def test_crosses_fire_only_on_the_crossing_bar() -> None:
    a = np.array([1.0, 2.0, 3.0, 2.0, 1.0, 3.0])
    b = np.full(6, 2.5)
    assert ind.crossed_above(a, b).tolist() == [False, False, True, False, False, True]
    assert ind.crossed_below(a, b).tolist() == [False, False, False, True, False, False]


def test_threshold_arrays_broadcast_per_column() -> None:
    values = np.array([[10.0, 10.0], [40.0, 40.0]])
    assert ind.below(values, np.array([20.0, 50.0])).tolist() == [[True, True], [False, True]]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1, 1e4), min_size=5, max_size=60), st.integers(1, 5))
def test_rolling_extremes_are_causal(xs: list[float], w: int) -> None:
    x = np.array(xs)
    hi = ind.rolling_max(x, w)
    for i in range(len(x)):
        if i + 1 < w:
            assert np.isnan(hi[i])
        else:
            assert hi[i] == max(xs[i + 1 - w:i + 1])
