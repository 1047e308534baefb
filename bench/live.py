"""Live-trading figures against the venue simulators on loopback (in process), real SPX prices.

Run: ``.venv/bin/python bench/live.py [--quick]``. ``--quick`` (CI smoke) takes
fewer samples and does not reach the Binance order limit.

What is measured
----------------
* **bar -> order accepted**, p50/p99: per bar, wall clock from handing the bar to
  the order side (an order decided on it with its deterministic client id,
  ``OrderManager.add`` → the ``RiskManager`` with the venue's lot/tick/notional
  rules → ``OrderManager.submit``) until the venue's acknowledgement has been
  parsed (the ``OrderSubmitted`` event's latency). Over the unmodified ccxt
  client (``CcxtBroker``, Binance simulator) and alpaca-py (``AlpacaBroker``,
  Alpaca simulator). The orders are limit buys far under the market (they rest).
  Bars are handed 60 ms apart, as bars arrive spaced: ccxt's own throttle
  (``enableRateLimit``, Binance's 50 ms per unit of request weight) would
  otherwise delay each order by the previous one's slot. Alpaca's simulator runs
  without its request limit here.
* **reconciliation**: ``Reconciler.run`` over a book of 1,000 open orders holding
  5,000 booked fills (5 per order, 10 symbols) against a ``FakeVenue`` (in memory:
  tradelab's cost — 1,000 queries, the venue's open orders, positions, balances —
  without a wire), where the venue filled 200 of the orders once more while the
  book was not looking (booked by the run). Median of 3 runs on fresh books.
* **submit throughput under the rate limit**: orders submitted back to back through
  ``CcxtBroker`` to the Binance simulator with Binance's order limit in force (100
  new orders per 10 s, answered 429 + ``Retry-After``; the broker backs off with
  jitter), and through ``AlpacaBroker`` with Alpaca's 200 requests/min limit in
  force; orders/s over the whole batch, and how many 429 answers it met.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tradelab.bus import STAGE_BOOK, EventBus  # noqa: E402
from tradelab.clock import SimClock  # noqa: E402
from tradelab.events import OrderFilled, OrderPartiallyFilled, OrderSubmitted  # noqa: E402
from tradelab.orders.manager import OrderManager  # noqa: E402
from tradelab.orders.model import Order, client_order_id  # noqa: E402
from tradelab.portfolio import Portfolio  # noqa: E402

KEY, SECRET = "bench-key-0123", "bench-secret-4567"
BAR_GAP = 0.06  # s between bars handed to the order side (see the module doc)


def spx(n: int = 120) -> Any:
    from tradelab.data.sample import SampleSource

    return SampleSource().load("SPX").loc["2018-01-01":].iloc[:n]


def _book(broker: Any, clock: SimClock) -> tuple[OrderManager, EventBus, Portfolio]:
    bus = EventBus()
    pf = Portfolio(Decimal(100_000), "acc")

    def on_fill(ev: Any) -> None:
        if ev.fill is not None:
            f = ev.fill
            pf.apply_fill(f.symbol, f.side, f.quantity, f.price, f.fees)

    bus.step(OrderFilled, on_fill, stage=STAGE_BOOK)
    bus.step(OrderPartiallyFilled, on_fill, stage=STAGE_BOOK)
    return OrderManager(broker, bus, clock, attempts=5, max_wait=0.5), bus, pf


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


# -- bar -> order accepted ---------------------------------------------------------------
def bar_to_ack(broker: Any, symbol: str, bars: Any, n: int) -> list[float]:
    """Seconds from a bar handed to the order side to the venue's acknowledgement, per bar."""
    from tradelab.risk.manager import KillSwitch, RiskManager

    clock = SimClock(bars.index[0].to_pydatetime())
    mgr, bus, pf = _book(broker, clock)
    latencies: list[float] = []
    bus.subscribe(OrderSubmitted, lambda e: latencies.append(e.latency_s))
    RiskManager("acc", pf, bus, clock, KillSwitch("acc", bus, clock), mgr.reject,
                venue_rules=broker.rules)
    broker.rules(symbol)  # markets/asset loaded once, before the clock starts (as at engine start)
    for i in range(n):
        ts = bars.index[i % len(bars)].to_pydatetime()
        close = Decimal(str(round(float(bars["close"].iloc[i % len(bars)]), 2)))
        time.sleep(BAR_GAP)
        started = mgr.timer()
        clock.advance(max(ts, clock.now()))
        cid = client_order_id("bench", "resting", symbol, ts, f"buy{i}")
        mgr.add(Order(cid, "acc", "resting", symbol, "buy", Decimal("0.01"), ts, order_type="limit",
                      limit_price=(close / 2).quantize(Decimal("0.01")), reference_price=close))
        if mgr.orders[cid].state.value == "new":
            mgr.submit(cid, started=started)
    if len(latencies) != n:
        raise RuntimeError(f"{n - len(latencies)} of {n} orders were not acknowledged")
    return latencies


