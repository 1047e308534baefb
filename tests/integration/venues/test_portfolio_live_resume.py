"""A portfolio run at a real venue stopped like a crash and resumed
(:mod:`tradelab.engine.live_resume`): the engine, a feed of two symbols and
:class:`~tradelab.brokers.ccxt_broker.CcxtBroker` (the unmodified ccxt client) against the
Binance simulator, as in ``test_portfolio_live.py`` (whose strategy and bars these reuse).

The crash: the test's per-stamp callback raises a ``BaseException`` after the engine
committed a time stamp (``flush_every = 1``), before the venue's clock moves on; the
engine ends ``failed`` without cancelling anything (a halt keeps the venue's orders), as a
killed process leaves them. The venue's clock then moves on while the engine is down (the
resting orders fill), and a new broker connection resumes the run with ``resume=RUN``.
Every wait is on the venue's or the engine's events (no fixed sleeps).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.integration.venues.binance_helpers import KEY, SECRET, wait_for
from tests.integration.venues.test_portfolio_live import (
    STAMPS,
    START,
    SYMBOLS,
    WEIGHTS,
    Swing,
    _bars,
)
from tradelab.brokers.ccxt_broker import CcxtBroker
from tradelab.brokers.sim.harness import start_binance_sim
from tradelab.events import OrderRejected, OrderSubmitted
from tradelab.execution import Execution
from tradelab.feeds.replay import ReplayFeed

ROOT = Path(__file__).resolve().parents[3]
MINUTE = pd.Timedelta(minutes=1)
EXECUTION = Execution(cash=100_000.0, fees=0.001, fractional=True, fill="close")


class Crash(BaseException):
    """The process dies here (not an error the engine handles)."""


def _app(environ: dict[str, str], db: Path) -> Any:
    from tradelab.app import build
    from tradelab.config import load_config

    env = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{db}",
           "TRADELAB__ENGINE__FLUSH_EVERY": "1"}
    return build(load_config(environ=env, home=ROOT))


def _broker(sim: Any) -> CcxtBroker:
    broker = CcxtBroker("binance", api_key=KEY, secret=SECRET, rest_url=sim.rest_url,
                        ws_url=sim.ws_url, symbols=list(SYMBOLS), timeout=5.0, backoff=0.05)
    assert broker.stream is not None
    wait_for(broker.stream.connected.is_set)
    return broker


def _engine(tl: Any, broker: Any, bars: dict[str, pd.DataFrame], resume: int | None = None) -> Any:
    feed = ReplayFeed({s: f.iloc[START:START + STAMPS] for s, f in bars.items()})
    return tl.portfolio_engine(Swing(), feed=feed, universe=list(SYMBOLS), broker=broker,
                               execution=EXECUTION, account="live", resume=resume)


def _session(tl: Any, bars: dict[str, pd.DataFrame], crash_at: pd.Timestamp | None,
             inside: type | None = None, refuse_sell_at: pd.Timestamp | None = None,
             down: int = 1) -> dict[str, Any]:
    """One run on its own simulated venue: uninterrupted, or crashed after time stamp
    ``crash_at`` (committed, the venue's next bar not closed yet) and resumed. ``inside``
    (an order event class): crashed inside that time stamp's step instead, on that event of
    its first sell (the step is not committed: the resume processes the time stamp again).
    ``refuse_sell_at``: the venue refuses the first order placed on that time stamp.
    ``down``: bars the venue closes while the engine is down (0 or 1)."""
    sim = start_binance_sim(bars, key=KEY, secret=SECRET, start=START)
    broker = _broker(sim)
    out: dict[str, Any] = {"bars": bars}
    try:
        engine = _engine(tl, broker, bars)

        def die() -> None:
            out["at_crash"] = {o.client_order_id: (o.side, o.state.value)
                               for o in engine.orders.orders.values()}
            raise Crash

        def on_stamp(stamp: Any) -> None:
            if crash_at is not None and stamp[0].time == crash_at and inside is None:
                die()
            sim.advance(1)
            if refuse_sell_at is not None and stamp[0].time == refuse_sell_at - MINUTE:
                sim.inject("reject_min_notional=once")  # the next order placed: the sell

        def on_order(ev: Any) -> None:
            if ev.order.side == "sell" and ev.order.created_at == crash_at:
                die()

        if inside is not None:
            engine.bus.subscribe(inside, on_order)

        if crash_at is None:
            result = engine.run(on_bar=on_stamp)
        else:
            with pytest.raises(Crash):
                engine.run(on_bar=on_stamp)
            run_id = int(engine.run_id)
            broker.close()  # the dead process's connection
            if down:  # the venue's clock goes on while the engine is down
                sim.advance(down)
            broker = _broker(sim)
            engine = _engine(tl, broker, bars, resume=run_id)

            def resumed(stamp: Any) -> None:
                # The venue already closed the bar after a time stamp processed again (its
                # step was not committed): the venue stays one bar ahead, as uninterrupted.
                if not (down and inside is not None and stamp[0].time == crash_at):
                    sim.advance(1)

            result = engine.run(on_bar=resumed)
        assert result.stopped == "finished"
        run = int(result.run_id)
        out.update(engine=engine, result=result, venue=sim.orders(),
                   balances=broker.balances(), positions=broker.positions(),
                   rules={s: broker.rules(s) for s in SYMBOLS},
                   stored={o.client_order_id: o for o in tl.store.orders("live", run)},
                   fills=tl.store.fills("live", run))
    finally:
        broker.close()
        sim.close()
    return out


def _store_is_the_venue(run: dict[str, Any]) -> None:
    ids = [o["clientOrderId"] for o in run["venue"]]
    assert len(ids) == len(set(ids)), "an order was placed twice at the venue"
    at_venue = {o["clientOrderId"]: o for o in run["venue"]}
    stored = run["stored"]
    assert set(stored) == set(at_venue)
    by_order: dict[str, list[Any]] = defaultdict(list)
    for f in run["fills"]:
        by_order[f.client_order_id].append(f)
    for cid, row in at_venue.items():
        assert row["status"] == "FILLED" and stored[cid].status == "filled", cid
        assert Decimal(row["executedQty"]) == stored[cid].filled_quantity == \
            sum(f.quantity for f in by_order[cid])
    engine = run["engine"]
    assert run["positions"] == {s: engine.portfolio.position(s) for s in SYMBOLS}


def _decisions(run: dict[str, Any]) -> dict[Any, dict[str, list[Any]]]:
    out: dict[Any, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for o in run["stored"].values():
        out[o.created_at][o.side].append(o)
    return out


def _near_the_last_weights(run: dict[str, Any]) -> None:
    """The venue holds the last decision's weights within one lot: each symbol's target at
    the decision's closes on the equity its phase was sized on (the buys on the book after
    the sells), which the trades since moved by (fill - close) x quantity + fees."""
    bars, decided = run["bars"], max(_decisions(run))
    prices = {s: Decimal(str(bars[s].loc[decided, "close"])) for s in SYMBOLS}
    weights = dict(zip(SYMBOLS, (Decimal(str(w)) for w in WEIGHTS[(decided.minute // 4) % 2]),
                       strict=True))
    held = {s: run["balances"][s.split("/")[0]].total for s in SYMBOLS}
    equity = run["balances"]["USDT"].total + sum(held[s] * prices[s] for s in SYMBOLS)
    last = [o for o in run["stored"].values() if o.created_at == decided]
    fills = [f for f in run["fills"] if f.client_order_id in {o.client_order_id for o in last}]
    side_of = {o.client_order_id: o.side for o in last}

    def moved(side: str) -> Decimal:
        return sum((f.quantity * (f.price - prices[f.symbol]) * (1 if f.side == "buy" else -1)
                    + f.fees for f in fills if side_of[f.client_order_id] == side), Decimal(0))

    sized = {"buy": equity + moved("buy")}
    sized["sell"] = sized["buy"] + moved("sell")
    for s in SYMBOLS:
        side = next(o.side for o in last if o.symbol == s)
        gap = weights[s] * sized[side] / prices[s] - held[s]
        assert Decimal(0) <= gap < run["rules"][s].step, (s, side, gap)


def _orders(run: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {cid: (o.created_at, o.symbol, o.side, o.quantity, o.filled_quantity)
            for cid, o in run["stored"].items()}


@pytest.fixture()
def bars() -> dict[str, pd.DataFrame]:
    return _bars()


def test_a_crash_between_the_sells_and_the_buys_sends_the_buys_once_after_the_resume(
        environ: dict[str, str], tmp_path: Path, bars: dict[str, pd.DataFrame]) -> None:
    """The second decision (minute 8) sends its sells on its step; the process dies before
    they fill and before its buys leave. While it is down the sells fill. The resume books
    those fills (the start's reconciliation), then sends the buys once, sized on the cash
    the sells left, under the ids they would have had: the same orders as a run that never
    stopped."""
    second = bars["BTC/USDT"].index[8]
    crashed = _session(_app(environ, tmp_path / "a.db"), bars, second)
    at_crash = crashed["at_crash"]
    sent = {cid: side for cid, (side, _state) in at_crash.items()}
    second_ids = {o.client_order_id for o in crashed["stored"].values() if o.created_at == second}
    assert sorted(sent[c] for c in second_ids if c in sent) == ["sell"], \
        "the crash is between the decision's sells and its buys"
    buys = [o for o in crashed["stored"].values() if o.created_at == second and o.side == "buy"]
    assert buys, "the resumed run sent the decision's buys"

    _store_is_the_venue(crashed)
    venue = {o["clientOrderId"]: o for o in crashed["venue"]}
    sells = [venue[c] for c in second_ids if sent.get(c) == "sell"]
    assert max(s["updateTime"] for s in sells) < min(venue[b.client_order_id]["time"] for b in buys)
    engine = crashed["engine"]
    # the restored decision and the third one, both finished; the reconciliation at the
    # start found the book and the venue in agreement once the fills were booked
    assert engine.live.done == 2 and not engine.live.busy
    assert engine.reconciliations[0].ok
    _near_the_last_weights(crashed)

    clean = _session(_app(environ, tmp_path / "b.db"), bars, None)
    assert _orders(crashed) == _orders(clean)


def test_a_crash_between_decisions_resumes_to_the_uninterrupted_orders(
        environ: dict[str, str], tmp_path: Path, bars: dict[str, pd.DataFrame]) -> None:
    """Stopped two time stamps after the second decision (its buys filled), resumed: the
    panel is rebuilt from the run's bars, so the third decision comes on the same time
    stamp with the same targets, and the book (reconciled, fills booked) is the same, so
    every order (client id, decision, symbol, side, quantity, filled) equals the orders of
    a run that never stopped on the same venue bars."""
    index = bars["BTC/USDT"].index
    crashed = _session(_app(environ, tmp_path / "a.db"), bars, index[10])
    clean = _session(_app(environ, tmp_path / "b.db"), bars, None)
    assert len(crashed["at_crash"]) >= 3  # two decisions traded before the crash
    third = [o for o in crashed["stored"].values() if o.created_at == index[12]]
    assert {o.side for o in third} == {"buy", "sell"}
    assert _orders(crashed) == _orders(clean)
    assert [(f.client_order_id, f.quantity, f.price, f.fees) for f in crashed["fills"]] == \
        [(f.client_order_id, f.quantity, f.price, f.fees) for f in clean["fills"]]
    _store_is_the_venue(crashed)
    _store_is_the_venue(clean)
    _near_the_last_weights(crashed)
    assert crashed["engine"].portfolio.cash == clean["engine"].portfolio.cash


def test_a_crash_inside_a_step_after_a_sell_left_sends_nothing_twice(
        environ: dict[str, str], tmp_path: Path, bars: dict[str, pd.DataFrame]) -> None:
    """The process dies inside the second decision's step, as the venue acknowledges its
    sell: the time stamp is not committed, so the resume processes it again. The sell filled
    while the engine was down (booked by the start's reconciliation); deciding again on that
    time stamp names the same client ids, and the sell already written is not written or
    sent again: the decision's buys leave on the cash the sell left, and every order equals
    the orders of a run that never stopped."""
    second = bars["BTC/USDT"].index[8]
    crashed = _session(_app(environ, tmp_path / "a.db"), bars, second, inside=OrderSubmitted)
    at_crash = crashed["at_crash"]
    assert [side for cid, (side, _) in at_crash.items()
            if crashed["stored"][cid].created_at == second] == ["sell"]
    engine = crashed["engine"]
    assert engine.resumed_from == second - MINUTE
    assert engine.reconciliations[0].ok
    _store_is_the_venue(crashed)
    clean = _session(_app(environ, tmp_path / "b.db"), bars, None)
    assert _orders(crashed) == _orders(clean)
    _near_the_last_weights(crashed)


def test_a_crash_after_the_venue_refused_a_sell_does_not_send_it_again(
        environ: dict[str, str], tmp_path: Path, bars: dict[str, pd.DataFrame]) -> None:
    """The venue refuses the second decision's sell and the process dies right then, inside
    the step. Deciding again on that time stamp after the resume names the refused sell
    again (the book still holds what it would sell): an order id the run wrote is never
    written or sent again, so the sell stays refused and the buys are sized on the cash
    held, as in a run that never stopped with the same refusal."""
    second = bars["BTC/USDT"].index[8]
    # nothing rests at the venue: its clock waits for the engine (down=0), so the buys
    # fill at the same bar as in the run that never stopped
    crashed = _session(_app(environ, tmp_path / "a.db"), bars, second, inside=OrderRejected,
                       refuse_sell_at=second, down=0)
    refused = [o for o in crashed["stored"].values() if o.created_at == second and o.side == "sell"]
    assert [(o.symbol, o.status) for o in refused] == [("BTC/USDT", "rejected")]
    assert refused[0].client_order_id in crashed["at_crash"]
    assert refused[0].client_order_id not in {o["clientOrderId"] for o in crashed["venue"]}
    _store_is_the_venue({**crashed, "stored": {c: o for c, o in crashed["stored"].items()
                                               if o.status != "rejected"}})
    clean = _session(_app(environ, tmp_path / "b.db"), bars, None, refuse_sell_at=second)
    assert _orders(crashed) == _orders(clean)


def test_the_decision_in_progress_is_the_last_one_with_a_stored_order() -> None:
    """The rule of :func:`~tradelab.engine.live_resume.in_progress` on three decisions:
    the last one with a stored order is working (with its stored sells; its buys ``None``
    until one is stored), the last one after it is waiting, and none stored: the last
    decision waits (started on the first step, after the reconciliation)."""
    from datetime import UTC, datetime

    from tradelab.engine.live_resume import Decided, in_progress

    times = [datetime(2024, 1, 1, 0, m, tzinfo=UTC) for m in (0, 4, 8)]
    decided = [Decided(t, {"A": Decimal("0.5")}, {"A": Decimal(m + 1), "B": Decimal(2)}, {"A", "B"})
               for m, t in enumerate(times)]

    def cid(symbol: str, at: datetime, side: str) -> str:
        return f"{symbol}|{at.minute}|{side}"

    def found(*written: str) -> tuple[Any, ...]:
        working, waiting = in_progress(decided, set(written), ("A", "B"), cid)
        return (None if working is None else (working.decided.minute, working.sells, working.buys),
                None if waiting is None else waiting.decided.minute)

    assert found() == (None, 8)
    assert found("A|0|buy", "B|0|buy") == ((0, [], ["A|0|buy", "B|0|buy"]), 8)
    assert found("A|0|buy", "B|4|sell") == ((4, ["B|4|sell"], None), 8)
    assert found("A|0|buy", "B|4|sell", "A|4|buy") == ((4, ["B|4|sell"], ["A|4|buy"]), 8)
    assert found("B|4|sell", "A|8|sell") == ((8, ["A|8|sell"], None), None)
    working, _ = in_progress(decided, {"B|4|sell"}, ("A", "B"), cid)
    assert working is not None and working.prices == decided[1].prices and \
        working.targets == decided[1].targets and working.tradable == {"A", "B"}
