"""Live-feed figures on real SPX bars: tick throughput, feed throughput, reconnect recovery.

Run: ``.venv/bin/python bench/feeds.py [--repeat 3]``. Prints medians over the repeats.

What is measured
----------------
* **ticks/s, validation + aggregation**: JSON tick messages (4 per SPX daily
  bar, 5,031 bars) through :func:`tradelab.feeds.protocol.parse_message`
  (decode, schema, types, value rules) and :class:`TickAggregator` into daily
  bars; and aggregation alone on already-decoded ticks.
* **bars/s end to end**: a loopback :class:`ReplayServer` at full speed →
  websocket → validation → sequencer → bounded queue → the consuming thread,
  no faults.
* **recovery**: in live mode the server drops the connection 8 times and 10
  bars pass unseen each time; per drop, the wall time from the feed noticing
  the lost connection until the first fresh bar has arrived and the gap before
  it has been backfilled and queued for the engine. It includes the (jittered,
  here 1-2 ms) backoff, the new handshake and subscription, and the backfill
  through the cache-backed ``MarketData``. (The fresh bar itself then waits in
  the one-bar reorder buffer until the next bar or ``reorder_hold``.)
* **candles/s, CcxtFeed REST mode**: the real ccxt client (``binance``) paging
  through 5,000 one-minute candles from a loopback server answering like Binance
  (``tests/unit/feeds/exchange.py``), 1,000 per request, ``rateLimit`` 1 ms:
  HTTP, JSON, ccxt's parsing, the feed's validation, ordering and queue. Market
  loading happens once, before the clock starts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from tradelab.app import build
from tradelab.config import load_config
from tradelab.feeds.aggregate import TickAggregator, bar_ticks
from tradelab.feeds.protocol import encode_tick, parse_message
from tradelab.feeds.replay_server import Faults, ReplayServer
from tradelab.feeds.websocket import WebsocketFeed, market_backfill

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # the loopback exchange lives with the tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(Path(tmp) / "cache")}
        app = build(load_config(paths=[], environ=env, home=ROOT))
        bars = app.bars("SPX", source="sample")
        ticks = [t for ts, row in zip(bars.index, bars.itertuples(index=False), strict=True)
                 for t in bar_ticks(ts, *row, interval="1d", n=4)]
        messages = [encode_tick("SPX", pd.Timestamp(t, tz="UTC"), p, s) for t, p, s in ticks]
        full, agg_only, feed_rate, recover = [], [], [], []
        for _ in range(args.repeat):
            agg = TickAggregator("SPX", "1d")
            t0 = time.perf_counter()
            for raw in messages:
                _, (_, t, p, s) = parse_message(raw)
                agg.add(t, p, s)
            full.append(len(messages) / (time.perf_counter() - t0))
            agg = TickAggregator("SPX", "1d")
            t0 = time.perf_counter()
            for t, p, s in ticks:
                agg.add(t, p, s)
            agg_only.append(len(ticks) / (time.perf_counter() - t0))

            with ReplayServer({"SPX": bars}) as server:
                feed = WebsocketFeed(server.url, "SPX")
                t0 = time.perf_counter()
                n = sum(1 for _ in feed)
                feed_rate.append(n / (time.perf_counter() - t0))

            faults = Faults(drop_after=(300,) * 8, gap_on_drop=10)
            with ReplayServer({"SPX": bars}, mode="live", faults=faults) as server:
                feed = WebsocketFeed(server.url, "SPX", backfill=market_backfill(app, "sample"),
                                     backoff_base=0.002, seed=1)
                n = sum(1 for _ in feed)
                assert n == len(bars), (n, len(bars))
                recover += feed.recoveries
        print(f"ticks/s, JSON validation + aggregation: {statistics.median(full):>12,.0f}")
        print(f"ticks/s, aggregation only:              {statistics.median(agg_only):>12,.0f}")
        print(f"bars/s, server → websocket → engine queue: {statistics.median(feed_rate):>9,.0f}")
        ms = sorted(x * 1e3 for x in recover)
        print(f"drop → first fresh bar (reconnect + backfill), {len(ms)} drops: "
              f"median {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms")
    rates = [ccxt_rest_rate() for _ in range(args.repeat)]
    print(f"candles/s, CcxtFeed REST (loopback Binance, 1000/request): "
          f"{statistics.median(rates):>9,.0f}")


def ccxt_rest_rate(n: int = 5000) -> float:
    """Candles/s delivered by a REST-mode CcxtFeed paging through ``n`` closed candles."""
    from tests.unit.feeds.exchange import MINUTE, T0, Exchange, RestServer
    from tradelab.feeds.ccxt_feed import CcxtFeed

    exchange = Exchange()
    exchange.now, exchange.tick_per_request = n, False
    server = RestServer(exchange)
    try:
        feed = CcxtFeed("binance", "ETH/BTC", mode="rest", poll_seconds=0.0, rate_limit_ms=1,
                        page_limit=1000, urls={"public": server.url},
                        options={"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False},
                        start_after=pd.Timestamp(T0 - 1, unit="ms", tz="UTC"),
                        end=pd.Timestamp(T0 + (n - 1) * MINUTE, unit="ms", tz="UTC"))
        import asyncio

        async def load() -> None:   # markets outside the timed part (a separate client)
            from tradelab.feeds.ccxt_feed import exchange_class

            probe = exchange_class("binance")({"enableRateLimit": True})
            probe.urls["api"] = {**probe.urls["api"], "public": server.url}
            probe.options.update(feed.client.options)
            await probe.load_markets()
            feed.client.set_markets(probe.markets, probe.currencies)
            await probe.close()

        asyncio.run(load())
        t0 = time.perf_counter()
        got = sum(1 for _ in feed)
        elapsed = time.perf_counter() - t0
        assert got == n, (got, n)
        return got / elapsed
    finally:
        server.stop()


if __name__ == "__main__":
    main()
