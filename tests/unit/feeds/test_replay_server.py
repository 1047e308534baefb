"""The replay server: subscribe protocol, since, live mode, deterministic faults, ticks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tradelab.feeds.aggregate import aggregate
from tradelab.feeds.protocol import Rejected, parse_message, subscribe_message
from tradelab.feeds.replay_server import Faults, ReplayServer


def session(url: str, symbols: list[str], since: Any = None, ticks: bool = False,
            limit: int = 10_000) -> list[str]:
    """Every raw message after ``hello`` until ``end`` or the server closes (bounded)."""
    out: list[str] = []
    with connect(url, open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
        ws.send(subscribe_message(symbols, since, ticks))
        try:
            while len(out) < limit:
                raw = ws.recv(timeout=5)
                out.append(raw)
                if '"end"' in raw:
                    break
        except ConnectionClosed:
            pass
    return out


def bars_of(raws: list[str]) -> list[Any]:
    out = []
    for raw in raws:
        try:
            kind, value = parse_message(raw)
        except Rejected:
            continue
        if kind == "bar":
            out.append(value)
    return out


def test_streams_every_bar_then_end(serve: Callable[..., ReplayServer],
                                    spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300})
    raws = session(server.url, ["SPX"])
    got = bars_of(raws)
    assert [b.time for b in got] == list(spx300.index)
    assert [b.close for b in got] == spx300["close"].tolist()
    kind, last = parse_message(raws[-1])
    assert kind == "end" and last == {"SPX": spx300.index[-1]}


def test_since_starts_after_the_given_time(serve: Callable[..., ReplayServer],
                                           spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300})
    got = bars_of(session(server.url, ["SPX"], since=spx300.index[99].to_pydatetime()))
    assert [b.time for b in got] == list(spx300.index[100:])


def test_only_subscribed_symbols_are_sent(serve: Callable[..., ReplayServer],
                                          spx300: pd.DataFrame) -> None:
    other = spx300.iloc[::2] * 2
    server = serve({"SPX": spx300, "TWICE": other})
    got = bars_of(session(server.url, ["TWICE"]))
    assert {b.symbol for b in got} == {"TWICE"} and len(got) == len(other)


def test_drop_after_n_then_live_mode_moves_on(serve: Callable[..., ReplayServer],
                                              spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300}, mode="live", faults=Faults(drop_after=(40,), gap_on_drop=7))
    first = bars_of(session(server.url, ["SPX"]))
    assert len(first) == 40 and server.injected["drop"] == 1
    # since is ignored in live mode: the venue moved on by 7 bars while we were away
    second = bars_of(session(server.url, ["SPX"], since=first[-1].time))
    assert second[0].time == spx300.index[47]


def test_faults_are_reproducible_per_seed(serve: Callable[..., ReplayServer],
                                          spx300: pd.DataFrame) -> None:
    faults = Faults(seed=3, duplicate=0.1, reorder=0.1, malformed=0.1)
    a = session(serve({"SPX": spx300}, faults=faults).url, ["SPX"])
    b = session(serve({"SPX": spx300}, faults=faults).url, ["SPX"])
    c = session(serve({"SPX": spx300}, faults=Faults(seed=4, duplicate=0.1, reorder=0.1,
                                                     malformed=0.1)).url, ["SPX"])
    assert a == b
    assert a != c
    times = [x.time for x in bars_of(a)]
    assert len(times) > len(spx300)                    # duplicates
    assert times != sorted(times)                      # reordered
    assert set(times) == set(spx300.index)             # and nothing missing


def test_ticks_aggregate_back_to_the_bars(serve: Callable[..., ReplayServer],
                                          spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300.iloc[:20]}, ticks_per_bar=6)
    ticks = []
    for raw in session(server.url, ["SPX"], ticks=True):
        kind, value = parse_message(raw)
        if kind == "tick":
            ticks.append(value[1:])
    assert len(ticks) == 20 * 6
    got = aggregate(ticks, "SPX", "1d")
    want = spx300.iloc[:20]
    pd.testing.assert_frame_equal(got[["open", "high", "low", "close"]],
                                  want[["open", "high", "low", "close"]], check_index_type=False,
                                  check_exact=True)
    assert list(got.index) == list(want.index)
    assert got["volume"].to_numpy() == pytest.approx(want["volume"].to_numpy(), rel=1e-12)


def test_a_bad_subscribe_is_answered_and_closed(serve: Callable[..., ReplayServer],
                                                spx300: pd.DataFrame) -> None:
    server = serve({"SPX": spx300})
    with connect(server.url, open_timeout=5) as ws:
        ws.recv(timeout=5)
        ws.send('{"op": "subscribe"}')
        assert json.loads(ws.recv(timeout=5))["type"] == "error"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)


def test_bad_settings_are_refused(spx300: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="mode"):
        ReplayServer({"SPX": spx300}, mode="sometimes")
    with pytest.raises(ValueError, match="speed"):
        ReplayServer({"SPX": spx300}, speed=0)
