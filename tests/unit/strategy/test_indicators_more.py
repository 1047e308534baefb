"""The added indicators against independent references on real data, broadcasting,
and the property that makes them usable live: the value at bar t computed from only
the declared warmup bars is bit-identical to the full-history one."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradelab.strategy import _memo
from tradelab.strategy import indicators as ind

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
TIGHT = 1e-12  # relative: our window formulas against the same formula in pandas/numpy


@pytest.fixture(scope="module")
def ixic() -> pd.DataFrame:
    from tradelab.data.sample import SampleSource

    return SampleSource().load("IXIC")


@pytest.fixture(scope="module")
def orcl() -> pd.DataFrame:
    df = pd.read_csv(FIXTURES / "orcl-2014-yahoo.csv", index_col="Date", parse_dates=True)
    return df.rename(columns=str.lower)


def _sampled(n: int, first: int, step: int = 97) -> range:
    return range(first, n, step)


def _seeded_ewm(window: np.ndarray, n: int, alpha: float) -> float:
    """pandas' recursion over one window, seeded with the mean of its first n values."""
    seq = pd.Series(np.r_[window[:n].mean(), window[n:]])
    return float(seq.ewm(alpha=alpha, adjust=False).mean().iloc[-1])


# -- references on real data ----------------------------------------------------------
@pytest.mark.parametrize("n", [2, 12, 26, 50])
def test_ema_is_pandas_ewm_over_its_window(spx: pd.DataFrame, n: int) -> None:
    close = spx["close"].to_numpy()
    ours = ind.ema(close, n)
    k = ind.ema_warmup(n)
    assert k == 7 * n + 6
    assert np.isnan(ours[:k - 1]).all() and not np.isnan(ours[k - 1:]).any()
    for t in _sampled(len(close), k - 1):
        ref = _seeded_ewm(close[t - k + 1:t + 1], n, 2 / (n + 1))
        assert ours[t] == pytest.approx(ref, rel=TIGHT), t


@pytest.mark.parametrize("n", [5, 12, 26])
def test_ema_is_within_its_documented_bound_of_full_history_ewm(spx: pd.DataFrame, n: int) -> None:
    """The truncation error is at most exp(-settle) times the range of the prices seen."""
    close = spx["close"]
    ours = ind.ema(close, n)
    full = close.ewm(span=n, adjust=False).mean().to_numpy()
    span = (close.cummax() - close.cummin()).to_numpy()
    # the full-history ewm is itself seeded (with the first close): let that settle too
    ok = np.arange(len(close)) >= 2 * ind.ema_warmup(n)
    err = np.abs(ours - full)[ok]
    assert (err <= math.exp(-ind.SETTLE) * span[ok] + 1e-9).all()
    assert np.nanmax(err / full[ok]) < 1e-6


@pytest.mark.parametrize("n", [7, 14])
def test_atr_is_wilder_smoothing_of_the_true_range(ixic: pd.DataFrame, n: int) -> None:
    h, lo, c = (ixic[k].to_numpy() for k in ("high", "low", "close"))
    prev = pd.Series(c).shift(1).to_numpy()
    tr = np.maximum.reduce([h - lo, np.abs(h - prev), np.abs(lo - prev)])
    ours = ind.atr(ixic["high"], ixic["low"], ixic["close"], n)
    k = ind.wilder_warmup(n)
    assert ind.atr_warmup(n) == k + 1 == 13 * n + 1
    assert np.isnan(ours[:k]).all() and not np.isnan(ours[k:]).any()
    for t in _sampled(len(c), k):
        assert ours[t] == pytest.approx(_seeded_ewm(tr[t - k + 1:t + 1], n, 1 / n), rel=TIGHT)


@pytest.mark.parametrize("n", [3, 14])
def test_rsi_wilder_matches_pandas_wilder_smoothing(spx: pd.DataFrame, n: int) -> None:
    close = spx["close"].to_numpy()
    delta = np.diff(close, prepend=np.nan)
    gain, loss = np.clip(delta, 0, None), np.clip(-delta, 0, None)
    ours = ind.rsi_wilder(close, n)
    k = ind.wilder_warmup(n)
    assert np.isnan(ours[:k]).all() and ((ours[k:] >= 0) & (ours[k:] <= 100)).all()
    for t in _sampled(len(close), k):
        g = _seeded_ewm(gain[t - k + 1:t + 1], n, 1 / n)
        lo = _seeded_ewm(loss[t - k + 1:t + 1], n, 1 / n)
        assert ours[t] == pytest.approx(100 - 100 / (1 + g / lo), rel=TIGHT)
    # the simple-average rsi is unchanged and a different indicator
    assert not np.allclose(ind.rsi(close, n)[k:], ours[k:])


def test_macd_is_its_three_emas(orcl: pd.DataFrame) -> None:
    close = orcl["close"].to_numpy()
    m = ind.macd(close, 3, 6, 4)
    line = ind.ema(close, 3) - ind.ema(close, 6)
    np.testing.assert_array_equal(m.line, line)
    np.testing.assert_array_equal(m.signal, ind.ema(line, 4))
    np.testing.assert_array_equal(m.hist, line - m.signal)
    first = ind.macd_warmup(3, 6, 4) - 1
    assert np.isnan(m.signal[:first]).all() and not np.isnan(m.signal[first:]).any()
    assert ind.macd_warmup() == 256


