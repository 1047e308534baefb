"""The numba kernels behind the indicators give numpy's bits (research/live parity)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.indicator_reference import reference_cross, reference_mean
from tradelab.strategy import indicators as ind


def _series() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = []
    for trial in range(12):
        n = int(rng.integers(1, 700))
        v = rng.normal(size=n) * 10.0 ** rng.integers(-5, 9, size=n)  # wide dynamic range
        if trial % 3 == 0:
            v[rng.integers(0, n, size=max(1, n // 20))] = np.nan
        if trial % 4 == 0:
            v[rng.integers(0, n, size=max(1, n // 10))] = -0.0
        if trial % 5 == 0:
            v[rng.integers(0, n, size=max(1, n // 50))] = np.inf
        out.append(v)
    base = rng.normal(size=400).cumsum() + 100
    readonly = base.copy()
    readonly.flags.writeable = False
    return [*out, base, base[::3], readonly, np.full(40, -0.0), np.zeros(40), np.array([]),
            np.array([1.5])]


@pytest.fixture(scope="module")
def kernels() -> None:
    ind.warm_up()
    assert ind._NB[0], "numba kernels unavailable"


def test_window_mean_kernel_is_bit_identical_to_numpy(kernels) -> None:
    for v in _series():
        for w in [*range(1, 131), 200, len(v), len(v) + 1]:
            if w < 1:
                continue
            assert ind.sma(v, w).tobytes() == reference_mean(v, w).tobytes(), (len(v), w)


def test_window_mean_of_negative_zeros_is_positive_zero_as_in_numpy(kernels) -> None:
    v = np.full(20, -0.0)
    for w in (1, 7, 8, 9, 16):
        assert ind.sma(v, w).tobytes() == reference_mean(v, w).tobytes()
        assert not np.signbit(ind.sma(v, w)[-1])


def test_cross_kernels_equal_the_shift_formulas(kernels) -> None:
    for v in _series():
        for w in (2, 3, 10):
            a, b = ind.sma(v, w), ind.sma(v, 2 * w + 1)
            assert (ind.crossed_above(a, b) == reference_cross(a, b, True)).all()
            assert (ind.crossed_below(a, b) == reference_cross(a, b, False)).all()


def test_numpy_fallback_gives_the_same_bits(kernels, monkeypatch) -> None:
    """Without numba the indicators take their numpy formulas: same values."""
    series = _series()
    fast = [(ind.sma(v, 10), ind.sma(v, 30)) for v in series]
    monkeypatch.setattr(ind, "_NB", [False])
    monkeypatch.setattr(ind, "_WINDOW_MEAN", None)
    monkeypatch.setattr(ind, "_CROSSED_ABOVE", None)
    monkeypatch.setattr(ind, "_CROSSED_BELOW", None)
    for v, (f, s) in zip(series, fast, strict=True):
        assert ind.sma(v, 10).tobytes() == f.tobytes()
        assert ind.sma(v, 30).tobytes() == s.tobytes()
        assert (ind.crossed_above(f, s) == reference_cross(f, s, True)).all()
        assert (ind.crossed_below(f, s) == reference_cross(f, s, False)).all()


def test_results_are_ordinary_writable_arrays(kernels) -> None:
    buf = np.arange(40.0).reshape(1, 40)
    view = buf.view()
    view.flags.writeable = False  # the engine's read-only window columns
    col = view[0, 3:34]
    mean = ind.sma(col, 10)
    cross = ind.crossed_above(mean, ind.sma(col, 30))
    assert mean.dtype == np.float64 and mean.flags.writeable and mean.shape == (31,)
    assert cross.dtype == np.bool_ and cross.flags.writeable and cross.shape == (31,)
