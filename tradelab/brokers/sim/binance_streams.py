"""The Binance simulator's websockets: the WebSocket API user-data stream and kline streams.

User data (``/ws-api/v3``): ccxt.pro 4.5.90 ``watch_orders`` on spot sends
``userDataStream.subscribe.signature`` (``apiKey``, ``timestamp``, ``signature``
over the key-sorted parameters); the answer is ``{"id", "status": 200, "result":
{"subscriptionId"}}`` and then every book event arrives as ``{"subscriptionId",
"event": executionReport}`` followed by an ``outboundAccountPosition``. Events that
happen while no client is subscribed are lost, as at Binance (clients catch up over
REST). The faults ``dup_events``, ``reorder`` and ``disconnect_after`` act here.

Market streams (``/ws``, ``/ws/<streams>``, ``/stream?streams=``): ``SUBSCRIBE`` /
``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` of ``<symbol>@kline_<interval>``; each bar
that closes is pushed with ``x: true``, followed by the next bar forming (its open),
which is pushed again every second (:data:`HEARTBEAT`) like Binance's own cadence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from aiohttp import WSMsgType, web

from tradelab.brokers.sim import binance_wire as wire
from tradelab.brokers.sim.core import ExecutionEvent

#: Seconds between repeated updates of the forming kline.
HEARTBEAT = 1.0

if TYPE_CHECKING:
    from tradelab.brokers.sim.binance import BinanceSim


@dataclass(eq=False)
class _User:
    ws: web.WebSocketResponse
    sub_id: int
    queue: asyncio.Queue[ExecutionEvent] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class UserStreams:
    """The user-data subscribers of one simulator."""

    def __init__(self, sim: BinanceSim) -> None:
        self.sim = sim
        self.clients: set[_User] = set()
        self.sockets: dict[web.WebSocketResponse, Any] = {}
        self.next_id = 0
        self.connections = 0  # ever opened (tests check reconnects)

    def publish(self, event: ExecutionEvent) -> None:
        """Book subscriber: queue ``event`` for every subscribed client."""
        for client in list(self.clients):
            client.queue.put_nowait(event)

    async def close_all(self) -> int:
        """Drop every user-data connection (a stream disconnect: the TCP connection is
        cut, as when a network path fails); returns how many."""
        sockets = list(self.sockets.items())
        for ws, transport in sockets:
            if transport is not None:
                transport.abort()
            with contextlib.suppress(Exception):
                await ws.close()
        return len(sockets)

    def _messages(self, client: _User, ev: ExecutionEvent) -> list[str]:
        m = self.sim.book.markets[ev.order.symbol]
        report = wire.execution_report(ev)
        position = wire.account_position(self.sim.book, [m.base, m.quote], report["E"])
        return [json.dumps({"subscriptionId": client.sub_id, "event": e}) for e in (report, position)]

    async def _send(self, client: _User) -> None:
        faults = self.sim.faults
        held: list[str] = []
        while True:
            try:
                ev = await (asyncio.wait_for(client.queue.get(), 0.3) if held else client.queue.get())
            except TimeoutError:
                msgs, held = held, []  # nothing came after a held-back event: send it now
            else:
                msgs = self._messages(client, ev)
                if not held and faults.take("reorder"):
                    held = msgs
                    continue
                if faults.take("dup_events"):
                    msgs = msgs + msgs
                msgs, held = msgs + held, []
            for text in msgs:
                await client.ws.send_str(text)
            if faults.countdown("disconnect_after"):
                await self.close_all()
                return

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets[ws] = request.transport
        self.connections += 1
        client: _User | None = None
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    await ws.send_json({"id": None, "status": 400,
                                        "error": {"code": -1100, "msg": "Illegal characters found."}})
                    continue
                rid, method, params = req.get("id"), req.get("method"), req.get("params") or {}
                if method == "userDataStream.subscribe.signature":
                    error = self._check(params)
                    if error is not None:
                        await ws.send_json({"id": rid, "status": 400 if error[0] != -2015 else 401,
                                            "error": {"code": error[0], "msg": error[1]}})
                        continue
                    if client is None:
                        client = _User(ws, self.next_id)
                        self.next_id += 1
                    await ws.send_json({"id": rid, "status": 200,
                                        "result": {"subscriptionId": client.sub_id}, "rateLimits": []})
                    if client.task is None:
                        self.clients.add(client)
                        client.task = asyncio.get_running_loop().create_task(self._send(client))
                elif method == "userDataStream.unsubscribe":
                    if client is not None:
                        self.clients.discard(client)
                    await ws.send_json({"id": rid, "status": 200, "result": {}})
                elif method in ("ping", "time"):
                    await ws.send_json({"id": rid, "status": 200,
                                        "result": {"serverTime": wire_ms()} if method == "time" else {}})
                else:
                    await ws.send_json({"id": rid, "status": 400,
                                        "error": {"code": -1100, "msg": f"Unknown method {method}."}})
        finally:
            self.sockets.pop(ws, None)
            if client is not None:
                self.clients.discard(client)
                if client.task is not None:
                    client.task.cancel()
        return ws

    def _check(self, params: dict[str, Any]) -> tuple[int, str] | None:
        if params.get("apiKey") != self.sim.key:
            return -2015, "Invalid API-key, IP, or permissions for action."
        signed = {k: v for k, v in params.items() if k != "signature"}
        payload = "&".join(f"{k}={_str(v)}" for k, v in sorted(signed.items()))
        if params.get("signature") != wire.sign(self.sim.secret, payload):
            return -1022, "Signature for this request is not valid."
        ts, window = int(params.get("timestamp", 0)), int(params.get("recvWindow", 5000))
        now = wire_ms()
        if ts > now + 1000 or now - ts > window:
            return -1021, "Timestamp for this request is outside of the recvWindow."
        return None


def _str(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def wire_ms() -> int:
    return int(time.time() * 1000)


class MarketStreams:
    """Kline subscribers of one simulator."""

    def __init__(self, sim: BinanceSim) -> None:
        self.sim = sim
        self.subs: dict[web.WebSocketResponse, tuple[set[str], bool]] = {}

    def interval(self) -> str:
        return wire.interval_name(self.sim.book.interval_ns)

    def rows(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None,
             limit: int = 500) -> list[list[Any]]:
        """Klines of ``symbol`` (closed ones and the forming one, which shows its open only)
        opening within ``[start_ms, end_ms]``: the first ``limit`` with a start, else the last."""
        book = self.sim.book
        hist = book.history(symbol)
        ms = hist.index.as_unit("ns").asi8 // 1_000_000 if len(hist) else []  # any unit (us from files)
        keep = [True] * len(hist)
        if start_ms is not None or end_ms is not None:
            keep = [(start_ms is None or t >= start_ms) and (end_ms is None or t <= end_ms) for t in ms]
        frame = hist[keep]
        rows_ix = list(frame.index[:limit + 1] if start_ms is not None else frame.index[-limit:])
        rows = [wire.kline_row(t, frame.loc[t], book.interval_ns) for t in rows_ix]
        nxt = book.bar(symbol, book.cursor + 1)
        if nxt is not None:
            t = book.timeline[book.cursor + 1]
            t_ms = pd.Timestamp(t).value // 1_000_000
            if (start_ms is None or t_ms >= start_ms) and (end_ms is None or t_ms <= end_ms):
                rows.append(wire.kline_row(t, nxt, book.interval_ns, True))
        return rows[:limit] if start_ms is not None else rows[-limit:]

    def _events(self, stream: str, closed_too: bool) -> list[dict[str, Any]]:
        book = self.sim.book
        name, _, kind = stream.partition("@")
        m = book.markets.get(name.upper())
        if m is None or kind != f"kline_{self.interval()}":
            return []
        out = []
        bar = book.bar(m.symbol, book.cursor)
        if closed_too and bar is not None:
            row = wire.kline_row(book.timeline[book.cursor], bar, book.interval_ns)
            out.append(wire.kline_event(m.symbol, row, self.interval(), True))
        nxt = book.bar(m.symbol, book.cursor + 1)
        if nxt is not None:
            row = wire.kline_row(book.timeline[book.cursor + 1], nxt, book.interval_ns, True)
            out.append(wire.kline_event(m.symbol, row, self.interval(), False))
        return out

    async def _send(self, ws: web.WebSocketResponse, stream: str, combined: bool,
                    closed_too: bool) -> None:
        for ev in self._events(stream, closed_too):
            with contextlib.suppress(Exception):
                await ws.send_json({"stream": stream, "data": ev} if combined else ev)

    async def push_bars(self) -> None:
        """After a bar closed: push it, then the next one forming, to every subscriber."""
        for ws, (streams, combined) in list(self.subs.items()):
            for stream in sorted(streams):
                await self._send(ws, stream, combined, True)

    async def close_all(self) -> None:
        for ws in list(self.subs):
            with contextlib.suppress(Exception):
                await ws.close()

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        tail = request.match_info.get("tail", "")
        combined = request.path == "/stream"
        initial = request.query.get("streams", "").split("/") if combined else tail.split("/")
        streams = {s for s in initial if "@" in s}
        self.subs[ws] = (streams, combined)
        beat = asyncio.get_running_loop().create_task(self._heartbeat(ws, streams, combined))
        try:
            for s in sorted(streams):
                await self._send(ws, s, combined, False)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    continue
                method, params, rid = req.get("method"), req.get("params") or [], req.get("id")
                if method == "SUBSCRIBE":
                    streams.update(params)
                    await ws.send_json({"result": None, "id": rid})
                    for s in params:
                        await self._send(ws, s, combined, False)
                elif method == "UNSUBSCRIBE":
                    streams.difference_update(params)
                    await ws.send_json({"result": None, "id": rid})
                elif method == "LIST_SUBSCRIPTIONS":
                    await ws.send_json({"result": sorted(streams), "id": rid})
        finally:
            beat.cancel()
            self.subs.pop(ws, None)
        return ws

    async def _heartbeat(self, ws: web.WebSocketResponse, streams: set[str], combined: bool) -> None:
        """Re-send the forming bar every ``HEARTBEAT`` seconds, as Binance pushes a kline
        stream every second or two even when nothing traded."""
        while not ws.closed:
            await asyncio.sleep(HEARTBEAT)
            for stream in sorted(streams):
                await self._send(ws, stream, combined, False)


__all__ = ["MarketStreams", "UserStreams"]
