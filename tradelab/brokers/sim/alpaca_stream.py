"""Alpaca's trading stream (``/stream``): authenticate, listen, ``trade_updates``.

The handshake and messages are Alpaca's, as ``alpaca.trading.stream.TradingStream``
speaks them::

    → {"action": "authenticate", "data": {"key_id": K, "secret_key": S}}
    ← {"stream": "authorization", "data": {"action": "authenticate", "status": "authorized"}}
    → {"action": "listen", "data": {"streams": ["trade_updates"]}}
    ← {"stream": "listening", "data": {"streams": ["trade_updates"]}}
    ← {"stream": "trade_updates", "data": {"event": "fill", "order": {...}, ...}}

Frames are binary (JSON text inside), as Alpaca's paper stream sends them. A wrong
key pair is answered ``"status": "unauthorized"`` and the socket closed. Book events
go out in book order through one pump, which applies the stream faults:
``dup_events`` (sent twice), ``reorder`` (held back and sent after the next event,
or after 0.3 s when none comes) and ``disconnect_after`` (every stream closed).
Like Alpaca, events that happen while a client is not listening are not replayed:
the client catches up by REST.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web

from tradelab.brokers.sim import alpaca_shapes as shapes
from tradelab.brokers.sim.core import ExecutionEvent, VenueBook
from tradelab.brokers.sim.faults import FaultPlan


def _frame(stream: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"stream": stream, "data": data}).encode()


class TradeUpdates:
    """The listening clients of one simulator and the pump that feeds them."""

    def __init__(self, book: VenueBook, plan: FaultPlan, key: str, secret: str) -> None:
        self.book, self.plan, self.key, self.secret = book, plan, key, secret
        self.clients: set[web.WebSocketResponse] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.outbox: asyncio.Queue[dict[str, Any]] | None = None
        self._pump_task: asyncio.Task[None] | None = None
        book.subscribers.append(self.on_event)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.outbox = asyncio.Queue()
        self._pump_task = self.loop.create_task(self._pump())

    async def stop(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
        with contextlib.suppress(ValueError):
            self.book.subscribers.remove(self.on_event)
        await self.close_all()

    async def close_all(self) -> int:
        """Close every stream now (clients reconnect); how many were open."""
        clients = list(self.clients)
        self.clients.clear()
        for ws in clients:
            await ws.close()
        return len(clients)

    def on_event(self, event: ExecutionEvent) -> None:
        """A book event (any thread, under the book's lock) → the pump, in book order."""
        loop, outbox = self.loop, self.outbox
        if loop is None or outbox is None or loop.is_closed():
            return
        message = shapes.trade_update(self.book, event)  # position_qty as of this event
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(outbox.put_nowait, message)

    async def _pump(self) -> None:
        assert self.outbox is not None
        held: dict[str, Any] | None = None
        while True:
            msg: dict[str, Any] | None = None
            with contextlib.suppress(TimeoutError):  # none came after the held event: send it
                msg = await asyncio.wait_for(self.outbox.get(), 0.3 if held else None)
            if msg is not None and held is None and self.plan.take("reorder"):
                held = msg
                continue
            batch = [m for m in (msg, held) if m is not None]
            held = None
            for one in batch:
                copies = 2 if self.plan.take("dup_events") else 1
                data = json.dumps(one).encode()
                for ws in list(self.clients):
                    for _ in range(copies):
                        try:
                            await ws.send_bytes(data)
                        except (ConnectionError, RuntimeError):
                            self.clients.discard(ws)
                if self.plan.countdown("disconnect_after"):
                    await self.close_all()

    async def handler(self, request: web.Request) -> web.StreamResponse:
        """``GET /stream``: one client's session."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        authorized = False
        async for raw in ws:
            if raw.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                msg = json.loads(raw.data)
                action, data = msg.get("action"), msg.get("data") or {}
            except (ValueError, AttributeError):
                await ws.send_bytes(_frame("listening", {"error": "invalid syntax"}))
                continue
            if action in ("authenticate", "auth"):
                authorized = data.get("key_id") == self.key and data.get("secret_key") == self.secret
                await ws.send_bytes(_frame("authorization", {
                    "action": "authenticate", "status": "authorized" if authorized else "unauthorized"}))
                if not authorized:
                    break
            elif action == "listen" and authorized:
                streams = [s for s in data.get("streams", []) if s == "trade_updates"]
                await ws.send_bytes(_frame("listening", {"streams": streams}))
                if streams:
                    self.clients.add(ws)
                else:
                    self.clients.discard(ws)
            else:
                await ws.send_bytes(_frame("authorization", {"action": str(action),
                                                             "status": "unauthorized"}))
        self.clients.discard(ws)
        await ws.close()
        return ws


__all__ = ["TradeUpdates"]
