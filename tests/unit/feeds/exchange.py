"""A loopback exchange speaking Binance spot: REST klines and aggTrades, kline and trade streams.

The real ccxt client (``CcxtFeed``) is pointed at it. Its market is ETH/BTC
(``tests/fixtures/binance/exchangeInfo.json``); its candles are a deterministic
1-minute series whose *exchange clock* moves one candle per REST request (or as
the stream advances), so the newest candle of every answer is still forming: a
forming candle's close and volume differ from the final ones.

With :meth:`Exchange.use_bars` the candles are given rows (e.g. real SPX bars
on the minute grid) and the exchange also trades: four trades per candle made
by :func:`tradelab.feeds.aggregate.bar_ticks`, so the bars they aggregate to
are exactly the rows. Of the forming candle only the first two trades exist.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import ServerConnection, serve

from tests.loopback import JsonHandler
from tradelab.feeds.aggregate import bar_ticks

EXCHANGE_INFO = (Path(__file__).resolve().parents[2] / "fixtures" / "binance"
                 / "exchangeInfo.json").read_bytes()
T0 = 1_600_000_000_000 - 1_600_000_000_000 % 60_000   # a minute boundary (ms)
MINUTE = 60_000
PER_BAR = 4                   # trades per candle


def final(i: int) -> list[Any]:
    """Candle ``i`` once closed: ``[ms, open, high, low, close, volume]`` as floats."""
    o = 0.02 + i * 1e-5
    c = o + (2e-6 if i % 3 else -2e-6)
    return [T0 + i * MINUTE, o, max(o, c) + 1e-6, min(o, c) - 1e-6, c, 10.0 + i]


def forming(i: int) -> list[Any]:
    """Candle ``i`` while still forming: open so far, half the volume."""
    ms, o, h, low, _c, v = final(i)
    return [ms, o, h, low, o, v / 2]


def kline(row: list[Any]) -> list[Any]:
    """A row as Binance's REST ``/api/v3/klines`` writes it (numbers as strings)."""
    ms, o, h, low, c, v = row
    return [ms, *(None if x is None else repr(x) for x in (o, h, low, c, v)), ms + MINUTE - 1,
            "0", 1, "0", "0", "0"]


