"""A sweep's signal path (array windows, column-major arrays, one crossing pass per
chunk) gives exactly the flags of a straightforward reference: each combination's
averages from numpy's sliding-window mean (the formula the kernels reproduce) and
its crossings from shifted copies."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.indicator_reference import reference_cross, reference_mean
from tradelab.strategy import _memo
from tradelab.strategy import indicators as ind
from tradelab.strategy.base import Param, Signals, Strategy


class _Cross(Strategy):
    """sma_cross's signals (the shipped file is a strategy plug-in, not importable here)."""

    name = "test_sweep_cross"
    vectorized_params = True
    numpy_columns = True
    fast = Param(10, low=1, high=500)
    slow = Param(30, low=2, high=1000)

    @property
    def warmup(self) -> int:
        return int(self.slow) + 1

    def signals(self, bars: pd.DataFrame) -> Signals:
        close = bars["close"]
        fast, slow = ind.sma(close, self.fast), ind.sma(close, self.slow)
        return Signals(ind.crossed_above(fast, slow), ind.crossed_below(fast, slow))


def _reference(close: np.ndarray, fast: list[int],
               slow: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Entries and exits of each (fast, slow), one combination at a time, warmup masked."""
    entries = np.zeros((len(close), len(fast)), bool)
    exits = np.zeros_like(entries)
    for j, (f, s) in enumerate(zip(fast, slow, strict=True)):
        a, b = reference_mean(close, f), reference_mean(close, s)
        entries[:, j] = reference_cross(a, b, True)
        exits[:, j] = reference_cross(a, b, False)
        entries[:s, j] = exits[:s, j] = False  # warmup = slow + 1 bars: first signal at bar slow
    return entries, exits


combos = st.lists(st.tuples(st.integers(1, 150), st.integers(2, 320)), min_size=1, max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=combos, start=st.integers(0, 3000))
def test_chunk_signals_equal_the_per_combination_reference(spx: pd.DataFrame,
                                                           pairs: list[tuple[int, int]],
                                                           start: int) -> None:
    bars = spx.iloc[start:start + 1200]
    fast, slow = [f for f, _ in pairs], [s for _, s in pairs]
    _memo.clear()  # computed here, not taken from another example's memo
    sig = _Cross.batch({"fast": fast, "slow": slow}).generate(bars)
    entries, exits = _reference(bars["close"].to_numpy(), fast, slow)
    assert np.array_equal(sig.entries.to_numpy(), entries)
    assert np.array_equal(sig.exits.to_numpy(), exits)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(windows=st.lists(st.integers(1, 400), min_size=1, max_size=60),
       seed=st.integers(0, 2**32 - 1))
def test_array_windows_equal_numpys_sliding_mean_bit_for_bit(windows: list[int],
                                                             seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 900))
    values = rng.normal(size=n) * 10.0 ** rng.integers(-4, 8, size=n)  # wide dynamic range
    values[rng.integers(0, n, size=max(1, n // 40))] = np.nan
    out = ind.sma(values, np.array(windows))
    assert out.shape == (n, len(windows))
    for j, w in enumerate(windows):
        assert out[:, j].tobytes() == reference_mean(values, w).tobytes(), (n, w)
        assert out[:, j].tobytes() == ind.sma(values, w).tobytes()  # the engine's scalar call


def test_long_windows_take_the_kernel_on_short_series_with_numpys_bits() -> None:
    """Windows over 128 bars on a few more bars (the engine's window) go to the numba
    kernel, which repeats numpy's recursive pairwise split: same bits."""
    ind.warm_up()
    rng = np.random.default_rng(11)
    for w in (129, 136, 200, 255, 256, 257, 300, 513, 1000):
        for extra in (0, 1, 5, 63):
            v = rng.normal(size=w + extra) * 1e3 + 5e3
            assert ind._use_kernel(len(v), w)
            assert ind.sma(v, w).tobytes() == reference_mean(v, w).tobytes(), (w, extra)
    assert not ind._use_kernel(5000, 200)  # a long history: numpy's own loop


def test_crossings_are_the_same_in_either_memory_layout() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(300, 17)).round(1)  # ties, so <= and >= matter
    b = rng.normal(size=(300, 17)).round(1)
    a[rng.random(a.shape) < 0.05] = np.nan
    for up in (True, False):
        expect = reference_cross(a, b, up)
        cross = ind.crossed_above if up else ind.crossed_below
        by_rows = cross(np.ascontiguousarray(a), np.ascontiguousarray(b))
        by_columns = cross(np.asfortranarray(a), np.asfortranarray(b))
        assert by_columns.flags.f_contiguous and by_rows.flags.c_contiguous
        assert np.array_equal(by_rows, expect) and np.array_equal(by_columns, expect)
        against_price = cross(np.asfortranarray(a), b[:, 0])  # a series against columns
        assert np.array_equal(against_price, reference_cross(a, np.repeat(b[:, :1], 17, 1), up))
