"""The Binance spot venue simulator: Binance's wire protocol over a :class:`VenueBook`.

The **unmodified** ccxt 4.5.90 clients (sync REST and ccxt.pro) talk to it with
only their URLs pointed at it (:func:`tradelab.brokers.ccxt_broker.loopback_urls`)::

    http://HOST:PORT/api/v3/...         spot REST (public and signed)
    http://HOST:PORT/sapi/v1/...        what load_markets() asks (coins, margin pairs)
    http://HOST:PORT/fapi|dapi/v1/exchangeInfo   empty futures markets
    ws://HOST:PORT/ws-api/v3            WebSocket API (userDataStream.subscribe.signature)
    ws://HOST:PORT/ws[/...] , /stream   market streams (<symbol>@kline_<interval>)

Served: ``ping``, ``time``, ``exchangeInfo``, ``klines``, ``ticker/price``; signed
``POST/GET/DELETE order``, ``openOrders``, ``allOrders``, ``account``, ``myTrades``
(HMAC-SHA256 over the query string + body with ``X-MBX-APIKEY``, ``timestamp`` within
``recvWindow``), with Binance's error codes (-1022 bad signature, -2014/-2015 key,
-1021 timestamp, -2013 unknown order, -2011 unknown cancel, -2010 duplicate client id
or insufficient balance, -1013 filter failures, -1121 bad symbol, -1003/-1015 with
HTTP 429 and ``Retry-After``). Order types MARKET, LIMIT (GTC/IOC/FOK) and
STOP_LOSS (stop-market); others get -1013 "Unsupported order type.". The user-data
stream pushes ``executionReport`` then ``outboundAccountPosition`` per event.

Control endpoints (outside Binance's namespace, no signature; loopback use only):

* ``POST /_sim/advance?n=N`` closes the next N bars (matching orders, pushing klines);
* ``GET/POST/DELETE /_sim/faults`` shows / merges a SPEC into / clears the fault plan
  (:mod:`tradelab.brokers.sim.faults`);
* ``POST /_sim/disconnect`` closes every user-data stream now;
* ``POST /_sim/restart`` restarts the simulator (state kept when it has ``--state``);
* ``GET /_sim/orders`` lists every order the venue holds (client ids included, for
  checking that none was placed twice); ``GET /_sim/status`` the bar position.

With ``bar_seconds > 0`` a bar closes every that many seconds; 0 = only by
``/_sim/advance``. aiohttp serves it (already a dependency, and it does HTTP and
websockets on one port in one event loop, which keeps the book single-threaded).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tradelab.brokers.sim import binance_wire as wire
from tradelab.brokers.sim import state
from tradelab.brokers.sim.binance_streams import MarketStreams, UserStreams
from tradelab.brokers.sim.core import VenueBook, VenueError
from tradelab.brokers.sim.faults import FaultPlan, FaultSpecError

RATE_MSG = ("Too many requests; current limit of IP(127.0.0.1) request weight is 6000 per minute. "
            "Please use WebSocket Streams for live updates to avoid polling the API.")
ORDER_PATHS = ("/api/v3/order",)
CLIENT_ID = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")


def _ms() -> int:
    return int(time.time() * 1000)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _static(fn: Callable[[], Any]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler answering ``fn()`` as JSON."""
    async def handler(_request: web.Request) -> web.StreamResponse:
        return _json(fn())
    return handler


def _err(status: int, code: int, msg: str) -> web.Response:
    return _json(wire.error_body(code, msg), status)


