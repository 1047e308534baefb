from __future__ import annotations

import pandas as pd
import pytest

from tradelab.strategy.base import Param, Signals, Strategy
from tradelab.strategy.lookahead import check_lookahead
from tradelab.strategy.registry import StrategyRegistry


class Peeking(Strategy):
    """Buys when tomorrow's close is higher: uses the future."""

    name = "peeking"

    def signals(self, bars: pd.DataFrame) -> Signals:
        tomorrow_up = bars["close"].shift(-1) > bars["close"]
        return Signals(tomorrow_up, ~tomorrow_up)


class LongMemory(Strategy):
    """Causal, but an EMA depends on all history, so a warmup window cannot reproduce it."""

    name = "long_memory"
    span = Param(20, low=2)

    @property
    def warmup(self) -> int:
        return int(self.span)

    def signals(self, bars: pd.DataFrame) -> Signals:
        ema = bars["close"].ewm(span=self.span, adjust=False).mean()
        return Signals(bars["close"] > ema, bars["close"] < ema)


@pytest.mark.parametrize("name", ["sma_cross", "rsi_reversion", "donchian_breakout"])
def test_shipped_strategies_pass(name: str, spx: pd.DataFrame, project_root) -> None:
    reg = StrategyRegistry.discover([project_root / "strategies"], entry_points=False)
    report = check_lookahead(reg.create(name), spx)
    assert report.ok, str(report)
    assert report.prefixes_checked >= 40


def test_peeking_strategy_fails_at_the_first_offending_bar(spx: pd.DataFrame) -> None:
    bars = spx.iloc[:300]
    report = check_lookahead(Peeking(), bars)
    assert not report.ok
    first = report.first
    assert first is not None and first.check == "lookahead"
    # With the shortest prefix ending at bar k, bar k-1 cannot see bar k: the full
    # history says "up tomorrow" there when the truncated one cannot.
    full = Peeking().generate(bars)
    part = Peeking().generate(bars.iloc[: first.position + 1])
    assert bool(getattr(full, first.flag).iloc[first.position]) != bool(
        getattr(part, first.flag).iloc[first.position])
    assert str(first.bar.date()) in str(report)


def test_infinite_memory_fails_the_window_check(spx: pd.DataFrame) -> None:
    report = check_lookahead(LongMemory(span=10), spx.iloc[:1500])
    assert not report.ok
    assert report.first is not None and report.first.check == "window"


def test_fewer_bars_than_the_warmup_is_a_clear_error_and_exactly_warmup_is_checked(
        spx: pd.DataFrame) -> None:
    with pytest.raises(ValueError) as err:
        check_lookahead(LongMemory(span=10), spx.iloc[:9])
    assert str(err.value) == ("long_memory: 9 bar(s) are too few to check; it reads 10 bars (its "
                              "warmup): give a longer history (e.g. widen --start/--end)")
    report = check_lookahead(LongMemory(span=10), spx.iloc[:10])
    assert report.bars == 10 and report.prefixes_checked >= 1
