"""CcxtFeed(ticks=True): bars built from a loopback Binance's trades (REST and trade stream).

The trades are made from real SPX bars put on the minute grid (four per bar,
``bar_ticks``), so the bars the feed must build are exactly those rows.
"""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
import pytest

from tests.unit.feeds.exchange import MINUTE, PER_BAR, T0, Exchange, RestServer, TradeStream
from tradelab.feeds.aggregate import aggregate
from tradelab.feeds.base import FeedError
from tradelab.feeds.ccxt_feed import CcxtFeed, select_mode
from tradelab.interfaces import Bar

OPTIONS = {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False}
BEFORE_FIRST = pd.Timestamp(T0 - 1, unit="ms", tz="UTC")


def at(i: int) -> pd.Timestamp:
    return pd.Timestamp(T0 + i * MINUTE, unit="ms", tz="UTC")


def rows(bars: list[Bar]) -> list[list[Any]]:
    return [[int(pd.Timestamp(b.time).value // 10**6), b.open, b.high, b.low, b.close, b.volume]
            for b in bars]


@pytest.fixture()
def spx_rows(spx: pd.DataFrame) -> list[list[Any]]:
    """60 real SPX bars as minute candles ``[ms, o, h, l, c, v]`` from T0."""
    frame = spx.iloc[:60]
    return [[T0 + i * MINUTE, *map(float, r)]
            for i, r in enumerate(frame[["open", "high", "low", "close", "volume"]].to_numpy())]


@pytest.fixture()
def exchange(spx_rows: list[list[Any]]) -> Exchange:
    ex = Exchange()
    ex.use_bars(spx_rows)
    return ex


def feed(rest: RestServer, **kwargs: Any) -> CcxtFeed:
    kwargs = {"mode": "rest", "poll_seconds": 0.0, "rate_limit_ms": 10, "page_limit": 5,
              "start_after": BEFORE_FIRST, "backoff_base": 0.01, "seed": 1, "ticks": True,
              **kwargs}
    return CcxtFeed("binance", "ETH/BTC", urls={"public": rest.url}, options=OPTIONS, **kwargs)


def test_rest_trades_build_exactly_the_source_bars(exchange: Exchange, rest: RestServer,
                                                   spx_rows: list[list[Any]]) -> None:
    f = feed(rest, end=at(20))
    assert f.mode == "rest"
    got = list(f)
    assert rows(got) == spx_rows[:21]
    ticks = f.stats()["ticks"]
    assert ticks["late_dropped"] == 0 and ticks["invalid"] == 0
    # each trade went into a bar once (the exchange clock moves per request, so the
    # paging may run ahead of ``end``)
    assert 21 * PER_BAR <= ticks["accepted"] <= len(exchange.trades)
    assert f.rejected == {} and f.stats()["dropped"] == {}
    # trades were asked for, paged from the last one seen (``since`` inclusive)
    starts = [int(q["startTime"]) for _, q in exchange.requests if "startTime" in q]
    assert starts == sorted(starts) and len(set(starts)) >= 10


def test_overlapping_pages_do_not_double_count_trades(exchange: Exchange, rest: RestServer,
                                                      spx_rows: list[list[Any]]) -> None:
    exchange.overlap = 3          # every page repeats three trades before startTime
    f = feed(rest, end=at(20))
    got = list(f)
    assert rows(got) == spx_rows[:21]   # a double-counted trade would inflate a volume
    ticks = f.stats()["ticks"]
    assert ticks["duplicate"] >= 3 * 10
    assert ticks["accepted"] <= len(exchange.trades) and ticks["late_dropped"] == 0


def test_malformed_trades_are_counted_by_reason_once(exchange: Exchange, rest: RestServer,
                                                     spx_rows: list[list[Any]]) -> None:
    exchange.overlap = 2          # pages overlap: a bad trade is seen twice, counted once
    exchange.bad_trades = {
        5: lambda t: {**t, "p": "-1.5"},     # negative price
        9: lambda t: {**t, "q": "0"},        # zero amount
        14: lambda t: {**t, "q": "-2"},      # negative amount
        18: lambda t: {**t, "p": None},      # price missing
    }
    f = feed(rest, end=at(10))
    got = list(f)
    assert f.rejected == {"non_positive": 2, "negative_volume": 1, "missing_field": 1}
    # the bars are what the valid trades make; untouched bars are the source bars
    valid = [(pd.Timestamp(t["T"], unit="ms", tz="UTC"), float(t["p"]), float(t["q"]))
             for k, t in enumerate(exchange.trades[:12 * PER_BAR]) if k not in exchange.bad_trades]
    want = aggregate(valid, "ETH/BTC", "1min")
    assert rows(got) == [[int(t.value // 10**6), *r] for t, r in
                         zip(want.index, want.to_numpy().tolist(), strict=False)][:11]
    broken = {k // PER_BAR for k in exchange.bad_trades}
    assert [r for i, r in enumerate(rows(got)) if i not in broken] == \
        [r for i, r in enumerate(spx_rows[:11]) if i not in broken]
    assert all(rows(got)[i] != spx_rows[i] for i in broken)


def test_rest_outage_is_backfilled_from_the_last_trade_seen(exchange: Exchange, rest: RestServer,
                                                            spx_rows: list[list[Any]]) -> None:
    exchange.fail = lambda n: 4 <= n < 9        # five 503s; the exchange clock runs on
    f = feed(rest, end=at(20))
    assert rows(list(f)) == spx_rows[:21]
    assert f.reconnects == 5 and f.failed_polls == 5 and len(f.recoveries) == 1
    assert f.backfilled >= 3                    # bars completed by the catch-up
    assert not any("interval" in q for _, q in exchange.requests)   # trades sufficed


def test_a_history_gap_is_bridged_with_candles(exchange: Exchange, rest: RestServer,
                                               spx_rows: list[list[Any]]) -> None:
    def fail(n: int) -> bool:
        if n == 6:   # during the outage the exchange forgets the trades before candle 8
            exchange.history = 8
        return 4 <= n < 9

    exchange.fail = fail
    f = feed(rest, end=at(20))
    got = list(f)
    assert rows(got) == spx_rows[:21]           # candles are the same real bars
    klines = [q for _, q in exchange.requests if "interval" in q]
    assert klines, "the gap must come from fetch_ohlcv"
    # the half-built bar, the unreachable ones and the first bar built after the gap
    assert f.backfilled >= 5
    assert f.stats()["ticks"]["late_dropped"] == 0


def test_trade_requests_respect_the_rate_limit(exchange: Exchange, rest: RestServer) -> None:
    exchange.fail = lambda n: n in (3, 4)        # retries must respect it too
    f = feed(rest, rate_limit_ms=120, page_limit=3, end=at(6))
    assert len(list(f)) == 7
    stamps = [t for t, _ in exchange.requests]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(gaps) >= 8
    assert min(gaps) >= 0.120 - 0.005
    assert f.poll_seconds == pytest.approx(0.12)


def stream_feed(rest: RestServer, stream: TradeStream, **kwargs: Any) -> CcxtFeed:
    return feed(rest, mode="auto", ws_urls={"spot": stream.url}, stale_after=3.0, **kwargs)


def test_websocket_trades_build_the_bars_and_a_drop_is_backfilled(
        exchange: Exchange, rest: RestServer, spx_rows: list[list[Any]]) -> None:
    exchange.tick_per_request = False            # the stream moves the clock
    stream = TradeStream(exchange, drop_after=(8,), gap=5, pause=0.005, total=40)
    try:
        f = stream_feed(rest, stream, end=at(24))
        assert f.mode == "websocket"
        got = list(f)
    finally:
        stream.stop()
    assert rows(got) == spx_rows[:25]
    assert stream.streams[0] == ["ethbtc@trade"] and len(stream.streams) == 2
    assert f.reconnects == 1
    # candles 8..12 traded while the client was away: only REST can have their trades
    assert f.backfilled >= 5
    assert f.stats()["ticks"]["late_dropped"] == 0


@pytest.mark.parametrize("grace", ["30s", "0s"])
def test_a_late_trade_is_merged_within_grace_and_dropped_beyond(
        exchange: Exchange, rest: RestServer, spx_rows: list[list[Any]], grace: str) -> None:
    exchange.tick_per_request = False
    late = 3 * PER_BAR + 3                       # bar 3's closing trade (at +45 s) ...
    stream = TradeStream(exchange, late={late: 1}, pause=0.002, total=40)   # ... after bar 4's first
    try:
        f = stream_feed(rest, stream, grace=grace, end=at(8))
        got = list(f)
    finally:
        stream.stop()
    ticks = f.stats()["ticks"]
    if grace == "30s":                           # bar 3 still open: merged, bar exact
        assert rows(got) == spx_rows[:9]
        assert ticks["late_accepted"] == 1 and ticks["late_dropped"] == 0
    else:                                        # bar 3 already delivered: dropped, counted
        assert ticks["late_dropped"] == 1 and ticks["late_accepted"] == 0
        ms, o, h, low, _c, v = spx_rows[3]
        third = float(exchange.trades[late - 1]["p"])
        assert rows(got)[3] == [ms, o, h, low, third, v / 4 * 3]
        assert rows(got)[:3] + rows(got)[4:] == spx_rows[:3] + spx_rows[4:9]


def test_mode_selection_follows_the_data_kind() -> None:
    assert select_mode("auto", {"watchOHLCV": True}, "trades") == "rest"
    assert select_mode("auto", {"watchTrades": True}, "trades") == "websocket"
    assert select_mode("auto", {"watchTrades": True}) == "rest"      # candles by default
    with pytest.raises(FeedError, match="watchTrades"):
        select_mode("websocket", {"watchOHLCV": True}, "trades")
    with pytest.raises(ValueError, match="kind='quotes'"):
        select_mode("auto", {}, "quotes")