def ccxt_latency(n: int) -> list[float]:
    from tradelab.brokers.ccxt_broker import CcxtBroker
    from tradelab.brokers.sim.harness import start_binance_sim

    bars = spx()
    with start_binance_sim({"SPX/USDT": bars}, key=KEY, secret=SECRET, start=len(bars) - 1) as sim:
        broker = CcxtBroker("binance", api_key=KEY, secret=SECRET, rest_url=sim.rest_url,
                            stream=False, symbols=["SPX/USDT"])
        return bar_to_ack(broker, "SPX/USDT", bars, n)


def alpaca_latency(n: int) -> list[float]:
    from tradelab.brokers.alpaca_broker import AlpacaBroker
    from tradelab.brokers.sim.alpaca_harness import start_alpaca_sim

    bars = spx()
    with start_alpaca_sim({"SPX": bars}, key=KEY, secret=SECRET) as sim:
        broker = AlpacaBroker(api_key=KEY, secret=SECRET, rest_url=sim.rest_url, stream=False,
                              symbols=["SPX"])
        return bar_to_ack(broker, "SPX", bars, n)


# -- reconciliation ---------------------------------------------------------------------
def reconciliation_seconds(orders: int = 1_000, fills_each: int = 5, missed: int = 200) -> float:
    """One ``Reconciler.run`` over a book built on a FakeVenue (see the module doc)."""
    from tradelab.reconcile import Reconciler
    from tradelab.testing import FakeVenue

    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    venue = FakeVenue(cash=10_000_000)
    clock = SimClock(t0)
    mgr, bus, pf = _book(venue, clock)
    symbols = [f"S{k}" for k in range(10)]
    for i in range(orders):
        cid = f"tl-{i:05d}"
        mgr.add(Order(cid, "acc", "s", symbols[i % 10], "buy", Decimal(10), t0))
        mgr.submit(cid)
        for k in range(fills_each):
            mgr.apply_report(venue.fill(cid, 1, 100 + k))
    for i in range(missed):  # filled at the venue while the book was not looking
        venue.fill(f"tl-{i:05d}", 1, 110)
    booked = sum(len(o.fills) for o in mgr.orders.values())
    assert booked == orders * fills_each, booked
    rec = Reconciler(venue, mgr, pf, bus, clock, account="acc", symbols=symbols)
    start = time.perf_counter()
    outcome = rec.run("manual")
    seconds = time.perf_counter() - start
    assert outcome.ok and outcome.booked_fills == missed, outcome.summary()
    return seconds


# -- throughput under the rate limit ----------------------------------------------------
def throughput(broker: Any, symbol: str, price: Decimal, n: int) -> tuple[float, float]:
    """Orders submitted back to back: (orders/s, seconds)."""
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    broker.rules(symbol)
    limit = (price / 2).quantize(Decimal("0.01"))
    start = time.perf_counter()
    for i in range(n):
        broker.submit(Order(f"tl-tp-{i:05d}", "acc", "s", symbol, "buy", Decimal("0.01"), t0,
                            order_type="limit", limit_price=limit))
    seconds = time.perf_counter() - start
    return n / seconds, seconds


