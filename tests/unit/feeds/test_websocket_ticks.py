"""WebsocketFeed(ticks=True): bars built from the tick stream, with the late-tick policy."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator

import pandas as pd
import pytest
from websockets.asyncio.server import ServerConnection, serve

from tests.unit.feeds.conftest import slicer
from tradelab.feeds.protocol import encode_tick
from tradelab.feeds.replay_server import Faults, ReplayServer
from tradelab.feeds.websocket import WebsocketFeed
from tradelab.interfaces import Bar


def rows(bars: list[Bar]) -> list[tuple]:
    return [(pd.Timestamp(b.time), b.open, b.high, b.low, b.close, b.volume) for b in bars]


def source_rows(frame: pd.DataFrame) -> list[tuple]:
    return [(t, *r) for t, r in zip(frame.index, frame.itertuples(index=False), strict=True)]


def test_bars_built_from_replayed_ticks_equal_the_source_bars(
        serve: Callable[..., ReplayServer], spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300})     # 4 ticks per bar: quarter volumes add up exactly
    feed = WebsocketFeed(server.url, "SPX", ticks=True, interval="1d")
    got = list(feed)
    assert rows(got) == source_rows(spx300)
    stats = feed.stats()
    assert stats["ticks"]["accepted"] == 4 * 300 and stats["ticks"]["late_dropped"] == 0
    assert stats["bars_ignored"] == 300        # the server's own bars are not used


def test_tick_bars_survive_drops_with_backfill(serve: Callable[..., ReplayServer],
                                               spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300}, mode="live",
                   faults=Faults(drop_after=(40, 90), gap_on_drop=5))
    backfill = slicer(spx300)
    feed = WebsocketFeed(server.url, "SPX", ticks=True, interval="1d", backfill=backfill,
                         backoff_base=0.01)
    assert rows(list(feed)) == source_rows(spx300)
    assert feed.reconnects == 2 and feed.backfilled >= 10


# -- late and invalid ticks, from a hand-written stream -----------------------------------
T = pd.Timestamp("2024-01-02 00:00", tz="UTC")
# (seconds after T, price); the 50 s tick arrives after the 61 s one, the 65 s after the 70 s
TICKS = [(0, 10.0), (20, 12.0), (40, 9.0), (61, 11.0), (50, 15.0), (70, 13.0), (65, 8.0),
         (80, -1.0), (125, 14.0)]


@pytest.fixture()
def tick_server() -> Iterator[str]:
    subscriptions: list[dict] = []

    async def handle(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "hello", "server": "test", "version": 1,
                                  "mode": "live"}))
        subscriptions.append(json.loads(await ws.recv()))
        for s, p in TICKS:
            await ws.send(encode_tick("SPX", T + pd.Timedelta(seconds=s), p, 1.0))
        await ws.send(json.dumps({"type": "end", "last": {"SPX": (T + pd.Timedelta(
            seconds=120)).isoformat()}}))
        await ws.wait_closed()

    ready, stop = threading.Event(), threading.Event()
    port: list[int] = []

    async def main() -> None:
        async with serve(handle, "127.0.0.1", 0) as server:
            port.append(next(iter(server.sockets)).getsockname()[1])
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.02)

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait(10)
    yield f"ws://127.0.0.1:{port[0]}"
    assert subscriptions and all(s["ticks"] is True for s in subscriptions)
    stop.set()
    thread.join(10)


def minute(i: int) -> pd.Timestamp:
    return T + pd.Timedelta(minutes=i)


def test_without_grace_a_tick_for_a_closed_bar_is_dropped(tick_server: str) -> None:
    feed = WebsocketFeed(tick_server, "SPX", ticks=True, interval="1min")
    got = rows(list(feed))
    assert got == [(minute(0), 10.0, 12.0, 9.0, 9.0, 3.0),      # the 50 s tick came too late
                   (minute(1), 11.0, 13.0, 8.0, 13.0, 3.0),     # 65 s: late but bar still open
                   (minute(2), 14.0, 14.0, 14.0, 14.0, 1.0)]
    ticks = feed.stats()["ticks"]
    assert ticks["late_dropped"] == 1 and ticks["late_accepted"] == 1
    assert feed.rejected == {"non_positive": 1}


def test_grace_keeps_a_bar_open_for_late_ticks(tick_server: str) -> None:
    feed = WebsocketFeed(tick_server, "SPX", ticks=True, interval="1min", grace="30s")
    got = rows(list(feed))
    # the 50 s tick is merged by its stamp: it is the bar's high and its close
    assert got[0] == (minute(0), 10.0, 15.0, 9.0, 15.0, 4.0)
    assert got[1:] == [(minute(1), 11.0, 13.0, 8.0, 13.0, 3.0),
                       (minute(2), 14.0, 14.0, 14.0, 14.0, 1.0)]
    ticks = feed.stats()["ticks"]
    assert ticks["late_dropped"] == 0 and ticks["late_accepted"] == 2
