"""A portfolio strategy trading live at a real venue (issue 13): the engine, a feed of two
symbols and :class:`~tradelab.brokers.ccxt_broker.CcxtBroker` (the unmodified ccxt
client) against the Binance simulator (:mod:`tradelab.engine.live_rebalance`).

The venue's clock is the test's: after each time stamp the engine processed, the
simulator closes the next bar (its market orders fill at that bar's open), so the
engine learns of the fills on the next time stamp, through the venue desk's news.
"""

from __future__ import annotations

import os
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.integration.venues.binance_helpers import KEY, SECRET, wait_for
from tradelab.brokers.ccxt_broker import CcxtBroker
from tradelab.brokers.sim.harness import start_binance_sim
from tradelab.execution import Execution
from tradelab.feeds.replay import ReplayFeed
from tradelab.strategy.portfolio import PortfolioStrategy

ROOT = Path(__file__).resolve().parents[3]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))

SYMBOLS = ("ETH/USDT", "BTC/USDT")
START = 4      # the venue's latest closed bar when the engine starts (its first time stamp)
STAMPS = 11    # time stamps the engine sees: decisions on the 1st, 5th and 9th
WEIGHTS = {0: (0.6, 0.3), 1: (0.2, 0.7)}  # by (minute // 4) % 2: every decision swaps


class Swing(PortfolioStrategy):
    """Weights that alternate every four minutes, so every decision after the first sells."""

    name = "swing_live_test"
    universe = SYMBOLS
    rebalance = 4

    def weights(self, panel: Any) -> pd.DataFrame:
        phase = (np.asarray(panel.index.minute) // 4) % 2
        rows = [WEIGHTS[int(p)] for p in phase]
        return pd.DataFrame(rows, index=panel.index, columns=list(SYMBOLS))


def _bars(n: int = 40, freq: str = "1min") -> dict[str, pd.DataFrame]:
    idx = pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC")
    rng = np.random.default_rng(11)
    out = {}
    for sym, level in zip(SYMBOLS, (2000.0, 40000.0), strict=True):
        close = (level * np.exp(np.cumsum(rng.normal(0, 0.003, n)))).round(2)
        open_ = np.r_[level, close[:-1]]
        out[sym] = pd.DataFrame({"open": open_, "high": np.maximum(open_, close) + 1.0,
                                 "low": np.minimum(open_, close) - 1.0, "close": close,
                                 "volume": 1000.0}, index=idx)
    return out


@pytest.fixture()
def tl(environ: dict[str, str], tmp_path: Path) -> Any:
    from tradelab.app import build
    from tradelab.config import load_config

    env = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'live.db'}"}
    return build(load_config(environ=env, home=ROOT))


@pytest.fixture()
def venue() -> Any:
    bars = _bars()
    sim = start_binance_sim(bars, key=KEY, secret=SECRET, start=START)
    broker = CcxtBroker("binance", api_key=KEY, secret=SECRET, rest_url=sim.rest_url,
                        ws_url=sim.ws_url, symbols=list(SYMBOLS), timeout=5.0, backoff=0.05)
    assert broker.stream is not None
    wait_for(broker.stream.connected.is_set)
    yield sim, broker, bars
    broker.close()
    sim.close()


def _d(x: Any) -> Decimal:
    return Decimal(str(x))


