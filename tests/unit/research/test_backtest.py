"""backtest(): the convention mapping, result tables and metric definitions."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tradelab.errors import ParameterError, TradelabError, UnknownStrategyError
from tradelab.research.backtest import backtest
from tradelab.research.conventions import Execution, periods_per_year
from tradelab.research.result import BacktestResult
from tradelab.strategy.base import Signals, Strategy


class Scripted(Strategy):
    """Signals at fixed bar positions (set on the class by each test)."""

    name = "scripted"
    entries_at: tuple[int, ...] = ()
    exits_at: tuple[int, ...] = ()

    def signals(self, bars: pd.DataFrame) -> Signals:
        entries = np.zeros(len(bars), dtype=bool)
        exits = np.zeros(len(bars), dtype=bool)
        entries[list(self.entries_at)] = True
        exits[list(self.exits_at)] = True
        return Signals(entries, exits)


def scripted(entries: tuple[int, ...], exits: tuple[int, ...]) -> type[Strategy]:
    return type("S", (Scripted,), {"entries_at": entries, "exits_at": exits})


def toy_bars(n: int = 8) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC", name="time")
    opens = 100.0 + np.arange(n) * 2.0
    return pd.DataFrame({"open": opens, "high": opens + 3, "low": opens - 1,
                         "close": opens + 1.0, "volume": 1e6}, index=idx)


def test_next_open_fills_the_following_open_and_last_signal_never_fills() -> None:
    bars = toy_bars()
    r = backtest(scripted((1, 7), (4,)), bars, cash=10_000, fees=0.01, fixed_fees=1.0)
    assert r.orders["side"].tolist() == ["buy", "sell"]
    assert r.orders["time"].tolist() == [bars.index[2], bars.index[5]]
    assert r.orders["price"].tolist() == [bars["open"].iloc[2], bars["open"].iloc[5]]
    qty = math.floor((10_000 - 1.0) / 1.01 / bars["open"].iloc[2])
    assert r.orders["quantity"].iloc[0] == qty
    assert r.orders["fees"].iloc[0] == pytest.approx(qty * bars["open"].iloc[2] * 0.01 + 1.0)
    assert r.trades["status"].tolist() == ["closed"]


def test_close_fill_and_slippage_and_open_trade() -> None:
    bars = toy_bars()
    r = backtest(scripted((1,), ()), bars, fill="close", slippage=0.01, fees=0.0,
                 size=10, size_type="amount")
    assert r.orders["time"].tolist() == [bars.index[1]]
    assert r.orders["price"].iloc[0] == pytest.approx(bars["close"].iloc[1] * 1.01)
    assert r.orders["quantity"].iloc[0] == 10
    trade = r.trades.iloc[0]
    assert trade["status"] == "open" and pd.isna(trade["exit_time"]) and np.isnan(trade["exit_price"])
    # An open trade is marked at the last close; final equity includes it.
    assert r.final_equity == pytest.approx(r.execution.cash + 10 * (bars["close"].iloc[-1]
                                                                   - trade["entry_price"]))
    assert trade["pnl"] == pytest.approx(r.final_equity - r.execution.cash)
    assert r.stats["n_trades"] == 1 and np.isnan(r.stats["win_rate"])


def test_entry_and_exit_on_one_bar_cancel_and_long_only() -> None:
    bars = toy_bars()
    r = backtest(scripted((1, 3), (1, 2, 5)), bars, fill="close")
    # bar 1: both -> nothing; bar 2: exit while flat -> nothing; bar 3 entry; bar 5 exit.
    assert r.orders["time"].tolist() == [bars.index[3], bars.index[5]]
    assert (r.position >= 0).all()


def test_value_sizing_uses_the_price_before_slippage_and_fractional_units() -> None:
    bars = toy_bars()
    r = backtest(scripted((0,), ()), bars, fill="close", size=1000, size_type="value",
                 slippage=0.02, fractional=True, fees=0.0)
    assert r.orders["quantity"].iloc[0] == pytest.approx(1000 / bars["close"].iloc[0])


def test_stats_definitions(bars: pd.DataFrame, registry) -> None:
    r = backtest(registry.create("sma_cross", fast=5, slow=20), bars)
    eq = r.equity.to_numpy()
    rets = np.diff(np.concatenate([[r.execution.cash], eq])) / np.concatenate(
        [[r.execution.cash], eq[:-1]])
    s = r.stats
    assert s["final_equity"] == eq[-1] == r.final_equity
    assert s["total_return"] == pytest.approx(eq[-1] / 100_000 - 1, rel=1e-12)
    assert s["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(252), rel=1e-9)
    assert s["cagr"] == pytest.approx((eq[-1] / 1e5) ** (252 / len(bars)) - 1, rel=1e-9)
    assert s["max_drawdown"] == pytest.approx(r.drawdown.min()) and s["max_drawdown"] < 0
    assert s["exposure"] == pytest.approx((r.position > 0).mean())
    closed = r.trades[r.trades["status"] == "closed"]
    assert s["win_rate"] == pytest.approx((closed["pnl"] > 0).mean())
    assert s["n_trades"] == len(r.trades) == (r.orders["side"] == "buy").sum()
    assert (s["start"], s["end"], s["bars"]) == (bars.index[0], bars.index[-1], len(bars))


def test_stats_agree_with_vectorbts_own_accessors(bars: pd.DataFrame, registry) -> None:
    r = backtest(registry.create("rsi_reversion"), bars, fixed_fees=1.0)
    pf = r.portfolio
    ra = pf.returns().vbt.returns(freq="1D", year_freq="252 days")
    assert r.stats["sharpe"] == pytest.approx(float(ra.sharpe_ratio()), rel=1e-9)
    assert r.stats["sortino"] == pytest.approx(float(ra.sortino_ratio()), rel=1e-9)
    assert r.stats["max_drawdown"] == pytest.approx(float(pf.max_drawdown()), rel=1e-9)
    assert r.stats["total_return"] == pytest.approx(float(pf.total_return()), rel=1e-9)
    assert r.stats["final_equity"] == pytest.approx(float(pf.final_value()), rel=1e-12)


def test_strategy_by_name_class_or_instance_and_overrides(bars: pd.DataFrame, registry) -> None:
    cls = registry.get("sma_cross")
    a = backtest("sma_cross", bars, {"fast": 5, "slow": 20}, registry=registry)
    b = backtest(cls, bars, {"fast": 5, "slow": 20})
    c = backtest(cls(fast=5, slow=40), bars, {"slow": 20})
    assert a.final_equity == b.final_equity == c.final_equity
    assert c.params == {"fast": 5, "slow": 20}
    d = backtest(cls(fast=5, slow=20), bars, execution=Execution(fees=0.0), fees=0.001, cash=5e4)
    assert (d.execution.fees, d.execution.cash) == (0.001, 5e4)
    with pytest.raises(UnknownStrategyError):
        backtest("nope", bars, registry=registry)
    with pytest.raises(ParameterError):
        backtest(cls, bars, {"fast": 30, "slow": 20})
    with pytest.raises(ValueError, match="fees"):
        backtest(cls, bars, fees=2.0)
    with pytest.raises(TradelabError):
        backtest(cls, bars.assign(open=np.nan))


def test_result_exports(bars: pd.DataFrame, registry) -> None:
    r = backtest(registry.create("donchian_breakout"), bars)
    assert isinstance(r, BacktestResult)
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["stats"]["final_equity"] == r.final_equity
    assert len(d["trades"]) == len(r.trades) and set(d["trades"][0]) == set(r.trades.columns)
    assert d["orders"][0]["side"] in ("buy", "sell")
    page = r._repr_html_()
    assert "final_equity" in page and "entry_price" in page
    assert "donchian_breakout" in repr(r)
    assert list(r.trades.columns) == ["entry_time", "exit_time", "side", "quantity",
                                      "entry_price", "exit_price", "fees", "pnl", "return",
                                      "status", "exit_reason"]
    assert list(r.orders.columns) == ["time", "side", "quantity", "price", "fees"]
    assert (r.drawdown <= 0).all()


def test_periods_per_year_inference() -> None:
    def idx(freq: str, n: int = 50) -> pd.DatetimeIndex:
        return pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC")

    assert periods_per_year(pd.bdate_range("2024-01-01", periods=60, tz="UTC")) == 252
    assert periods_per_year(idx("D")) == 252
    assert periods_per_year(idx("W")) == 52
    assert periods_per_year(idx("MS")) == 12
    assert periods_per_year(idx("h")) == pytest.approx(365.25 * 24)
    assert periods_per_year(idx("h"), 1638) == 1638


def test_importing_research_does_not_import_vectorbt() -> None:
    code = ("import sys, tradelab, tradelab.research, tradelab.research.conventions;"
            "tradelab.Execution; print('vectorbt' in sys.modules, 'holoviews' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
