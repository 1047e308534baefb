"""CcxtFeed with the real ccxt client against a loopback Binance (REST and kline stream)."""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
import pytest

from tests.unit.feeds.exchange import MINUTE, T0, Exchange, KlineStream, RestServer, final
from tradelab.feeds.base import FeedError
from tradelab.feeds.ccxt_feed import CcxtFeed, select_mode
from tradelab.interfaces import Bar, LiveFeed

# Spot markets only, no margin pairs: the server answers what Binance spot does.
OPTIONS = {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False}
BEFORE_FIRST = pd.Timestamp(T0 - 1, unit="ms", tz="UTC")


def at(i: int) -> pd.Timestamp:
    return pd.Timestamp(T0 + i * MINUTE, unit="ms", tz="UTC")


def index(bar: Bar) -> int:
    return int((pd.Timestamp(bar.time) - at(0)) / pd.Timedelta(minutes=1))


@pytest.fixture()
def exchange() -> Exchange:
    return Exchange()


def feed(rest: RestServer, **kwargs: Any) -> CcxtFeed:
    kwargs = {"mode": "rest", "poll_seconds": 0.0, "rate_limit_ms": 20, "page_limit": 4,
              "start_after": BEFORE_FIRST, "backoff_base": 0.01, "seed": 1, **kwargs}
    return CcxtFeed("binance", "ETH/BTC", urls={"public": rest.url}, options=OPTIONS, **kwargs)


def test_rest_delivers_each_closed_candle_once_in_order_with_final_values(
        exchange: Exchange, rest: RestServer) -> None:
    f = feed(rest, end=at(15))
    assert isinstance(f, LiveFeed)
    got = list(f)
    assert [index(b) for b in got] == list(range(16))
    # final, not forming, values: every answer's newest candle was still forming
    assert [list(b[2:]) for b in got] == [final(i)[1:] for i in range(16)]
    assert all(b.symbol == "ETH/BTC" for b in got)
    assert f.stats()["dropped"] == {} and f.rejected == {}


def test_rest_outage_gap_is_backfilled_from_history(exchange: Exchange, rest: RestServer) -> None:
    exchange.fail = lambda n: 4 <= n < 9        # five 503s; the exchange clock runs on
    f = feed(rest, end=at(20))
    got = list(f)
    assert [index(b) for b in got] == list(range(21))
    assert f.reconnects == 5 and f.failed_polls == 5
    # the first fetch after the outage pages through the candles that closed meanwhile
    assert f.backfilled >= 5 and len(f.recoveries) == 1


def test_rate_limit_exceeded_backs_off_before_asking_again(exchange: Exchange,
                                                          rest: RestServer) -> None:
    exchange.fail, exchange.fail_status = (lambda n: n in (3, 4, 5)), 429
    f = feed(rest, backoff_base=0.2, backoff_max=1.0, end=at(12))
    assert [index(b) for b in f] == list(range(13))
    assert f.reconnects == 3
    stamps = [t for t, _ in exchange.requests]
    # after the n-th consecutive 429 the feed waits at least half of 0.2 * 2**(n-1) s
    waits = [stamps[i + 1] - stamps[i] for i in (3, 4, 5)]
    assert [w >= floor for w, floor in zip(waits, (0.1, 0.2, 0.4), strict=True)] == [True] * 3


def test_rest_gives_up_after_max_retries(exchange: Exchange, rest: RestServer) -> None:
    exchange.fail = lambda n: True
    f = feed(rest, max_retries=2, backoff_max=0.02)
    with pytest.raises(FeedError, match="2 failed reconnects"):
        list(f)
    assert f.reconnects == 2


def test_a_permanent_exchange_error_ends_the_feed_at_once(rest: RestServer) -> None:
    f = CcxtFeed("binance", "NOPE/BTC", mode="rest", urls={"public": rest.url}, options=OPTIONS,
                 start_after=BEFORE_FIRST)
    with pytest.raises(FeedError, match="NOPE/BTC") as info:
        list(f)
    assert type(info.value.__cause__).__name__ == "BadSymbol" and f.reconnects == 0