class Exchange:
    """Shared state: the clock, the outage window, malformed candles, the request log."""

    def __init__(self) -> None:
        self.now = 0                  # index of the candle forming right now
        self.fail: Callable[[int], bool] = lambda n: False   # REST request n fails?
        self.fail_status = 503        # ... with this status (429: rate limit exceeded)
        self.bad: dict[int, Callable[[list[Any]], list[Any]]] = {}   # candle → breakage
        self.requests: list[tuple[float, dict[str, str]]] = []
        self.tick_per_request = True
        self.lock = threading.Lock()
        self.rows: list[list[Any]] | None = None
        self.trades: list[dict[str, Any]] = []   # Binance aggTrades, in time order
        self.bad_trades: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self.history: int | None = None   # REST trades start at this candle (older: gone)
        self.overlap = 0                  # trades before startTime answered as well

    def use_bars(self, rows: list[list[Any]]) -> None:
        """Candles ``[ms, o, h, l, c, v]`` from ``rows`` and trades that aggregate to them."""
        self.rows = rows
        self.trades = []
        for row in rows:
            for t, price, size in bar_ticks(row[0] * 10**6, *row[1:], interval="1min",
                                            n=PER_BAR):
                k = len(self.trades)
                self.trades.append({"a": k + 1, "p": repr(price), "q": repr(size), "f": k + 1,
                                    "l": k + 1, "T": t // 10**6, "m": False, "M": True})

    def trade(self, k: int) -> dict[str, Any]:
        raw = self.trades[k]
        return self.bad_trades[k](dict(raw)) if k in self.bad_trades else raw

    def visible(self) -> int:
        """How many trades exist now: every closed candle's and two of the forming one."""
        return min(len(self.trades), self.now * PER_BAR + 2)

    def agg_trades(self, start: int | None, end: int | None, limit: int) -> list[dict[str, Any]]:
        n = self.visible()
        if start is None:
            return [self.trade(k) for k in range(max(0, n - limit), n)]
        first = next((k for k in range(n) if self.trades[k]["T"] >= start), n)
        if self.history is not None:
            first = max(first, self.history * PER_BAR)
        first = max(0, first - self.overlap)
        ks = [k for k in range(first, n) if end is None or self.trades[k]["T"] <= end]
        return [self.trade(k) for k in ks[:limit]]

    def candle(self, i: int) -> list[Any]:
        if self.rows is not None:
            ms, o, h, low, c, v = self.rows[i]
            row = [ms, o, h, low, c, v] if i < self.now else [ms, o, h, low, o, v / 2]
        else:
            row = final(i) if i < self.now else forming(i)
        return self.bad[i](row) if i in self.bad else row

    def klines(self, start: int | None, limit: int) -> list[list[Any]]:
        first = 0 if start is None else max(0, -(-(start - T0) // MINUTE))
        if start is None:
            first = max(0, self.now + 1 - limit)
        return [kline(self.candle(i)) for i in range(first, self.now + 1)][:limit]


class _Rest(JsonHandler):
    def do_GET(self) -> None:
        ex: Exchange = self.server.exchange  # type: ignore[attr-defined]
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v3/exchangeInfo":
            self.send_json(200, EXCHANGE_INFO)
            return
        with ex.lock:
            n = len(ex.requests)
            ex.requests.append((time.perf_counter(), query))
            if ex.tick_per_request:
                ex.now += 1
            if ex.fail(n):
                body = (b'{"code":-1003,"msg":"Too many requests."}' if ex.fail_status == 429
                        else b"<html>Service Unavailable</html>")
                self.send_json(ex.fail_status, body)
                return
            start = int(query["startTime"]) if "startTime" in query else None
            if url.path == "/api/v3/aggTrades":
                end = int(query["endTime"]) if "endTime" in query else None
                rows = ex.agg_trades(start, end, int(query.get("limit", 500)))
            else:
                rows = ex.klines(start, int(query.get("limit", 500)))
        self.send_json(200, json.dumps(rows).encode())


class RestServer:
    def __init__(self, exchange: Exchange) -> None:
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _Rest)
        self.http.exchange = exchange  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.http.server_address[:2]
        return f"http://{host}:{port}/api/v3"

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()


class _Stream:
    """A Binance market stream: per step of the exchange clock, the events of candle ``i``.

    Connection ``k`` sends from the exchange clock on; it is dropped after
    ``drop_after[k]`` candles and the clock then skips ``gap`` candles while the
    client is away. ``streams`` lists what each connection subscribed to.
    """

    def __init__(self, exchange: Exchange, drop_after: tuple[int, ...] = (), gap: int = 0,
                 pause: float = 0.01, total: int = 40) -> None:
        self.exchange, self.drop_after, self.gap, self.pause = exchange, drop_after, gap, pause
        self.total = total
        self.streams: list[list[str]] = []
        self.port = 0
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main(ready)), daemon=True)
        self.thread.start()
        ready.wait(10)

    @property
    def url(self) -> str:
        # ccxt tells Binance spot streams by "/stream" in the URL.
        return f"ws://127.0.0.1:{self.port}/stream/ws"

    async def _main(self, ready: threading.Event) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)

    def events(self, i: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def _handle(self, ws: ServerConnection) -> None:
        sub = json.loads(await ws.recv())
        conn = len(self.streams)
        self.streams.append(sub["params"])
        await ws.send(json.dumps({"result": None, "id": sub["id"]}))
        ex = self.exchange
        drop = self.drop_after[conn] if conn < len(self.drop_after) else None
        sent = 0
        while ex.now < self.total:
            with ex.lock:
                events = self.events(ex.now)
            for event in events:
                await ws.send(json.dumps(event))
                await asyncio.sleep(self.pause)
            with ex.lock:
                ex.now += 1
            sent += 1
            if drop is not None and sent >= drop:
                with ex.lock:
                    ex.now += self.gap
                await ws.close(1001, "injected drop")
                return
        await ws.wait_closed()


class KlineStream(_Stream):
    """Binance's kline stream: per candle a forming update, then the closed one (``x``)."""

    def events(self, i: int) -> list[dict[str, Any]]:
        ex = self.exchange
        out = []
        for closed in (False, True):
            row = final(i) if closed else forming(i)
            out.append(_event(ex.bad[i](row) if i in ex.bad else row, closed))
        return out


class TradeStream(_Stream):
    """Binance's trade stream (``<symbol>@trade``): the trades of candle ``i`` per step.

    ``late`` maps a trade's index to how many later trades pass it on the wire.
    """

    def __init__(self, exchange: Exchange, *, late: dict[int, int] | None = None,
                 **kwargs: Any) -> None:
        order = list(range(len(exchange.trades)))
        for k, d in (late or {}).items():
            order.remove(k)
            order.insert(order.index(k + d) + 1, k)
        self.order = order
        super().__init__(exchange, **kwargs)

    def events(self, i: int) -> list[dict[str, Any]]:
        out = []
        for k in self.order[i * PER_BAR:(i + 1) * PER_BAR]:
            raw = self.exchange.trade(k)
            out.append({"e": "trade", "E": raw.get("T"), "s": "ETHBTC", "t": raw["a"],
                        "p": raw.get("p"), "q": raw.get("q"), "b": 1, "a": 2, "T": raw.get("T"),
                        "m": False, "M": True})
        return out


def _event(row: list[Any], closed: bool) -> dict[str, Any]:
    ms, o, h, low, c, v = row
    k = {"t": ms, "T": ms + MINUTE - 1, "s": "ETHBTC", "i": "1m", "f": 1, "L": 2,
         "o": repr(o), "c": repr(c), "h": repr(h), "l": repr(low), "v": repr(v), "n": 2,
         "x": closed, "q": "0", "V": "0", "Q": "0", "B": "0"}
    return {"e": "kline", "E": ms, "s": "ETHBTC", "k": k}