def test_a_rebalance_at_the_venue_sells_first_and_lands_on_the_targets(tl: Any, venue: Any) -> None:
    sim, broker, bars = venue
    feed = ReplayFeed({s: f.iloc[START:START + STAMPS] for s, f in bars.items()})
    execution = Execution(cash=100_000.0, fees=0.001, fractional=True, fill="close")
    engine = tl.portfolio_engine(Swing(), feed=feed, universe=list(SYMBOLS), broker=broker,
                                 execution=execution, account="live")
    result = engine.run(on_bar=lambda _stamp: sim.advance(1))
    assert result.stopped == "finished"
    live = engine.live
    assert live is not None and live.done == 3 and not live.busy
    summary = engine.summary()
    assert summary["sizing"].startswith("decision closes") and not summary["rebalance_unfinished"]

    # -- the store's orders and fills are the venue's ---------------------------------
    at_venue = {o["clientOrderId"]: o for o in sim.orders()}
    stored = {o.client_order_id: o for o in tl.store.orders("live", int(result.run_id))}
    assert set(stored) == set(at_venue) and len(stored) >= 5
    fills = tl.store.fills("live", int(result.run_id))
    by_order: dict[str, list[Any]] = defaultdict(list)
    for f in fills:
        by_order[f.client_order_id].append(f)
    for cid, row in at_venue.items():
        assert row["status"] == "FILLED" and stored[cid].status == "filled"
        assert _d(row["executedQty"]) == stored[cid].filled_quantity == \
            sum(f.quantity for f in by_order[cid])
        assert _d(row["cummulativeQuoteQty"]) == sum(f.quantity * f.price for f in by_order[cid])
    assert len(result.fills) == len(fills)

    # -- every decision: its sells filled before its buys were sent ----------------------
    orders = engine.orders.orders
    decisions: dict[Any, list[str]] = defaultdict(list)
    for cid in stored:
        decisions[orders[cid].created_at].append(cid)
    assert len(decisions) == 3
    with_sells = 0
    for cids in decisions.values():
        sells = [at_venue[c] for c in cids if orders[c].side == "sell"]
        buys = [at_venue[c] for c in cids if orders[c].side == "buy"]
        assert buys
        if sells:
            with_sells += 1
            assert max(s["updateTime"] for s in sells) < min(b["time"] for b in buys)
    assert with_sells == 2

    # -- the venue holds the last decision's weights within one lot, at its closes -------
    decided = max(decisions)
    prices = {s: _d(bars[s].loc[decided, "close"]) for s in SYMBOLS}
    weights = dict(zip(SYMBOLS, (_d(w) for w in WEIGHTS[(decided.minute // 4) % 2]), strict=True))
    balances = broker.balances()
    held = {s: balances[s.split("/")[0]].total for s in SYMBOLS}
    equity = balances["USDT"].total + sum(held[s] * prices[s] for s in SYMBOLS)
    assert equity == engine.portfolio.cash + sum(
        engine.portfolio.position(s) * prices[s] for s in SYMBOLS)
    last = decisions[decided]
    # the equity each phase was sized on: the buys on the book after the sells, the sells
    # on the book before; the trades since then moved it by (fill - close) x quantity - fees
    def moved(side: str) -> Decimal:
        return sum((f.quantity * (f.price - prices[f.symbol]) * (1 if f.side == "buy" else -1)
                    + f.fees for c in last if orders[c].side == side for f in by_order[c]),
                   Decimal(0))

    sized_buys = equity + moved("buy")
    sized_sells = sized_buys + moved("sell")
    for s in SYMBOLS:
        side = next(orders[c].side for c in last if orders[c].symbol == s)
        base = sized_buys if side == "buy" else sized_sells
        rules = broker.rules(s)
        assert rules is not None
        gap = weights[s] * base / prices[s] - held[s]
        assert Decimal(0) <= gap < rules.step, (s, side, gap)


def test_a_sell_the_venue_refuses_leaves_the_buys_sized_on_the_cash_held(
        tl: Any, venue: Any) -> None:
    """The second decision (minute 8) sells BTC and buys ETH. The venue refuses the sell:
    the buy is then sized without the sale's proceeds, on the cash the book holds (so the
    venue fills it instead of refusing it for want of funds)."""
    sim, broker, bars = venue
    feed = ReplayFeed({s: f.iloc[START:START + STAMPS] for s, f in bars.items()})
    execution = Execution(cash=100_000.0, fees=0.001, fractional=True, fill="close")
    engine = tl.portfolio_engine(Swing(), feed=feed, universe=list(SYMBOLS), broker=broker,
                                 execution=execution, account="live")
    second = bars["BTC/USDT"].index[8].to_pydatetime()
    cash_before: list[Decimal] = []
    eth_before: list[Decimal] = []
    equity_before: list[Decimal] = []

    def on_stamp(stamp: Any) -> None:
        sim.advance(1)
        if stamp[0].time == second - pd.Timedelta(minutes=1):
            sim.inject("reject_min_notional=once")  # the next order placed: the BTC sell
            pf = engine.portfolio
            cash_before.append(pf.cash)
            eth_before.append(pf.position("ETH/USDT"))
            equity_before.append(pf.cash + sum(
                pf.position(s) * Decimal(str(bars[s].loc[second, "close"])) for s in SYMBOLS))

    result = engine.run(on_bar=on_stamp)
    assert result.stopped == "finished" and engine.live is not None and engine.live.done == 3
    orders = [o for o in engine.orders.orders.values() if o.created_at == second]
    refused = [o for o in orders if o.side == "sell"]
    bought = [o for o in orders if o.side == "buy"]
    assert [(o.symbol, o.state.value) for o in refused] == [("BTC/USDT", "rejected")]
    assert [(o.symbol, o.state.value) for o in bought] == [("ETH/USDT", "filled")]
    close = Decimal(str(bars["ETH/USDT"].loc[second, "close"]))
    assert bought[0].quantity * close * Decimal("1.001") <= cash_before[0]
    assert sim.fired()["reject_min_notional"] == 1
    # sized as if the sell had filled, the buy would have cost more than the cash held
    assert (Decimal("0.6") * equity_before[0] - eth_before[0] * close) > cash_before[0]
    # the venue holds what the book holds; every order it took filled
    assert all(o["status"] == "FILLED" for o in sim.orders())
    assert broker.positions() == {s: engine.portfolio.position(s) for s in SYMBOLS}


def test_the_kill_switch_between_the_sells_and_the_buys_sends_no_buy(tl: Any, venue: Any) -> None:
    """Halted while the second decision's sell rests at the venue: the sell is cancelled
    there, its buys are never sent, and no later decision trades."""
    sim, broker, bars = venue
    feed = ReplayFeed({s: f.iloc[START:START + STAMPS] for s, f in bars.items()})
    execution = Execution(cash=100_000.0, fees=0.001, fractional=True, fill="close")
    engine = tl.portfolio_engine(Swing(), feed=feed, universe=list(SYMBOLS), broker=broker,
                                 execution=execution, account="live")
    second = bars["BTC/USDT"].index[8].to_pydatetime()

    def on_stamp(stamp: Any) -> None:
        if stamp[0].time == second:  # the sell was sent on this step; the venue has not filled it
            engine.kill_switch.engage("test halt", "test")
        sim.advance(1)

    result = engine.run(on_bar=on_stamp)
    assert result.stopped == "finished" and engine.live is not None
    assert engine.live.done == 1 and not engine.live.busy
    later = [o for o in engine.orders.orders.values() if o.created_at >= second]
    assert [(o.side, o.symbol, o.state.value) for o in later] == \
        [("sell", "BTC/USDT", "cancelled")]
    at_venue = {o["clientOrderId"]: o["status"] for o in sim.orders()}
    assert at_venue[later[0].client_order_id] == "CANCELED"
    assert broker.positions() == {s: engine.portfolio.position(s) for s in SYMBOLS}
