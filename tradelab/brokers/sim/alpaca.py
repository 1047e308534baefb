"""The Alpaca trading API v2 on loopback, over the simulator core's bar-replay book.

The unmodified ``alpaca-py`` clients talk to it with only their URLs overridden::

    TradingClient(key, secret, paper=True, url_override="http://127.0.0.1:8765")
    TradingStream(key, secret, paper=True, url_override="ws://127.0.0.1:8765/stream")

Served: ``GET /v2/account``; ``POST /v2/orders`` (``qty`` with fractions, or
``notional``; market, limit, stop; ``day``, ``gtc``, ``ioc``, ``fok``);
``GET /v2/orders`` (``status`` open|closed|all, ``limit``, ``direction``,
``symbols``, ``side``); ``GET|DELETE /v2/orders/{id}``; ``GET
/v2/orders:by_client_order_id``; ``DELETE /v2/orders``; ``GET /v2/positions[/{symbol}]``;
``GET /v2/assets[/{symbol}]``; ``GET /v2/clock``; ``GET /v2/calendar``; and the
trading stream at ``/stream`` (authenticate, listen, ``trade_updates`` as binary
JSON frames, as Alpaca's paper stream sends them). Requests carry
``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY``; a wrong pair gets Alpaca's 401
``{"code": 40110000, "message": "request is not authorized"}``. Refusals use
Alpaca's bodies: 403 40310000 (buying power, quantity available, order value
under $1), 422 40010001 (a duplicate ``client_order_id``, a bad request), 422
42210000 (fractional orders must be ``day``; not cancelable), 404 40410000.

Time and market hours: the venue's "now" is the book's (the close of the latest
replayed bar). ``/v2/clock`` and ``/v2/calendar`` read the XNYS calendar
(``exchange-calendars``, as :mod:`tradelab.jobs.calendar` does, built to span
the bars) at that time. Daily
bars are stamped at midnight UTC, so between daily bars the market is closed:
an order is accepted there and waits for the open, i.e. the next bar, where a
market order fills at the open, as Alpaca queues a market order sent outside
hours. A ``day`` order still open after the session it was eligible for expires.

Shares: every replayed symbol is fractionable (step 1e-9, minimum 1e-9, orders of
at least $1) unless listed in ``whole_shares`` (step 1); the tick is $0.01.
Long-only: a sell beyond the shares held is refused, as in a cash account.
Faults: ``--faults`` (:mod:`tradelab.brokers.sim.faults`). Control endpoints (no
key; the simulator listens on loopback), as the Binance simulator's: ``POST
/_sim/advance?n=N``, ``GET|POST|DELETE /_sim/faults``, ``POST /_sim/disconnect``,
``POST /_sim/restart``, ``GET /_sim/orders`` (Alpaca order objects), ``GET /_sim/status``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from aiohttp import web

from tradelab.brokers.sim import alpaca_shapes as shapes
from tradelab.brokers.sim import state as sim_state
from tradelab.brokers.sim.alpaca_orders import BAD_REQUEST, CODES, Err, Refusal, read_order
from tradelab.brokers.sim.alpaca_shapes import build_book, exchange_calendar
from tradelab.brokers.sim.alpaca_stream import TradeUpdates
from tradelab.brokers.sim.core import VenueBook, VenueError
from tradelab.brokers.sim.faults import FaultPlan, FaultSpecError

_loads = partial(json.loads, parse_float=Decimal)


def error(err: Err, message: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    """Alpaca's error body ``{"code": ..., "message": ...}`` with its HTTP status."""
    status, code, text = err
    return web.json_response({"code": code, "message": message or text}, status=status,
                             headers=headers)


