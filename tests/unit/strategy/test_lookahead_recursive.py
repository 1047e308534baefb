"""Recursive indicators and the window check: strategies built on the helpers with
their declared warmup pass ``tradelab check`` (and research/engine parity); the same
strategy on pandas ``ewm`` fails with a message that says what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tradelab.strategy.base import Strategy
from tradelab.strategy.lookahead import check_lookahead

SOURCE = '''
from tradelab.strategy.base import Param, Signals, Strategy
from tradelab.strategy.indicators import (
    atr, atr_warmup, crossed_above, crossed_below, ema, ema_warmup, macd, macd_warmup,
    rsi_wilder, rsi_wilder_warmup)


class MacdHelpers(Strategy):
    """MACD line crossing its signal line, with the helpers and their warmup."""

    name = "macd_helpers"
    vectorized_params = True
    numpy_columns = True
    fast = Param(12, low=2, high=100)
    slow = Param(26, low=3, high=200)
    signal = Param(9, low=2, high=100)

    @property
    def warmup(self):
        return macd_warmup(self.fast, self.slow, self.signal) + 1  # the cross reads bar t-1

    def signals(self, bars):
        m = macd(bars["close"], self.fast, self.slow, self.signal)
        return Signals(crossed_above(m.line, m.signal), crossed_below(m.line, m.signal))


class MacdShortWarmup(MacdHelpers):
    """The helpers, but the warmup a user would guess (slow + signal)."""

    name = "macd_short_warmup"

    @property
    def warmup(self):
        return int(self.slow) + int(self.signal)


class MacdEwm(Strategy):
    """The textbook MACD on pandas ewm over the whole history."""

    name = "macd_ewm"
    fast = Param(12, low=2, high=100)
    slow = Param(26, low=3, high=200)
    signal = Param(9, low=2, high=100)

    @property
    def warmup(self):
        return int(self.slow) + int(self.signal)

    def signals(self, bars):
        close = bars["close"]
        line = (close.ewm(span=self.fast, adjust=False).mean()
                - close.ewm(span=self.slow, adjust=False).mean())
        sig = line.ewm(span=self.signal, adjust=False).mean()
        up, prev_up = line > sig, (line > sig).shift(1, fill_value=False)
        return Signals(up & ~prev_up, ~up & prev_up)


class AtrBreakout(Strategy):
    """Close above its EMA plus one ATR; out below the EMA."""

    name = "atr_breakout"
    vectorized_params = True
    numpy_columns = True
    n = Param(20, low=2, high=100)

    @property
    def warmup(self):
        return max(ema_warmup(self.n), atr_warmup(self.n))

    def signals(self, bars):
        mid = ema(bars["close"], self.n)
        band = atr(bars["high"], bars["low"], bars["close"], self.n)
        return Signals(bars["close"] > mid + band, bars["close"] < mid)


class RsiWilder(Strategy):
    """Wilder's RSI mean reversion."""

    name = "rsi_wilder_reversion"
    vectorized_params = True
    numpy_columns = True
    n = Param(14, low=2, high=100)

    @property
    def warmup(self):
        return rsi_wilder_warmup(self.n)

    def signals(self, bars):
        value = rsi_wilder(bars["close"], self.n)
        return Signals(value < 30, value > 70)
'''


@pytest.fixture(scope="module")
def strategies() -> dict[str, type[Strategy]]:
    space: dict[str, Any] = {}
    exec(compile(SOURCE, "recursive_strategies.py", "exec"), space)  # the same text as the CLI file
    return {cls.name: cls for cls in space.values()
            if isinstance(cls, type) and issubclass(cls, Strategy) and cls is not Strategy}


@pytest.mark.parametrize("name", ["macd_helpers", "atr_breakout", "rsi_wilder_reversion"])
def test_helper_strategies_pass_the_window_check(strategies, spx: pd.DataFrame, name: str) -> None:
    report = check_lookahead(strategies[name](), spx)
    assert report.ok, str(report)
    assert report.windows_checked >= 40


def test_pandas_ewm_macd_fails_with_what_to_do(strategies, spx: pd.DataFrame) -> None:
    report = check_lookahead(strategies["macd_ewm"](), spx)
    assert not report.ok and report.first is not None and report.first.check == "window"
    text = str(report)
    assert "warmup=35" in text  # what it declared
    assert "ewm" in text and "tradelab.strategy.indicators.ema" in text
    assert "macd_warmup(fast, slow, signal)" in text


def test_too_short_a_warmup_names_the_rule_but_not_ewm(strategies, spx: pd.DataFrame) -> None:
    report = check_lookahead(strategies["macd_short_warmup"](), spx)
    assert not report.ok
    text = str(report)
    assert "macd_warmup" in text and "pandas `ewm`" not in text


def test_a_sweep_batch_equals_each_single_strategy(strategies, spx: pd.DataFrame) -> None:
    cls = strategies["macd_helpers"]
    grid = {"fast": [5, 12, 12], "slow": [20, 26, 40], "signal": [9, 9, 5]}
    batch = cls.batch(grid).generate(spx)
    for j, single in enumerate(cls.batch(grid).split()):
        one = single.generate(spx)
        np.testing.assert_array_equal(batch.entries.iloc[:, j].to_numpy(), one.entries.to_numpy())
        np.testing.assert_array_equal(batch.exits.iloc[:, j].to_numpy(), one.exits.to_numpy())


def test_engine_replay_matches_research(strategies, spx: pd.DataFrame) -> None:
    """The engine's rolling window of `warmup` bars gives the very same trades."""
    from tradelab.execution import Execution
    from tradelab.parity import compare

    report = compare(strategies["macd_helpers"](), spx.iloc[-2500:], Execution(), "SPX")
    assert report.research_round_trips > 10
    assert report.ok, str(report)


def test_tradelab_check_cli(strategies, environ: dict[str, str], tmp_path: Path) -> None:
    from tradelab.cli import app

    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "recursive.py").write_text(SOURCE)
    env = {**environ, "TRADELAB__STRATEGIES__PATHS": json.dumps([str(folder)]),
           "TRADELAB__STRATEGIES__ENTRY_POINTS": "false"}
    args = ["--source", "sample", "--symbol", "SPX", "--start", "2010-01-01"]
    ok = CliRunner().invoke(app, ["check", "macd_helpers", *args], env=env)
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    bad = CliRunner().invoke(app, ["check", "macd_ewm", *args], env=env)
    assert bad.exit_code == 1, bad.output
    assert "FAILED" in bad.output and "ewm" in bad.output and "ema_warmup" in bad.output
