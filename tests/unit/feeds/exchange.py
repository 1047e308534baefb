"""A loopback exchange speaking Binance spot: REST klines and the kline websocket stream.

The real ccxt client (``CcxtFeed``) is pointed at it. Its market is ETH/BTC
(``tests/fixtures/binance/exchangeInfo.json``); its candles are a deterministic
1-minute series whose *exchange clock* moves one candle per REST request (or as
the stream advances), so the newest candle of every answer is still forming: a
forming candle's close and volume differ from the final ones.
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

EXCHANGE_INFO = (Path(__file__).resolve().parents[2] / "fixtures" / "binance"
                 / "exchangeInfo.json").read_bytes()
T0 = 1_600_000_000_000 - 1_600_000_000_000 % 60_000   # a minute boundary (ms)
MINUTE = 60_000


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

    def candle(self, i: int) -> list[Any]:
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


class KlineStream:
    """Binance's kline stream: per candle a forming update, then the closed one (``x``).

    Connection ``k`` sends candles from the exchange clock on; it is dropped after
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

    async def _handle(self, ws: ServerConnection) -> None:
        sub = json.loads(await ws.recv())
        conn = len(self.streams)
        self.streams.append(sub["params"])
        await ws.send(json.dumps({"result": None, "id": sub["id"]}))
        ex = self.exchange
        drop = self.drop_after[conn] if conn < len(self.drop_after) else None
        sent = 0
        while ex.now < self.total:
            i = ex.now
            for closed in (False, True):
                with ex.lock:
                    row = final(i) if closed else forming(i)
                    row = ex.bad[i](row) if i in ex.bad else row
                await ws.send(json.dumps(_event(row, closed)))
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


def _event(row: list[Any], closed: bool) -> dict[str, Any]:
    ms, o, h, low, c, v = row
    k = {"t": ms, "T": ms + MINUTE - 1, "s": "ETHBTC", "i": "1m", "f": 1, "L": 2,
         "o": repr(o), "c": repr(c), "h": repr(h), "l": repr(low), "v": repr(v), "n": 2,
         "x": closed, "q": "0", "V": "0", "Q": "0", "B": "0"}
    return {"e": "kline", "E": ms, "s": "ETHBTC", "k": k}