class AlpacaSim:
    """One simulated Alpaca account: its book, faults, stream clients and HTTP handlers.

    Parameters
    ----------
    book
        The matching engine (see :func:`build_book`).
    key, secret
        The only key pair it accepts.
    faults, seed
        A fault SPEC and the seed of its random draws.
    bar_seconds
        Replay a bar every that many seconds (0: only ``POST /_sim/advance``).
    state_path
        Where the book is saved after every change (and loaded from at start).
    on_restart
        Called (after the answer went out) when ``restart_after`` fires or
        ``POST /_sim/restart`` asks; the runner restarts the server, state kept.
    rate_limit
        Requests per minute (Alpaca's is 200); more are answered 429. ``None``: no limit.
    """

    def __init__(self, book: VenueBook, *, key: str, secret: str, faults: str = "", seed: int = 0,
                 bar_seconds: float = 0.0, state_path: str | Path | None = None,
                 on_restart: Callable[[], None] | None = None, rate_limit: int | None = None) -> None:
        self.book, self.key, self.secret = book, key, secret
        self.plan = FaultPlan(faults or "", seed)
        self.calendar = exchange_calendar(book)
        self.bar_seconds, self.state_path, self.on_restart = bar_seconds, state_path, on_restart
        self.rate_limit, self.hits = rate_limit, deque[float]()
        if state_path is not None:
            sim_state.load(book, state_path)
            book.on_change = partial(sim_state.save, book, state_path)
        self.notional: dict[int, Decimal] = {}
        self.stream = TradeUpdates(book, self.plan, key, secret)
        self._clock: asyncio.Task[None] | None = None

    # -- time ---------------------------------------------------------------------
    def advance(self, n: int = 1) -> int:
        """Replay ``n`` bars (matching on each), expiring ``day`` orders past their close."""
        done = 0
        for _ in range(n):
            if not self.book.advance(1):
                break
            done += 1
            self._expire_day_orders()
        return done

    def _expire_day_orders(self) -> None:
        book = self.book
        with book.lock:
            now = pd.Timestamp(book.now_ns(), tz="UTC")
            for order in book.open_orders():
                if order.tif != "DAY":
                    continue
                close = self.calendar.next_close(pd.Timestamp(order.created_ns, tz="UTC").floor("min"))
                if close <= now:
                    book.expire(order.venue_id, "day order expired at the close")

    # -- app ------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        r = app.router
        r.add_get("/v2/account", self.account)
        r.add_post("/v2/orders", self.place)
        r.add_get("/v2/orders", self.list_orders)
        r.add_delete("/v2/orders", self.cancel_all)
        r.add_get("/v2/orders:by_client_order_id", self.by_client_id)
        r.add_get("/v2/orders/{order_id}", self.get_order)
        r.add_delete("/v2/orders/{order_id}", self.cancel)
        r.add_get("/v2/positions", self.positions)
        r.add_get("/v2/positions/{symbol}", self.position)
        r.add_get("/v2/assets", self.assets)
        r.add_get("/v2/assets/{symbol}", self.asset)
        r.add_get("/v2/clock", self.clock)
        r.add_get("/v2/calendar", self.calendar_days)
        r.add_get("/stream", self.stream.handler)
        r.add_post("/_sim/advance", self.ctl_advance)
        r.add_get("/_sim/faults", self.ctl_faults)
        r.add_post("/_sim/faults", self.ctl_faults)
        r.add_delete("/_sim/faults", self.ctl_faults)
        r.add_post("/_sim/disconnect", self.ctl_disconnect)
        r.add_post("/_sim/restart", self.ctl_restart)
        r.add_get("/_sim/orders", self.ctl_orders)
        r.add_get("/_sim/status", self.ctl_status)
        app.on_startup.append(self._started)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _started(self, _app: web.Application) -> None:
        await self.stream.start()
        if self.bar_seconds > 0:
            self._clock = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.book.exhausted:
            await asyncio.sleep(self.bar_seconds)
            await loop.run_in_executor(None, self.advance, 1)

    async def _shutdown(self, _app: web.Application) -> None:
        if self._clock is not None:
            self._clock.cancel()
        await self.stream.stop()

    def _limited(self) -> bool:
        """Alpaca's per-minute request limit (a sliding window)."""
        if self.rate_limit is None:
            return False
        now = time.monotonic()
        while self.hits and self.hits[0] <= now - 60:
            self.hits.popleft()
        if len(self.hits) >= self.rate_limit:
            return True
        self.hits.append(now)
        return False

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/stream" or request.path.startswith("/_sim/"):
            return await handler(request)  # the stream authenticates itself; control is loopback's
        h = request.headers
        if h.get("APCA-API-KEY-ID") != self.key or h.get("APCA-API-SECRET-KEY") != self.secret:
            return error(shapes.UNAUTHORIZED)
        scope = "order" if request.path.startswith("/v2/orders") else "any"
        if self._limited():
            return error(shapes.TOO_MANY, headers={"Retry-After": "1"})
        if self.plan.take("http429", scope):
            retry = self.plan.get("retry_after", 1.0)
            return error(shapes.TOO_MANY, headers={"Retry-After": f"{retry:g}"})
        if self.plan.take("http5xx", scope):
            return error(shapes.SERVER_ERROR)
        try:
            return await handler(request)
        except Refusal as exc:
            return error(exc.err, exc.message)
        except VenueError as exc:
            known = CODES.get(exc.code)
            return error(known) if known else error(BAD_REQUEST, exc.message)

    # -- orders ---------------------------------------------------------------------
    async def place(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json(loads=_loads)
        except ValueError:
            return error((400, 40010000, "request body format is invalid"))
        with self.book.lock:  # checked and placed at once (a bar may be replaying meanwhile)
            args = read_order(body, self.book)  # a Refusal is answered by _guard
            if self.plan.take("reject_min_notional", "order"):
                raise Refusal(CODES["min_notional"])
            hold = int(self.plan.pop("delay_fill") or 0)
            order = self.book.place(args.symbol, args.side, args.type, args.quantity,
                                    price=args.limit, stop_price=args.stop, tif=args.tif,
                                    client_id=args.client_id, hold_bars=hold)
        if args.notional is not None:
            self.notional[order.venue_id] = args.notional
        if self.plan.countdown("restart_after"):
            asyncio.get_running_loop().call_later(0.1, self.restart)
        if self.plan.take("drop_ack", "order") and request.transport is not None:
            request.transport.close()  # accepted, but the client never hears so
        return web.json_response(shapes.order_json(order, args.notional))

    def _json(self, order: Any) -> dict[str, Any]:
        return shapes.order_json(order, self.notional.get(order.venue_id))

    def _find(self, order_id: str) -> Any:
        vid = shapes.venue_id(order_id)
        if vid is None or vid not in self.book.orders:
            raise VenueError("unknown_order", "order not found")
        return self.book.orders[vid]

    async def list_orders(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        status = q.get("status", "open")
        symbols = set(filter(None, q.get("symbols", "").split(",")))
        with self.book.lock:
            found = [o for o in self.book.orders.values()
                     if (status == "all" or o.is_open == (status == "open"))
                     and (not symbols or o.symbol in symbols) and q.get("side") in (None, o.side)]
        found.sort(key=lambda o: (o.created_ns, o.venue_id), reverse=q.get("direction", "desc") == "desc")
        limit = min(int(q.get("limit", 50)), 500)
        return web.json_response([self._json(o) for o in found[:limit]])

    async def get_order(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._json(self._find(request.match_info["order_id"])))

    async def by_client_id(self, request: web.Request) -> web.StreamResponse:
        order = self.book.find(client_id=request.query.get("client_order_id", ""))
        return web.json_response(self._json(order))

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        with self.book.lock:
            order = self._find(request.match_info["order_id"])
            if not order.is_open:
                return error(shapes.NOT_CANCELABLE)
            self.book.cancel(venue_id=order.venue_id)
        return web.Response(status=204)

    async def cancel_all(self, request: web.Request) -> web.StreamResponse:
        out = []
        with self.book.lock:
            for order in self.book.open_orders():
                self.book.cancel(venue_id=order.venue_id)
                out.append({"id": shapes.order_uuid(order.venue_id), "status": 200,
                            "body": self._json(order)})
        return web.json_response(out, status=207)

    # -- account ------------------------------------------------------------------
    async def account(self, request: web.Request) -> web.StreamResponse:
        with self.book.lock:
            return web.json_response(shapes.account_json(self.book))

    async def positions(self, request: web.Request) -> web.StreamResponse:
        with self.book.lock:
            return web.json_response([shapes.position_json(self.book, s) for s in self.book.markets
                                      if shapes.position_qty(self.book, s)])

    async def position(self, request: web.Request) -> web.StreamResponse:
        symbol = request.match_info["symbol"]
        with self.book.lock:
            if symbol not in self.book.markets or not shapes.position_qty(self.book, symbol):
                return error(shapes.POSITION_NOT_FOUND)
            return web.json_response(shapes.position_json(self.book, symbol))

    async def assets(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([shapes.asset_json(self.book, s) for s in self.book.markets])

    async def asset(self, request: web.Request) -> web.StreamResponse:
        symbol = request.match_info["symbol"]
        if symbol not in self.book.markets:
            return error(shapes.ASSET_NOT_FOUND)
        return web.json_response(shapes.asset_json(self.book, symbol))

    async def clock(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(shapes.clock_json(self.book.now_ns(), self.calendar))

    async def calendar_days(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        return web.json_response(shapes.calendar_json(self.calendar, q.get("start"), q.get("end"),
                                                      self.book.now_ns()))

    # -- control (loopback only; the Binance simulator's endpoints) ---------------------
    def _status(self) -> dict[str, Any]:
        b = self.book
        return {"cursor": b.cursor, "bars": len(b.timeline), "time": str(b.timeline[b.cursor]),
                "now": shapes.ts(b.now_ns()), "exhausted": b.exhausted, "seq": b.seq}

    async def ctl_advance(self, request: web.Request) -> web.StreamResponse:
        n = int(request.query.get("n", 1))
        done = await asyncio.get_running_loop().run_in_executor(None, self.advance, n)
        return web.json_response({"advanced": done, **self._status()})

    async def ctl_status(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response(self._status())

    async def ctl_faults(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            try:
                self.plan.update(await request.text())
            except FaultSpecError as exc:
                return web.json_response({"error": str(exc)}, status=400)
        elif request.method == "DELETE":
            self.plan.clear()
        return web.json_response(self.plan.describe())

    async def ctl_disconnect(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response({"closed": await self.stream.close_all()})

    async def ctl_restart(self, _request: web.Request) -> web.StreamResponse:
        asyncio.get_running_loop().call_later(0.05, self.restart)
        return web.json_response({"restarting": True})

    async def ctl_orders(self, _request: web.Request) -> web.StreamResponse:
        with self.book.lock:
            return web.json_response([self._json(o) for o in self.book.orders.values()])

    def restart(self) -> None:
        """Save the state and ask the runner for a restart (the server comes back, state kept)."""
        if self.state_path is not None:
            sim_state.save(self.book, self.state_path)
        if self.on_restart is not None:
            self.on_restart()


def serve(bars: dict[str, pd.DataFrame], *, key: str, secret: str, host: str = "127.0.0.1",
          port: int = 0, faults: str | None = None, seed: int = 0, bar_seconds: float = 0,
          state_path: str | Path | None = None, cash: Decimal = Decimal(100_000),
          volume_fraction: float | None = None, whole_shares: tuple[str, ...] = (),
          rate_limit: int | None = None, ready: Callable[[int], None] | None = None) -> int:
    """Serve the simulator until interrupted (``tradelab venue-sim alpaca``); the exit status.

    ``bar_seconds`` > 0 replays one bar every that many seconds (0: only ``POST
    /_sim/advance``); ``ready(port)`` is called once it listens; ``rate_limit=200``
    applies Alpaca's requests-per-minute limit. A restart (the ``restart_after``
    fault, ``POST /_sim/restart``) saves the state and returns
    :data:`~tradelab.brokers.sim.faults.RESTART_EXIT_CODE` for the process to exit
    with (a supervisor starts it again with the same ``state_path``); an interrupt returns 0.
    """
    book = build_book(bars, cash=cash, whole_shares=whole_shares, volume_fraction=volume_fraction)

    from tradelab.brokers.sim.serving import serve_app

    def make_app(restart: Callable[[], None]) -> Any:
        return AlpacaSim(book, key=key, secret=secret, faults=faults or "", seed=seed,
                         bar_seconds=bar_seconds, state_path=state_path, on_restart=restart,
                         rate_limit=rate_limit).app()

    def save() -> None:
        if state_path is not None:
            sim_state.save(book, state_path)

    return serve_app(make_app, host=host, port=port, ready=ready, before_exit=save)


__all__ = ["AlpacaSim", "build_book", "serve"]