@pytest.mark.parametrize("n", [2, 10, 30])
def test_wma_matches_weighted_rolling_dot(orcl: pd.DataFrame, n: int) -> None:
    close = orcl["close"]
    w = np.arange(1, n + 1, dtype=float)
    ref = close.rolling(n).apply(lambda a: a @ w / w.sum(), raw=True).to_numpy()
    np.testing.assert_allclose(ind.wma(close, n), ref, rtol=TIGHT, equal_nan=True)


@pytest.mark.parametrize("n", [3, 20, 100])
@pytest.mark.parametrize("ddof", [0, 1])
def test_rolling_std_matches_numpy_and_pandas(spx: pd.DataFrame, n: int, ddof: int) -> None:
    close = spx["close"]
    ours = ind.rolling_std(close, n, ddof=ddof)
    v = close.to_numpy()
    for t in _sampled(len(v), n - 1, 31):  # numpy's two-pass std of each window
        assert ours[t] == pytest.approx(np.std(v[t - n + 1:t + 1], ddof=ddof), rel=TIGHT, abs=1e-12)
    # pandas' online algorithm carries ~1e-10 of residue of its own
    np.testing.assert_allclose(ours, close.rolling(n).std(ddof=ddof).to_numpy(),
                               rtol=1e-9, atol=1e-7, equal_nan=True)


def test_bollinger_and_zscore_match_pandas(spx: pd.DataFrame) -> None:
    close = spx["close"]
    mean = close.rolling(20).mean().to_numpy()
    b = ind.bollinger(close, 20, 2.0)  # ddof=0: Bollinger's population deviation
    np.testing.assert_allclose(b.mid, mean, rtol=TIGHT, equal_nan=True)
    std0 = close.rolling(20).std(ddof=0).to_numpy()
    np.testing.assert_allclose(b.upper, mean + 2 * std0, rtol=1e-11, equal_nan=True)
    np.testing.assert_allclose(b.lower, mean - 2 * std0, rtol=1e-11, equal_nan=True)
    z = ind.zscore(close, 20)  # ddof=1, as pandas
    ref = (close - close.rolling(20).mean()) / close.rolling(20).std()
    np.testing.assert_allclose(z, ref.to_numpy(), rtol=1e-8, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("n", [5, 60])
def test_rolling_ols_matches_polyfit_per_window(spx: pd.DataFrame, ixic: pd.DataFrame,
                                                n: int) -> None:
    both = pd.concat([spx["close"], ixic["close"]], axis=1, keys=["y", "x"]).dropna()
    y, x = both["y"].to_numpy(), both["x"].to_numpy()
    fit = ind.rolling_ols(y, x, n)
    for t in _sampled(len(y), n - 1, 53):
        beta, alpha = np.polyfit(x[t - n + 1:t + 1], y[t - n + 1:t + 1], 1)
        assert fit.beta[t] == pytest.approx(beta, rel=1e-9)
        assert fit.alpha[t] == pytest.approx(alpha, rel=1e-9, abs=1e-6)
        assert fit.resid[t] == pytest.approx(y[t] - (alpha + beta * x[t]), abs=1e-6)


# -- broadcasting, NaNs -----------------------------------------------------------------
CALLS: dict[str, Callable[..., object]] = {
    "ema": lambda b, p: ind.ema(b["close"], p),
    "wma": lambda b, p: ind.wma(b["close"], p),
    "rolling_std": lambda b, p: ind.rolling_std(b["close"], p),
    "zscore": lambda b, p: ind.zscore(b["close"], p),
    "rsi_wilder": lambda b, p: ind.rsi_wilder(b["close"], p),
    "atr": lambda b, p: ind.atr(b["high"], b["low"], b["close"], p),
    "bollinger": lambda b, p: ind.bollinger(b["close"], p).upper,
    "macd": lambda b, p: ind.macd(b["close"], p, 2 * p, p).signal,
    "rolling_ols": lambda b, p: ind.rolling_ols(b["close"], b["open"], p).resid,
}
WARMUP: dict[str, Callable[[int], int]] = {
    "ema": ind.ema_warmup, "atr": ind.atr_warmup, "rsi_wilder": ind.rsi_wilder_warmup,
    "macd": lambda p: ind.macd_warmup(p, 2 * p, p),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_parameter_arrays_give_one_column_per_combination(spx: pd.DataFrame, name: str) -> None:
    bars = spx.iloc[-1500:]
    params = np.array([5, 3, 5, 8])
    out = np.asarray(CALLS[name](bars, params))
    assert out.shape == (len(bars), 4) and out.flags.c_contiguous
    for j, p in enumerate(params):
        np.testing.assert_array_equal(out[:, j], CALLS[name](bars, int(p)))


def test_two_dimensional_inputs_take_one_parameter_per_column(spx: pd.DataFrame) -> None:
    close = spx["close"].to_numpy()[-800:]
    grid = np.column_stack([close, close * 2, close[::-1]])
    out = ind.ema(grid, np.array([3, 4, 5]))
    for j, n in enumerate((3, 4, 5)):
        np.testing.assert_array_equal(out[:, j], ind.ema(grid[:, j], n))
    np.testing.assert_array_equal(ind.wma(grid, 6)[:, 1], ind.wma(grid[:, 1], 6))
    with pytest.raises(ValueError, match="columns"):
        ind.ema(grid, np.array([3, 4]))


def test_bollinger_broadcasts_the_width_too(spx: pd.DataFrame) -> None:
    close = spx["close"].to_numpy()
    b = ind.bollinger(close, 20, np.array([1.0, 2.0, 2.5]))
    assert b.upper.shape == (len(close), 3)
    np.testing.assert_array_equal(b.upper[:, 2], ind.bollinger(close, 20, 2.5).upper)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_leading_nans_only_delay_the_values(spx: pd.DataFrame, name: str) -> None:
    """A NaN prefix (a symbol that starts trading later) shifts the series, bit for bit."""
    bars = spx.iloc[-600:]
    padded = pd.concat([bars.iloc[:37] * np.nan, bars])
    clean = np.asarray(CALLS[name](bars, 6))
    late = np.asarray(CALLS[name](padded, 6))
    assert np.isnan(late[:37]).all()
    np.testing.assert_array_equal(late[37:], clean)


def test_a_nan_inside_the_window_gives_nan_for_that_window_only(spx: pd.DataFrame) -> None:
    close = spx["close"].to_numpy()[-400:].copy()
    close[200] = np.nan
    out = ind.ema(close, 4)
    k = ind.ema_warmup(4)
    assert np.isnan(out[200:200 + k]).all() and not np.isnan(out[200 + k:]).any()
    assert not np.isnan(out[k - 1:200]).any()


# -- research (full history) == live (the last `warmup` bars) -------------------------------
def _need(name: str, p: int) -> int:
    return WARMUP[name](p) if name in WARMUP else p  # the finite windows need their length


@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_declared_warmup_reproduces_the_full_history_value(spx: pd.DataFrame,
                                                                name: str) -> None:
    for p in (3, 9):
        full = np.asarray(CALLS[name](spx, p))
        need = _need(name, p)
        for t in range(need - 1, len(spx), 409):
            last = np.asarray(CALLS[name](spx.iloc[t - need + 1:t + 1], p))[-1]
            assert last.tobytes() == full[t].tobytes(), (name, p, t)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(CALLS)), p=st.integers(2, 12), frac=st.floats(0, 1))
