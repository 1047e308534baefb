"""``tradelab check`` covers short flags and per-bar stop fractions: a peeking stop or
short flag fails naming the field, the shipped long/short strategy passes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradelab.strategy.base import Signals, Strategy
from tradelab.strategy.lookahead import check_lookahead


class _Peeks(Strategy):
    """Causal long flags; the short flag or the stop fraction reads tomorrow's close."""

    name = "peeks"
    field_ = "sl_stop"

    @property
    def warmup(self) -> int:
        return 5

    def signals(self, bars: pd.DataFrame) -> Signals:
        close = bars["close"]
        entries = close > close.rolling(5).mean()
        exits = close < close.rolling(5).mean()
        future = close.shift(-1)  # look-ahead
        if self.field_ == "sl_stop":
            return Signals(entries, exits, sl_stop=(future - close).abs() / close)
        return Signals(entries, exits, short_entries=future < close, short_exits=future > close)


class _PeekingShort(_Peeks):
    name = "peeking_short"
    field_ = "short_entries"


class _EwmStop(Strategy):
    """A stop fraction from a pandas ewm: causal, but not reproducible from a window."""

    name = "ewm_stop"

    @property
    def warmup(self) -> int:
        return 20

    def signals(self, bars: pd.DataFrame) -> Signals:
        close = bars["close"]
        flags = pd.Series(False, index=bars.index)
        vol = close.pct_change().abs().ewm(span=10).mean()
        return Signals(flags, flags, sl_stop=2 * vol)


def test_peeking_stop_fraction_fails_naming_it(spx: pd.DataFrame) -> None:
    report = check_lookahead(_Peeks(), spx.iloc[:400], samples=10)
    assert not report.ok
    first = report.first
    assert first is not None and first.check == "lookahead" and first.flag == "sl_stop"
    assert isinstance(first.full, float) and np.isnan(first.partial)  # last bar: no tomorrow
    assert "sl_stop at bar" in str(report)


def test_peeking_short_flag_fails_naming_it(spx: pd.DataFrame) -> None:
    report = check_lookahead(_PeekingShort(), spx.iloc[:400], samples=10)
    assert report.first is not None and report.first.flag == "short_entries"


def test_window_dependent_stop_fails_with_the_hint(spx: pd.DataFrame) -> None:
    report = check_lookahead(_EwmStop(), spx.iloc[:400], samples=10)
    first = report.first
    assert first is not None and first.check == "window" and first.flag == "sl_stop"
    assert "ewm" in first.hint


def test_shipped_long_short_strategy_passes(spx: pd.DataFrame, registry) -> None:
    strategy = registry.create("sma_cross_ls")
    assert strategy.warmup >= 13 * strategy.atr_n + 1  # the ATR's convergence window
    report = check_lookahead(strategy, spx.iloc[-1500:], samples=12)
    assert report.ok, str(report)
    full = strategy.generate(spx.iloc[-1500:])
    assert full.sl_stop is not None and np.isfinite(full.sl_stop.iloc[-1])