def test_malformed_candles_are_counted_by_reason_and_skipped(exchange: Exchange,
                                                             rest: RestServer) -> None:
    exchange.bad = {
        3: lambda r: [r[0], r[1], r[3] * 0.5, r[3], r[4], r[5]],          # high < low
        5: lambda r: [r[0], -r[1], r[2], r[3], r[4], r[5]],                # negative open
        7: lambda r: [r[0], r[1], r[2], r[3], r[4], -1.0],                 # negative volume
        9: lambda r: [r[0], r[1], r[2], r[3], None, r[5]],                 # close missing
        11: lambda r: [r[0], r[1], r[2], r[3], r[2] * 2, r[5]],            # close above high
    }
    f = feed(rest, end=at(14))
    got = list(f)
    assert [index(b) for b in got] == [i for i in range(15) if i not in exchange.bad]
    assert f.rejected == {"high_low": 1, "non_positive": 1, "negative_volume": 1,
                          "missing_field": 1, "open_close_range": 1}


def test_requests_are_never_closer_than_the_rate_limit(exchange: Exchange,
                                                       rest: RestServer) -> None:
    exchange.fail = lambda n: n in (3, 4)       # retries must respect it too
    f = feed(rest, rate_limit_ms=120, page_limit=2, end=at(10))
    assert len(list(f)) == 11
    stamps = [t for t, _ in exchange.requests]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(gaps) >= 8
    assert min(gaps) >= 0.120 - 0.005          # server-side arrival jitter only
    assert f.poll_seconds == pytest.approx(0.12)   # polling is floored at the rate limit


def test_a_fresh_start_begins_after_the_history(exchange: Exchange, rest: RestServer) -> None:
    exchange.now = 30                           # 30 candles of history exist already
    f = feed(rest, start_after=None, end=at(36))
    got = list(f)
    # the first fetch (the clock moves to 31) is history up to its newest closed
    # candle, 30; delivery starts with the next candle to close
    assert [index(b) for b in got] == list(range(31, 37))
    assert f.stats()["requests"] >= 7


def test_websocket_mode_streams_closed_candles_and_backfills_a_dropped_connection(
        exchange: Exchange, rest: RestServer) -> None:
    exchange.tick_per_request = False           # the stream moves the clock
    exchange.bad = {4: lambda r: [r[0], r[1], r[3] * 0.5, r[3], r[4], r[5]]}
    stream = KlineStream(exchange, drop_after=(10,), gap=6, pause=0.04, total=40)
    try:
        # A generous staleness bound: a busy machine may pause the stream thread for
        # seconds, and staleness is the next test's subject, not this one's.
        f = feed(rest, mode="auto", ws_urls={"spot": stream.url}, end=at(24), stale_after=30.0)
        assert f.mode == "websocket"
        got = list(f)
    finally:
        stream.stop()
    want = [i for i in range(25) if i != 4]
    assert [index(b) for b in got] == want
    assert [list(b[2:]) for b in got] == [final(i)[1:] for i in want]
    assert f.rejected == {"high_low": 1}
    assert len(stream.streams) == 2 and stream.streams[0] == ["ethbtc@kline_1m"]
    assert f.reconnects == 1
    # candles 10..15 passed while the client was away: only REST can have delivered them
    assert f.backfilled >= 6


def test_websocket_silence_is_stale_and_reconnects(exchange: Exchange,
                                                   rest: RestServer) -> None:
    exchange.tick_per_request = False
    stream = KlineStream(exchange, pause=0.02, total=8)   # then silent, connection open
    try:
        f = feed(rest, mode="websocket", ws_urls={"spot": stream.url}, stale_after=0.4,
                 max_retries=1)
        got: list[Bar] = []
        with pytest.raises(FeedError):
            for bar in f:
                got.append(bar)
    finally:
        stream.stop()
    assert [index(b) for b in got] == list(range(7))  # candle 7 never closed
    assert f.stale >= 1


def test_mode_selection() -> None:
    assert select_mode("auto", {"watchOHLCV": True}) == "websocket"
    assert select_mode("auto", {"watchOHLCV": False}) == "rest"
    assert select_mode("auto", {}) == "rest"
    assert select_mode("rest", {"watchOHLCV": True}) == "rest"
    assert select_mode("websocket", {"watchOHLCV": True}) == "websocket"
    with pytest.raises(FeedError, match="watchOHLCV"):
        select_mode("websocket", {"watchOHLCV": None})
    with pytest.raises(ValueError, match="mode='fast'"):
        select_mode("fast", {})
