"""Cross-check tradelab's vectorbt backtests against an independent engine, backtrader.

Both engines get the same real bars (S&P 500, 1999-2018) and the same signals
(computed once by the tradelab strategy), so what is compared is execution and
accounting: fill bar and price, sizing, fees, cash and final equity. Backtrader
is told the convention explicitly: ``cheat_on_open`` places the order for a
signal on bar t's close at bar t+1's open (sized on that open), ``coc`` fills at
the signal bar's close, and a commission scheme charges a rate plus a fixed fee
per order. Its sizing arithmetic here is written independently of
:class:`tradelab.execution.Execution`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

bt = pytest.importorskip("backtrader")

from tradelab.research.backtest import backtest  # noqa: E402
from tradelab.strategy.registry import StrategyRegistry  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ["sma_cross", "rsi_reversion", "donchian_breakout"]
FEES, FIXED, CASH = 0.001, 2.5, 100_000.0


@pytest.fixture(scope="module")
def registry() -> StrategyRegistry:
    return StrategyRegistry.discover([ROOT / "strategies"], entry_points=False)


class _Commission(bt.CommInfoBase):
    """A rate on notional plus a fixed amount per order, paid in cash (stock-like)."""

    params = (("stocklike", True), ("commtype", bt.CommInfoBase.COMM_PERC),
              ("percabs", True), ("fixed", 0.0))

    def _getcommission(self, size, price, pseudoexec):
        return abs(size) * price * self.p.commission + self.p.fixed


class _Replay(bt.Strategy):
    """Acts on precomputed signals; records every fill."""

    params = (("entries", None), ("exits", None), ("fill", "next_open"),
              ("size", 1.0), ("size_type", "percent"), ("fees", 0.0), ("fixed", 0.0))

    def __init__(self) -> None:
        self.fills: list[tuple[pd.Timestamp, str, float, float, float]] = []

    def _act(self, i: int, price: float) -> None:
        entry, exit_ = bool(self.p.entries[i]), bool(self.p.exits[i])
        if entry and exit_:
            return  # the convention: both on one bar cancel out
        if entry and not self.position:
            if self.p.size_type == "percent":
                cash = self.broker.getcash() * self.p.size
                qty = math.floor((cash - self.p.fixed) / (price * (1.0 + self.p.fees)))
            else:  # fixed quantity, reduced to what the cash affords
                afford = (self.broker.getcash() - self.p.fixed) / (price * (1.0 + self.p.fees))
                qty = min(self.p.size, math.floor(afford))
            if qty > 0:
                self.buy(size=qty)
        elif exit_ and self.position:
            self.close()

    def next_open(self) -> None:
        i = len(self.data) - 1  # the new bar (len(self) still counts the previous one)
        if self.p.fill == "next_open" and i >= 1:
            self._act(i - 1, self.data.open[0])  # yesterday's signal, today's open

    def next(self) -> None:
        if self.p.fill == "close":
            self._act(len(self) - 1, self.data.close[0])

    def notify_order(self, order) -> None:
        if order.status == order.Completed:
            ex = order.executed
            side = "buy" if order.isbuy() else "sell"
            self.fills.append((bt.num2date(ex.dt), side, abs(ex.size), ex.price, ex.comm))
        elif order.status in (order.Margin, order.Rejected, order.Canceled):
            raise AssertionError(f"backtrader refused an order: {order.getstatusname()}")


def run_backtrader(bars: pd.DataFrame, entries: np.ndarray, exits: np.ndarray, *,
                   fill: str, size: float, size_type: str) -> tuple[float, pd.DataFrame]:
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=(fill == "next_open"))
    feed = bars[["open", "high", "low", "close", "volume"]].copy()
    feed.index = feed.index.tz_convert(None)
    cerebro.adddata(bt.feeds.PandasData(dataname=feed))
    cerebro.broker.setcash(CASH)
    cerebro.broker.set_checksubmit(False)  # cash is checked by our sizing, at the fill price
    cerebro.broker.set_coc(fill == "close")
    cerebro.broker.addcommissioninfo(_Commission(commission=FEES, fixed=FIXED))
    cerebro.addstrategy(_Replay, entries=entries, exits=exits, fill=fill, size=size,
                        size_type=size_type, fees=FEES, fixed=FIXED)
    strat = cerebro.run()[0]
    fills = pd.DataFrame(strat.fills, columns=["time", "side", "quantity", "price", "fees"])
    return cerebro.broker.getvalue(), fills


CASES = [
    pytest.param("next_open", 1.0, "percent", id="all-in-next-open"),
    pytest.param("next_open", 10.0, "amount", id="fixed-qty-next-open"),
    pytest.param("close", 1.0, "percent", id="all-in-close"),
    pytest.param("close", 10.0, "amount", id="fixed-qty-close"),
]


@pytest.mark.slow
@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize(("fill", "size", "size_type"), CASES)
def test_tradelab_matches_backtrader(spx: pd.DataFrame, registry: StrategyRegistry,
                                     name: str, fill: str, size: float,
                                     size_type: str) -> None:
    strategy = registry.create(name)
    result = backtest(strategy, spx, cash=CASH, fees=FEES, fixed_fees=FIXED, slippage=0.0,
                      size=size, size_type=size_type, fill=fill, fractional=False)
    signals = strategy.generate(spx)
    value, fills = run_backtrader(spx, signals.entries.to_numpy(), signals.exits.to_numpy(),
                                  fill=fill, size=size, size_type=size_type)

    ours = result.orders
    assert len(ours) > 10, "too few orders to say anything"
    assert len(fills) == len(ours)
    # Same bar, side, whole-unit quantity and fill price, trade by trade.
    assert list(pd.DatetimeIndex(fills["time"]).normalize()) == list(
        ours["time"].dt.tz_convert(None).dt.normalize())
    assert fills["side"].tolist() == ours["side"].tolist()
    assert fills["quantity"].tolist() == ours["quantity"].tolist()
    # Backtrader reports the fill price as an average (value / size), which can move
    # it by one ulp; 1e-14 relative is "identical" for prices.
    np.testing.assert_allclose(fills["price"].to_numpy(), ours["price"].to_numpy(),
                               rtol=1e-14, atol=0)
    np.testing.assert_allclose(fills["fees"].to_numpy(), ours["fees"].to_numpy(),
                               rtol=1e-12, atol=1e-9)
    # Final equity to the cent (an open position is marked at the last close by both).
    assert value == pytest.approx(result.final_equity, abs=0.005)
    assert result.stats["final_equity"] == result.equity.iloc[-1]