def ccxt_throughput(n: int) -> tuple[float, float, int]:
    from tradelab.brokers.ccxt_broker import CcxtBroker
    from tradelab.brokers.sim.harness import start_binance_sim

    bars = spx()
    with start_binance_sim({"SPX/USDT": bars}, key=KEY, secret=SECRET, start=len(bars) - 1) as sim:
        broker = CcxtBroker("binance", api_key=KEY, secret=SECRET, rest_url=sim.rest_url,
                            stream=False, symbols=["SPX/USDT"], rate_limit_retries=30, backoff=0.05)
        rate, seconds = throughput(broker, "SPX/USDT", Decimal(str(bars["close"].iloc[-1])), n)
        assert len(sim.orders()) == n
        return rate, seconds, broker.rate_limited


def alpaca_throughput(n: int) -> tuple[float, float, int]:
    from tradelab.brokers.alpaca_broker import AlpacaBroker
    from tradelab.brokers.sim.alpaca_harness import start_alpaca_sim

    bars = spx()
    with start_alpaca_sim({"SPX": bars}, key=KEY, secret=SECRET, rate_limit=200) as sim:
        broker = AlpacaBroker(api_key=KEY, secret=SECRET, rest_url=sim.rest_url, stream=False)
        answers: list[int] = []  # every HTTP status alpaca-py received (429s counted)
        broker._client._session.hooks["response"].append(
            lambda r, *_a, **_k: answers.append(r.status_code))
        rate, seconds = throughput(broker, "SPX", Decimal(str(bars["close"].iloc[-1])), n)
        assert len(sim.orders()) == n
        return rate, seconds, answers.count(429)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few samples (CI smoke)")
    args = p.parse_args(argv)
    import logging

    import structlog

    # the table only: info lines (each reconciliation) and back-off warnings (counted in the
    # table) would interleave
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    n_lat = 15 if args.quick else 90          # under Binance's 100 orders / 10 s
    n_ccxt = 30 if args.quick else 250        # 250 crosses the order limit twice
    n_alpaca = 30 if args.quick else 150      # under Alpaca's 200 requests / min

    print("bar -> order accepted by the simulator (loopback, in process)")
    print(f"  {'venue':<14} {'client':<25} {'orders':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for venue, client, fn in (("binance sim", "ccxt (CcxtBroker)", ccxt_latency),
                              ("alpaca sim", "alpaca-py (AlpacaBroker)", alpaca_latency)):
        lat = fn(n_lat)
        print(f"  {venue:<14} {client:<25} {len(lat):>6} {_pct(lat, .5) * 1e3:>8.1f} "
              f"{_pct(lat, .99) * 1e3:>8.1f}")

    runs = [reconciliation_seconds() for _ in range(1 if args.quick else 3)]
    print("reconciliation (FakeVenue, in memory): 1,000 open orders, 5,000 booked fills, "
          "200 missed fills booked")
    print(f"  {'orders':>6} {'fills':>6} {'missed':>6} {'ms':>8}")
    print(f"  {1000:>6} {5000:>6} {200:>6} {statistics.median(runs) * 1e3:>8.1f}")

    print("submit throughput with the simulator's rate limit in force")
    print(f"  {'venue':<14} {'limit':<25} {'orders':>6} {'seconds':>8} {'orders/s':>9} {'429s':>5}")
    rate, secs, limited = ccxt_throughput(n_ccxt)
    print(f"  {'binance sim':<14} {'100 orders / 10 s':<25} {n_ccxt:>6} {secs:>8.2f} {rate:>9.1f} "
          f"{limited:>5}")
    rate, secs, limited = alpaca_throughput(n_alpaca)
    print(f"  {'alpaca sim':<14} {'200 requests / min':<25} {n_alpaca:>6} {secs:>8.2f} {rate:>9.1f} "
          f"{limited:>5}")


if __name__ == "__main__":
    main()
