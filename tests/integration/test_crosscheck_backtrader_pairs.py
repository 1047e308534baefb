"""The KO/PEP pairs trade cross-checked against an independent engine, backtrader.

``strategies/pairs_kopep.py`` (``PairsKoPep``: z-score of the KO/PEP spread hedged by
a rolling OLS beta, ±0.5 target weights, rebalanced when the signal changes) runs in
tradelab on the real bundled KO and PEP closes, 2010–2020 (universe ``kopep``, the
``sample`` source, close only). backtrader gets the same bars as two data feeds and a
``bt.Strategy`` that is handed **the weights frame computed by tradelab**: what is
checked is execution and booking (when orders fill, how many units, at what price,
cash, fees, shorts, equity), not signal generation, which the two engines would
otherwise have to implement twice. backtrader sizes every order itself, with
``order_target_percent`` against its own broker value; tradelab's quantities are never
passed to it.

Compared: every fill (date, symbol, side, quantity exactly, price to the cent), the
equity at every bar and the final equity, to the cent, without fees and with 5 bps.

How the conventions were aligned
--------------------------------
* **When**: tradelab decides at bar *t*'s close and, with ``fill="next_open"`` on
  close-only data (the open of a bar is its close), fills at bar *t+1*'s close,
  sized at that price against the equity marked at that price
  (:mod:`tradelab.research.portfolio`). The backtrader strategy reads the weights row
  of bar *t* in ``next()`` of bar *t+1* (when that row differs from the row before:
  tradelab's ``"change"`` schedule) and sends market orders with
  ``cheat_on_close`` (``set_coc(True)``): they fill at the close of the bar they are
  sent on, and ``order_target_percent`` sizes them at that close against
  ``broker.getvalue()``, which backtrader has marked at that close.
* **Sizing**: tradelab's :func:`~tradelab.orders.rebalance.rebalance` rounds the
  *target* ``weight × equity / price`` towards zero to whole units and orders the
  difference; backtrader's ``order_target_value`` orders ``int(|target value -
  position value| // price)`` units, and ``close()`` for a target of 0. The two agree
  when the position opens from flat, closes to flat, grows on its side or flips;
  on a partial reduction backtrader would sell one unit less (it rounds the
  *order* down, tradelab the *target*). The pair only opens from flat and closes to
  flat (``spread_positions`` leaves a side before it can take the other), which the
  test asserts.
* **Order of the orders**: both send one order per symbol and bar, sells before buys
  (tradelab's :func:`~tradelab.orders.rebalance.net_orders`; here the calls are
  sorted by the value they move). The order does not change the result here: the
  short leg's proceeds are never needed to fund the long leg at 1× gross (measured:
  buying first gives the same fills).
* **Shorts**: backtrader's broker keeps its default ``shortcash=True``: a short sale's
  proceeds are added to the cash and the short is valued at ``size × close``
  (negative), so ``value = cash + Σ size × close`` — tradelab's equity (its rebalance
  counts short proceeds as cash, like vectorbt without ``lock_cash``). With
  ``shortcash=False`` backtrader pays for a short like for a long (the notional leaves
  the cash; the short is valued at its entry value plus its P&L): the equity is the
  same, but the pair then needs its full gross in cash, and with fees backtrader
  refuses the second leg for margin (measured: 106 orders refused).
* **Fees**: backtrader's percentage commission (``setcommission(commission=fee)``,
  stock-like) charges ``|size| × price × fee`` from the cash, as tradelab does; both
  size the orders *without* the fee (tradelab's rebalance scales buys down only when
  the cash runs short, which a cash-neutral pair never does), so the fee case is
  compared to the cent too.
* **One bar of booking lag**: backtrader books a ``coc`` order in the broker pass of
  the *following* bar (at the earlier close, dated on it), so the value it reports on
  a fill bar does not yet include that bar's trades. Trading at the close moves the
  equity only by the fees, so on a fill bar tradelab's equity is backtrader's value
  minus the fees paid on that bar; the curve comparison subtracts them.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradelab.data.universe import Panel, load_panel
from tradelab.execution import Execution
from tradelab.research.portfolio import backtest_portfolio, portfolio_strategy

bt = pytest.importorskip("backtrader")
_Strategy: Any = bt.Strategy  # a variable: mypy cannot subclass a module attribute of Any

ROOT = Path(__file__).resolve().parents[2]
CASH = 1_000_000.0


class _Pairs(_Strategy):
    """Rebalances to tradelab's weights of the previous bar, sized by backtrader."""

    params = (("weights", None),)

    def __init__(self) -> None:
        self.fills: list[tuple[pd.Timestamp, str, str, float, float, float]] = []
        self.values: list[float] = []
        self.refused: list[str] = []

    def notify_order(self, order: Any) -> None:
        if order.status == order.Completed:
            self.fills.append((pd.Timestamp(bt.num2date(order.executed.dt)), order.data._name,
                               "buy" if order.isbuy() else "sell", abs(order.executed.size),
                               order.executed.price, order.executed.comm))
        elif order.status in (order.Margin, order.Rejected, order.Canceled):
            self.refused.append(f"{order.data._name} {order.getstatusname()}")

    def next(self) -> None:
        value = self.broker.getvalue()  # marked at this bar's close
        self.values.append(value)
        w: np.ndarray = self.p.weights
        t = len(self) - 2  # the decision bar: the one before this bar
        if t < 0 or (t > 0 and (w[t] == w[t - 1]).all()):
            return
        moves = []
        for j, d in enumerate(self.datas):
            held = self.getposition(d).size * d.close[0]
            moves.append((w[t, j] * value - held, j, d))
        for _, j, d in sorted(moves, key=lambda m: m[0]):  # sells first
            self.order_target_percent(d, target=float(w[t, j]))