class BinanceSim:
    """One simulated Binance spot account served over HTTP and websockets.

    Parameters
    ----------
    book
        The matching engine (markets, balances, bars).
    key, secret
        The only API key accepted, and its HMAC secret.
    faults
        The fault plan (see :mod:`tradelab.brokers.sim.faults`).
    bar_seconds
        Close a bar every ``bar_seconds`` (0: only ``POST /_sim/advance``).
    state_path
        Where the book's state is saved after every change (``None``: not kept).
    on_restart
        Called (after the answer went out) when a restart is asked for or the
        ``restart_after`` fault fires; the runner restarts the server.
    order_limit
        New orders allowed per 10 seconds (Binance's ``ORDERS`` limit).
    """

    def __init__(self, book: VenueBook, *, key: str, secret: str, faults: FaultPlan | None = None,
                 bar_seconds: float = 0.0, state_path: str | Path | None = None,
                 on_restart: Callable[[], None] | None = None, order_limit: int = 100) -> None:
        self.book, self.key, self.secret = book, key, secret
        self.faults = faults or FaultPlan()
        self.bar_seconds, self.on_restart = bar_seconds, on_restart
        self.state_path = Path(state_path) if state_path else None
        self.order_limit = order_limit
        self.order_times: list[float] = []
        if self.state_path is not None:
            path = self.state_path
            state.load(book, path)
            book.on_change = lambda: state.save(book, path)
        self.users = UserStreams(self)
        self.markets = MarketStreams(self)
        book.subscribers.append(self.users.publish)
        self._clock: asyncio.Task[None] | None = None

    # -- application ------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults_mw])
        r = app.router
        r.add_get("/api/v3/ping", _static(lambda: {}))
        r.add_get("/api/v3/time", _static(lambda: {"serverTime": _ms()}))
        r.add_get("/api/v3/exchangeInfo", _static(lambda: wire.exchange_info(self.book, _ms())))
        r.add_get("/api/v3/klines", self.klines)
        r.add_get("/api/v3/ticker/price", self.ticker)
        for path in ("/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"):
            r.add_get(path, _static(lambda: {"timezone": "UTC", "serverTime": _ms(), "symbols": []}))
        r.add_get("/sapi/v1/capital/config/getall", self._signed(lambda _p: wire.coins(self.book)))
        r.add_get("/sapi/v1/margin/allPairs", self._signed(lambda _p: []))
        r.add_get("/sapi/v1/margin/isolated/allPairs", self._signed(lambda _p: []))
        r.add_post("/api/v3/order", self._signed(self.new_order, order=True))
        r.add_get("/api/v3/order", self._signed(self.get_order))
        r.add_delete("/api/v3/order", self._signed(self.cancel_order))
        r.add_get("/api/v3/openOrders", self._signed(self.open_orders))
        r.add_get("/api/v3/allOrders", self._signed(self.all_orders))
        r.add_get("/api/v3/account", self._signed(lambda _p: wire.account(self.book, _ms())))
        r.add_get("/api/v3/myTrades", self._signed(self.my_trades))
        r.add_get("/ws-api/v3", self.users.handler)
        r.add_get("/ws", self.markets.handler)
        r.add_get("/ws/{tail:.*}", self.markets.handler)
        r.add_get("/stream", self.markets.handler)
        r.add_post("/_sim/advance", self.sim_advance)
        r.add_get("/_sim/faults", _static(self.faults.describe))
        r.add_post("/_sim/faults", self.sim_faults)
        r.add_delete("/_sim/faults", self.sim_clear_faults)
        r.add_post("/_sim/disconnect", self.sim_disconnect)
        r.add_post("/_sim/restart", self.sim_restart)
        r.add_get("/_sim/orders", self.sim_orders)
        r.add_get("/_sim/status", self.sim_status)
        app.on_startup.append(self._start_clock)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _start_clock(self, _app: web.Application) -> None:
        if self.bar_seconds > 0:
            self._clock = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.bar_seconds)
            await self.advance(1)

    async def _shutdown(self, _app: web.Application) -> None:
        if self._clock is not None:
            self._clock.cancel()
        await self.users.close_all()
        await self.markets.close_all()

    async def advance(self, n: int) -> int:
        """Close up to ``n`` bars one at a time (kline subscribers see each of them)."""
        done = 0
        for _ in range(n):
            if not self.book.advance(1):
                break
            done += 1
            await self.markets.push_bars()
        return done

    @web.middleware
    async def _faults_mw(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith(("/api/", "/sapi/", "/fapi/", "/dapi/")):
            scope = "order" if path in ORDER_PATHS else "any"
            if self.faults.take("http429", scope):
                retry = self.faults.get("retry_after", 1.0)
                return _json(wire.error_body(-1003, RATE_MSG), 429,
                             {"Retry-After": str(max(int(retry), 1) if retry >= 1 else retry)})
            if self.faults.take("http5xx", scope):
                return _err(503, -1001, "Internal error; unable to process your request. "
                                        "Please try again.")
        return await handler(request)

    # -- authentication ---------------------------------------------------------
    def _signed(self, fn: Callable[..., Any], order: bool = False) -> Callable[..., Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            body = await request.text() if request.can_read_body else ""
            qs = request.query_string
            if request.headers.get("X-MBX-APIKEY") is None:
                return _err(401, -2014, "API-key format invalid.")
            if request.headers["X-MBX-APIKEY"] != self.key:
                return _err(401, -2015, "Invalid API-key, IP, or permissions for action.")
            q_unsigned, q_sig = wire.split_signature(qs)
            b_unsigned, b_sig = wire.split_signature(body)
            sig = q_sig or b_sig
            payload = q_unsigned + b_unsigned if q_unsigned and b_unsigned else q_unsigned or b_unsigned
            if sig is None:
                return _err(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, "
                                        "or malformed.")
            if sig != wire.sign(self.secret, payload):
                return _err(400, -1022, "Signature for this request is not valid.")
            params: dict[str, Any] = dict(request.query)
            params.update(parse_qsl(body, keep_blank_values=True))
            params.pop("signature", None)
            try:
                ts = int(params["timestamp"])
                window = int(params.get("recvWindow", 5000))
            except (KeyError, ValueError):
                return _err(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, "
                                        "or malformed.")
            now = _ms()
            if ts > now + 1000 or now - ts > window:
                return _err(400, -1021, "Timestamp for this request is outside of the recvWindow.")
            if order and request.method == "POST" and not self._order_allowed():
                return _json(wire.error_body(-1015, f"Too many new orders; current limit is "
                                                    f"{self.order_limit} orders per 10 SECOND."),
                             429, {"Retry-After": "1"})
            try:
                result = fn(params) if not asyncio.iscoroutinefunction(fn) else await fn(params, request)
            except VenueError as exc:
                status, err = wire.venue_error(exc)
                return _json(err, status)
            except (InvalidOperation, ValueError, KeyError) as exc:
                return _err(400, -1102, f"Illegal or missing parameter: {exc}")
            return result if isinstance(result, web.StreamResponse) else _json(result)
        return handler

    def _order_allowed(self) -> bool:
        now = time.monotonic()
        self.order_times = [t for t in self.order_times if now - t < 10]
        if len(self.order_times) >= self.order_limit:
            return False
        self.order_times.append(now)
        return True

    # -- public market data -------------------------------------------------------
    async def klines(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            m = self.book.market(q.get("symbol", ""))
        except VenueError:
            return _err(400, -1121, "Invalid symbol.")
        if q.get("interval") != wire.interval_name(self.book.interval_ns):
            return _err(400, -1120, "Invalid interval.")
        limit = min(int(q.get("limit", 500)), 1000)
        start, end = q.get("startTime"), q.get("endTime")
        return _json(self.markets.rows(m.symbol, int(start) if start is not None else None,
                                       int(end) if end is not None else None, limit))

    async def ticker(self, request: web.Request) -> web.Response:
        symbols = [request.query["symbol"]] if "symbol" in request.query else list(self.book.markets)
        out = [{"symbol": s, "price": wire.fmt(self.book.last_price(s))} for s in symbols
               if s in self.book.markets]
        return _json(out[0] if "symbol" in request.query and out else out)

    # -- orders -------------------------------------------------------------------
    async def new_order(self, p: dict[str, Any], request: web.Request) -> web.StreamResponse:
        kind = {"MARKET": "market", "LIMIT": "limit", "STOP_LOSS": "stop"}.get(p.get("type", ""))
        if kind is None or "quoteOrderQty" in p:
            return _err(400, -1013, "Unsupported order type.")
        cid = p.get("newClientOrderId", "")
        if cid and not CLIENT_ID.fullmatch(cid):
            return _err(400, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal "
                                    "range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
        if self.faults.take("reject_min_notional", "order"):
            return _err(400, -1013, "Filter failure: NOTIONAL")
        if kind == "limit" and "timeInForce" not in p:
            return _err(400, -1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, "
                                    "or malformed.")
        hold = self.faults.pop("delay_fill")
        order = self.book.place(
            p["symbol"], p["side"].lower(), kind, Decimal(p["quantity"]),
            price=Decimal(p["price"]) if kind == "limit" else None,
            stop_price=Decimal(p["stopPrice"]) if kind == "stop" else None,
            tif=p.get("timeInForce", "GTC"), client_id=p.get("newClientOrderId", ""),
            hold_bars=int(hold or 0))
        if self.faults.countdown("restart_after"):
            asyncio.get_running_loop().call_later(0.05, self.restart)
        if self.faults.take("drop_ack", "order"):
            # the order exists; the client never hears so (connection cut, no answer)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        resp = p.get("newOrderRespType", "FULL" if kind == "market" else "ACK")
        body = wire.order_json(order, fills=True)
        if resp == "ACK":
            body = {k: body[k] for k in ("symbol", "orderId", "orderListId", "clientOrderId",
                                         "transactTime")}
        elif resp == "RESULT":
            body.pop("fills")
        return _json(body)

    def _find(self, p: dict[str, Any]) -> Any:
        symbol = self.book.market(p["symbol"]).symbol
        if "orderId" in p:
            return self.book.find(symbol, venue_id=int(p["orderId"]))
        if "origClientOrderId" in p:
            return self.book.find(symbol, client_id=p["origClientOrderId"])
        raise VenueError("bad_request", "Param 'origClientOrderId' or 'orderId' must be sent, "
                                        "but both were empty/null!")

    def get_order(self, p: dict[str, Any]) -> dict[str, Any]:
        return wire.order_json(self._find(p))

    def cancel_order(self, p: dict[str, Any]) -> Any:
        try:
            order = self._find(p)
            self.book.cancel(order.symbol, venue_id=order.venue_id)
        except VenueError as exc:
            if exc.code == "unknown_order":
                return _err(400, -2011, "Unknown order sent.")
            raise
        body = wire.order_json(order)
        body["origClientOrderId"] = order.client_id
        body["clientOrderId"] = p.get("newClientOrderId", f"cancel-{order.venue_id}")
        body["transactTime"] = order.updated_ns // 1_000_000
        return body

    def open_orders(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        symbol = self.book.market(p["symbol"]).symbol if "symbol" in p else None
        return [wire.order_json(o) for o in self.book.open_orders(symbol)]

    def all_orders(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        symbol = self.book.market(p["symbol"]).symbol
        orders = [o for o in self.book.orders.values() if o.symbol == symbol
                  and o.venue_id >= int(p.get("orderId", 0))
                  and o.created_ns // 1_000_000 >= int(p.get("startTime", 0))]
        return [wire.order_json(o) for o in orders[: min(int(p.get("limit", 500)), 1000)]]

    def my_trades(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        symbol = self.book.market(p["symbol"]).symbol
        rows = [(o, t) for o in self.book.orders.values() if o.symbol == symbol for t in o.trades
                if ("orderId" not in p or o.venue_id == int(p["orderId"]))]
        rows.sort(key=lambda r: r[1].trade_id)
        rows = [r for r in rows if r[1].trade_id >= int(p.get("fromId", 0))
                and r[1].time_ns // 1_000_000 >= int(p.get("startTime", 0))]
        return [wire.trade_json(o, t) for o, t in rows[: min(int(p.get("limit", 500)), 1000)]]

    # -- control ------------------------------------------------------------------
    async def sim_advance(self, request: web.Request) -> web.Response:
        done = await self.advance(int(request.query.get("n", 1)))
        return _json({"advanced": done, **self._status()})

    def _status(self) -> dict[str, Any]:
        b = self.book
        return {"cursor": b.cursor, "bars": len(b.timeline), "time": str(b.timeline[b.cursor]),
                "exhausted": b.exhausted, "seq": b.seq, "user_streams": len(self.users.sockets),
                "subscribed": len(self.users.clients), "user_connections": self.users.connections,
                "kline_streams": sum(len(s) for s, _ in self.markets.subs.values())}

    async def sim_status(self, _request: web.Request) -> web.Response:
        return _json(self._status())

    async def sim_faults(self, request: web.Request) -> web.Response:
        try:
            self.faults.update(await request.text())
        except FaultSpecError as exc:
            return _json({"error": str(exc)}, 400)
        return _json(self.faults.describe())

    async def sim_clear_faults(self, _request: web.Request) -> web.Response:
        self.faults.clear()
        return _json(self.faults.describe())

    async def sim_disconnect(self, _request: web.Request) -> web.Response:
        return _json({"closed": await self.users.close_all()})

    async def sim_restart(self, _request: web.Request) -> web.Response:
        asyncio.get_running_loop().call_later(0.05, self.restart)
        return _json({"restarting": True})

    async def sim_orders(self, _request: web.Request) -> web.Response:
        return _json([wire.order_json(o) for o in self.book.orders.values()])

    def restart(self) -> None:
        if self.state_path is not None:
            state.save(self.book, self.state_path)
        if self.on_restart is not None:
            self.on_restart()


__all__ = ["BinanceSim"]