def test_warmup_equivalence_holds_anywhere(ixic: pd.DataFrame, name: str, p: int,
                                           frac: float) -> None:
    need = _need(name, p)
    bars = ixic.iloc[:need + 300]
    t = need - 1 + int(frac * 300)
    full = np.asarray(CALLS[name](bars, p))[t]
    live = np.asarray(CALLS[name](bars.iloc[t - need + 1:t + 1], p))[-1]
    assert live.tobytes() == full.tobytes()
    if need > 1:  # and one bar fewer is not enough: the first value needs them all
        assert np.isnan(np.asarray(CALLS[name](bars.iloc[t - need + 2:t + 1], p))[-1])


# -- the sweep memo and the 2-D crossing kernel ----------------------------------------------
def test_memo_gives_the_same_bits_and_keys_on_content(spx: pd.DataFrame) -> None:
    _memo.clear()
    close = spx["close"].to_numpy().copy()
    windows = np.array([5, 200, 5])
    first = ind.sma(close, windows)
    again = ind.sma(close, windows)
    np.testing.assert_array_equal(first, again)
    assert again.flags.writeable  # the caller's copy, not the memo's entry
    close[-1] += 1.0  # same buffer, new content: recomputed
    assert ind.sma(close, windows)[-1, 0] != first[-1, 0]
    np.testing.assert_array_equal(ind.ema(close, np.array([3, 4]))[:, 0], ind.ema(close, 3))


def test_two_dimensional_crossings_equal_the_shift_formula(spx: pd.DataFrame) -> None:
    close = spx["close"].to_numpy()
    fast, slow = ind.sma(close, np.array([5, 10, 20])), ind.sma(close, np.array([30, 50, 30]))
    for fn, up in ((ind.crossed_above, True), (ind.crossed_below, False)):
        prev_f, prev_s = ind.shift(fast), ind.shift(slow)
        with np.errstate(invalid="ignore"):
            ref = ((fast > slow) & (prev_f <= prev_s)) if up else ((fast < slow) & (prev_f >= prev_s))
        np.testing.assert_array_equal(fn(fast, slow), ref)
        col = ind.ema(close, 8)  # a 1-D series against per-combination columns
        with np.errstate(invalid="ignore"):
            ref = ((col[:, None] > slow) & (ind.shift(col)[:, None] <= prev_s)) if up else \
                ((col[:, None] < slow) & (ind.shift(col)[:, None] >= prev_s))
        np.testing.assert_array_equal(fn(col, slow), ref)
