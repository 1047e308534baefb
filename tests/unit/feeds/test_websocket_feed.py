"""WebsocketFeed against a real loopback replay server: delivery, staleness, backfill, give-up."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pandas as pd
import pytest

from tests.unit.feeds.conftest import slicer
from tradelab.feeds.replay_server import Faults, ReplayServer
from tradelab.feeds.websocket import FeedError, WebsocketFeed, market_backfill
from tradelab.interfaces import Bar, LiveFeed


def times(bars: list[Bar]) -> list[pd.Timestamp]:
    return [pd.Timestamp(b.time) for b in bars]


def test_it_is_a_live_feed_and_delivers_every_bar_exactly(
        serve: Callable[..., ReplayServer], spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300})
    feed = WebsocketFeed(server.url, "SPX")
    assert isinstance(feed, LiveFeed)
    got = list(feed)
    assert times(got) == list(spx300.index)
    assert [tuple(b[2:]) for b in got] == [tuple(r) for r in spx300.itertuples(index=False)]
    assert all(b.symbol == "SPX" for b in got)
    assert feed.stats()["delivered"] == 300 and feed.reconnects == 0


def test_replay_mode_resubscribes_from_the_last_bar(serve: Callable[..., ReplayServer],
                                                    spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300}, faults=Faults(drop_after=(60, 60)))
    feed = WebsocketFeed(server.url, "SPX", backoff_base=0.01)   # no backfill needed
    assert times(list(feed)) == list(spx300.index)
    assert feed.reconnects == 2 and feed.backfilled == 0


def test_live_mode_gap_is_backfilled(serve: Callable[..., ReplayServer],
                                     spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300}, mode="live", faults=Faults(drop_after=(50,), gap_on_drop=20))
    backfill = slicer(spx300)
    feed = WebsocketFeed(server.url, "SPX", backfill=backfill, backoff_base=0.01)
    assert times(list(feed)) == list(spx300.index)
    assert feed.backfilled == 20 and feed.reconnects == 1
    start, end = backfill.calls[0]
    assert start < end and len(feed.recoveries) == 1


def test_without_backfill_a_live_gap_is_lost_but_order_holds(
        serve: Callable[..., ReplayServer], spx300: pd.DataFrame) -> None:
    """The test above can fail: the same setup with no backfill loses exactly the gap."""
    server = serve({"SPX": spx300}, mode="live", faults=Faults(drop_after=(50,), gap_on_drop=20))
    got = times(list(WebsocketFeed(server.url, "SPX", backoff_base=0.01)))
    assert len(got) == 280 and got == sorted(set(got))


def test_a_silent_connection_is_declared_stale_and_replaced(
        serve: Callable[..., ReplayServer], spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300}, mode="live", heartbeat=0.05,
                   faults=Faults(stall_after=30, stall_seconds=5))
    feed = WebsocketFeed(server.url, "SPX", backfill=slicer(spx300), stale_after=0.3,
                         backoff_base=0.01)
    assert times(list(feed)) == list(spx300.index)
    assert feed.stale == 1 and server.injected["stall"] == 1


def test_heartbeats_keep_a_slow_stream_alive(serve: Callable[..., ReplayServer],
                                             spx300: pd.DataFrame) -> None:
    # 5 bars/s with a 0.3 s staleness limit: only the 0.05 s heartbeats keep it alive
    server = serve({"SPX": spx300.iloc[:4]}, speed=2.5, heartbeat=0.05)
    feed = WebsocketFeed(server.url, "SPX", stale_after=0.3)
    assert len(list(feed)) == 4 and feed.stale == 0


def test_start_after_resumes_and_backfills_to_the_first_live_bar(
        serve: Callable[..., ReplayServer], spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300}, mode="live", faults=Faults(drop_after=(100,)))
    feed0 = WebsocketFeed(server.url, "SPX", backoff_base=0.01, max_retries=0)
    with pytest.raises(FeedError):   # drains connection 0 (dropped after 100 bars), no retries
        list(feed0)
    resume = spx300.index[49].to_pydatetime()
    feed = WebsocketFeed(server.url, "SPX", backfill=slicer(spx300), start_after=resume)
    assert times(list(feed)) == list(spx300.index[50:])
    assert feed.backfilled == 50


def test_gives_up_after_max_retries_when_nothing_listens() -> None:
    with socket.socket() as s:      # a free port, closed again: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    feed = WebsocketFeed(f"ws://127.0.0.1:{port}", "SPX", backoff_base=0.001,
                         backoff_max=0.01, max_retries=3, seed=1)
    with pytest.raises(FeedError, match="3 failed reconnects"):
        list(feed)
    assert feed.reconnects == 3


def test_close_from_another_thread_ends_the_iteration(serve: Callable[..., ReplayServer],
                                                      spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300}, speed=50)
    feed = WebsocketFeed(server.url, "SPX")
    got = []
    for bar in feed:
        got.append(bar)
        if len(got) == 3:
            threading.Thread(target=feed.close).start()
    assert 3 <= len(got) < 300
    assert feed._thread is not None
    feed._thread.join(5)
    assert not feed._thread.is_alive()


def test_history_and_market_backfill_use_the_cached_service(spx300: pd.DataFrame,
                                                            tmp_path: pytest.TempPathFactory,
                                                            environ: dict[str, str]) -> None:
    from tradelab.app import build
    from tradelab.config import load_config

    app = build(load_config(paths=[], environ=environ, home=tmp_path))
    backfill = market_backfill(app, source="sample")
    feed = WebsocketFeed("ws://127.0.0.1:9", "SPX", backfill=backfill)
    hist = feed.history("SPX", spx300.index[99], 30)
    pd.testing.assert_frame_equal(hist, spx300.iloc[70:100], check_freq=False)
    feed.history("SPX", spx300.index[99], 30)
    assert app.data.stats()["hits"] >= 1
    assert feed.history("SPX", None, 30).empty


def test_two_symbols_each_arrive_complete_and_in_order(serve: Callable[..., ReplayServer],
                                                       spx300: pd.DataFrame) -> None:
    half = spx300.iloc[::2] * 0.5   # a second, sparser series on the same calendar
    frames = {"SPX": spx300, "HALF": half}
    server = serve(frames, mode="live", faults=Faults(seed=2, drop_after=(70, 90), gap_on_drop=9,
                                                      duplicate=0.05, reorder=0.05))

    def backfill(symbol: str, start: object, end: object) -> pd.DataFrame:
        return slicer(frames[symbol])(symbol, start, end)

    feed = WebsocketFeed(server.url, ["SPX", "HALF"], backfill=backfill, backoff_base=0.01)
    got = list(feed)
    for sym, frame in frames.items():
        assert [pd.Timestamp(b.time) for b in got if b.symbol == sym] == list(frame.index)
    assert len(got) == len(spx300) + len(half)


def test_tcp_resets_lose_nothing_with_backfill(serve: Callable[..., ReplayServer],
                                               spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300}, mode="live",
                   faults=Faults(drop_after=(40, 70, 25), gap_on_drop=3, abort=True))
    feed = WebsocketFeed(server.url, "SPX", backfill=slicer(spx300), backoff_base=0.01)
    assert times(list(feed)) == list(spx300.index)
    assert feed.reconnects == 3


def test_engine_stop_request_closes_the_feed(serve: Callable[..., ReplayServer],
                                             spx300: pd.DataFrame) -> None:
    from tradelab.app import assemble_engine

    server = serve({"SPX": spx300}, speed=200)
    feed = WebsocketFeed(server.url, "SPX")
    engine = assemble_engine([], feed)   # no strategies, no store: only the loop and its stop path
    seen: list[Bar] = []

    def on_bar(bar: Bar) -> None:
        seen.append(bar)
        if len(seen) == 5:
            threading.Thread(target=engine.request_stop, args=("test",)).start()

    result = engine.run(on_bar=on_bar)
    assert result.stopped == "stopped"
    assert 5 <= result.bars < 300
    assert times(seen) == list(spx300.index[:len(seen)])