def _backtrader(panel: Panel, weights: pd.DataFrame, fee: float) -> Any:
    cerebro = bt.Cerebro(stdstats=False)
    for sym in panel.symbols:
        close = panel.close[sym]
        frame = pd.DataFrame({"open": panel.open[sym], "high": close, "low": close,
                              "close": close, "volume": 0.0})
        frame.index = frame.index.tz_convert(None)
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=sym)
    cerebro.addstrategy(_Pairs, weights=weights[list(panel.symbols)].to_numpy())
    cerebro.broker.setcash(CASH)
    cerebro.broker.set_coc(True)
    cerebro.broker.set_shortcash(True)  # the default, stated: see the module docstring
    cerebro.broker.setcommission(commission=fee)
    return cerebro.run()[0], cerebro.broker.getvalue()


@pytest.fixture(scope="module")
def kopep() -> tuple[Any, Panel]:
    strat = portfolio_strategy("pairs_kopep", paths=[ROOT / "strategies"])
    panel = load_panel(strat.symbols(), start="2010-01-01", end="2020-12-31")
    assert panel.close_only and panel.tradable.to_numpy().all()
    return strat, panel


@pytest.mark.parametrize("fee", [0.0, 0.0005])
def test_pairs_fills_and_equity_match_backtrader(kopep: tuple[Any, Panel], fee: float) -> None:
    strat, panel = kopep
    ex = Execution(cash=CASH, fees=fee, fill="next_open", fractional=False)
    ours = backtest_portfolio(strat, panel=panel, execution=ex)
    weights = strat.target_weights(panel)
    assert set(np.unique(weights.to_numpy())) == {-0.5, 0.0, 0.5}  # see "Sizing" above
    strategy, final = _backtrader(panel, weights, fee)
    assert strategy.refused == []

    mine = ours.orders[["time", "symbol", "side", "quantity", "price", "fees"]].copy()
    mine["time"] = mine["time"].dt.tz_convert(None)
    theirs = pd.DataFrame(strategy.fills, columns=mine.columns)
    key = ["time", "symbol"]
    mine = mine.sort_values(key).reset_index(drop=True)
    theirs = theirs.sort_values(key).reset_index(drop=True)
    assert len(mine) >= 100, "the pair must trade over 2010-2020"
    assert len(mine) == len(theirs), f"{len(mine)} fills here, {len(theirs)} in backtrader"
    pd.testing.assert_frame_equal(mine[["time", "symbol", "side"]], theirs[["time", "symbol", "side"]])
    assert (mine["quantity"].map(Decimal) == theirs["quantity"].map(Decimal)).all()
    assert np.abs(mine["price"].astype(float) - theirs["price"]).max() < 0.005
    assert np.abs(mine["fees"].astype(float) - theirs["fees"]).max() < 0.005
    if fee:
        assert mine["fees"].astype(float).sum() > 10_000  # fees matter in this case

    # every fill opens from flat or closes to flat (see "Sizing" in the module doc)
    signed = mine["quantity"].map(int) * np.where(mine["side"] == "buy", 1, -1)
    after = signed.groupby(mine["symbol"]).cumsum()
    assert ((after - signed == 0) | (after == 0)).all()
    assert (signed < 0).sum() >= 50 and (after < 0).sum() >= 50  # shorts opened

    # the equity at every bar: backtrader's value on a fill bar excludes that bar's fees
    fees_on_bar = (mine.groupby("time")["fees"].sum().astype(float)
                   .reindex(panel.index.tz_convert(None), fill_value=0.0).to_numpy())
    gap = np.abs(ours.equity.to_numpy() - (np.asarray(strategy.values) - fees_on_bar))
    assert gap.max() < 0.01, f"largest gap {gap.max():.6f} at {panel.index[int(gap.argmax())]}"
    exact = ours.final_equity_exact  # the Decimal book
    assert abs(exact - Decimal(repr(final))) < Decimal("0.01"), (exact, final)
    assert abs(final - CASH) > 10_000  # it did trade
