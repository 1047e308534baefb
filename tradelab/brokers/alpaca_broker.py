"""Alpaca (US equities) behind the one broker contract, over the real ``alpaca-py``.

REST goes through ``alpaca.trading.TradingClient``; order reports come from
``alpaca.trading.stream.TradingStream`` (``trade_updates``) in a background thread
and are drained by :meth:`AlpacaBroker.poll`. Pointing it at the Alpaca paper API
(keys from the environment)::

    from tradelab.brokers.alpaca_broker import AlpacaBroker
    broker = AlpacaBroker.from_env(paper=True, symbols=["AAPL"])  # TRADELAB_ALPACA_API_KEY/_SECRET

or at the simulator (``tradelab venue-sim alpaca --port 8765 --key K --secret S``)::

    broker = AlpacaBroker(api_key="K", secret="S", rest_url="http://127.0.0.1:8765",
                          ws_url="ws://127.0.0.1:8765/stream", symbols=["ORCL"])

What it supports: market, limit and stop orders, ``day`` and ``gtc``; fractional
quantities on fractionable assets (Alpaca takes fractional orders as ``day`` only,
so a fractional ``gtc`` order is sent as ``day``); long and short positions as the
account allows. It refuses (``VenueRuleDenied``, never sent) an order without a
quantity or of another type. Outside market hours Alpaca *accepts* a market order
and queues it for the next open; it is reported ``accepted`` and fills then
(:meth:`AlpacaBroker.clock` says whether the market is open).

Error mapping: a timeout, a connection error, a 5xx, an unparseable reply or a 429
that outlasts the back-off raise ``TransientBrokerError`` (the order is *pending*,
resolved by :meth:`AlpacaBroker.query`); a 429 is retried with jittered exponential
back-off; only Alpaca's own answer (a 4xx with its ``code``) raises
``BrokerRejectedError``. A duplicate ``client_order_id`` (40010001) is not a
reject: the existing order's id is returned, which makes ``submit`` idempotent.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar

import requests
import structlog
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopOrderRequest,
)
from pydantic import ValidationError

from tradelab.brokers.alpaca_wire import ListeningStream, TimeoutAdapter, dec, order_report
from tradelab.money import ZERO
from tradelab.orders.brokers import (
    BrokerRejectedError,
    OrderReport,
    TransientBrokerError,
    VenueBalance,
    VenueRuleDenied,
)
from tradelab.orders.rules import VenueRules

log = structlog.get_logger("tradelab.brokers.alpaca")
T = TypeVar("T")

#: Alpaca's code for "client_order_id must be unique" (and other invalid requests: the
#: message tells them apart).
DUPLICATE_CLIENT_ID = 40010001
_TRANSIENT = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
              requests.exceptions.JSONDecodeError, json.JSONDecodeError, ValidationError)


class AlpacaBroker:
    """An Alpaca account (paper or live, or the simulator) as a :class:`~tradelab.interfaces.Broker`.

    Parameters
    ----------
    api_key, secret
        The account's key pair (never logged, never in ``repr``).
    rest_url, ws_url
        Base URLs overriding alpaca-py's (``None``: Alpaca's paper or live API).
    paper
        Alpaca's paper API when no URL is given.
    symbols
        Markets whose rules are loaded up front (others on first use).
    timeout
        Seconds per REST request.
    max_retries, max_backoff
        Attempts for a request answered 429 before it is reported transient, and
        the cap of the jittered exponential back-off between them (seconds).
    stream
        Start the ``trade_updates`` stream (False: reports only by query).

    Notes
    -----
    ``balances()`` is keyed by the account currency (``"USD"``): ``free`` is the
    non-marginable buying power, ``locked`` the rest of the cash. ``positions()``
    is signed (short negative). ``wait_connected()`` blocks until the stream
    listens; ``reconnects`` counts reconnections; ``close()`` stops the stream.
    After every (re)connection the orders we placed that were still open are
    queried, so what happened while the stream was down reaches :meth:`poll`.
    """

    name = "alpaca"
    simulated = False
    #: The asset the book's cash is reconciled with (Alpaca accounts are in USD).
    quote_asset = "USD"

    def __init__(self, *, api_key: str, secret: str, rest_url: str | None = None,
                 ws_url: str | None = None, paper: bool = True, symbols: Iterable[str] = (),
                 timeout: float = 10.0, max_retries: int = 6, max_backoff: float = 2.0,
                 stream: bool = True) -> None:
        self.paper, self.rest_url, self.ws_url = paper, rest_url, ws_url
        self.max_retries, self.max_backoff = max_retries, max_backoff
        self._client = TradingClient(api_key, secret, paper=paper, url_override=rest_url)
        # 429 and 504 are retried here, with jitter, not by alpaca-py's fixed 3 s sleep
        self._client._retry = 0
        adapter = TimeoutAdapter(timeout)
        self._client._session.mount("http://", adapter)
        self._client._session.mount("https://", adapter)
        self._reports: queue.Queue[OrderReport] = queue.Queue()
        self._rules: dict[str, VenueRules | None] = {}
        self._watch: set[str] = set()  # our client ids whose last known state is open
        self._lock, self._rest = threading.Lock(), threading.Lock()
        self.connected = threading.Event()
        self.reconnects = -1  # connections after the first
        self._stream: ListeningStream | None = None
        self._thread: threading.Thread | None = None
        for symbol in symbols:
            self.rules(symbol)
        if stream:
            self._stream = ListeningStream(api_key, secret, paper=paper, url_override=ws_url,
                                           on_connect=self._connected)
            self._stream.subscribe_trade_updates(self._on_update)
            self._thread = threading.Thread(target=self._stream.run, name="alpaca-stream",
                                            daemon=True)
            self._thread.start()

    @classmethod
    def from_env(cls, **kwargs: Any) -> AlpacaBroker:
        """Keys from ``TRADELAB_ALPACA_API_KEY`` and ``TRADELAB_ALPACA_SECRET``."""
        key, secret = os.environ.get("TRADELAB_ALPACA_API_KEY"), os.environ.get("TRADELAB_ALPACA_SECRET")
        if not key or not secret:
            raise ValueError("TRADELAB_ALPACA_API_KEY and TRADELAB_ALPACA_SECRET must be set")
        return cls(api_key=key, secret=secret, **kwargs)

    def __repr__(self) -> str:
        where = self.rest_url or ("alpaca paper" if self.paper else "alpaca live")
        return f"AlpacaBroker({where}, key=***)"

    # -- REST plumbing -----------------------------------------------------------------
    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """One REST call: 429 backed off with jitter, the outcome-unknown cases transient."""
        for attempt in range(self.max_retries):
            try:
                with self._rest:  # one requests.Session, shared with the catch-up thread
                    return fn(*args)
            except _TRANSIENT as exc:
                raise TransientBrokerError(f"alpaca: {type(exc).__name__}: {exc}") from exc
            except APIError as exc:
                status = exc.status_code or 0
                if status == 429 and attempt + 1 < self.max_retries:
                    time.sleep(self._backoff(attempt, exc))
                    continue
                if status == 429 or status >= 500 or status == 0:
                    raise TransientBrokerError(f"alpaca: HTTP {status}") from exc
                raise
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, exc: APIError) -> float:
        """Seconds before retrying a 429: exponential with equal jitter, at least the
        venue's ``Retry-After`` when it sends one, never more than ``max_backoff``."""
        cap = min(self.max_backoff, 0.05 * 2 ** attempt)
        wait = cap / 2 + random.uniform(0, cap / 2)
        response = exc.response
        try:
            asked = float(response.headers.get("Retry-After", 0)) if response is not None else 0.0
        except (TypeError, ValueError):
            asked = 0.0
        return min(max(wait, asked), self.max_backoff)

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """A read: Alpaca's own refusal (a 4xx, e.g. a wrong key) raised as ``BrokerRejectedError``."""
        try:
            return self._call(fn, *args)
        except APIError as exc:
            code, message = self._code(exc)
            raise BrokerRejectedError(message or str(exc), str(code)) from exc

    @staticmethod
    def _code(exc: APIError) -> tuple[int, str]:
        """Alpaca's ``code`` and ``message``; an unparseable error body is transient."""
        try:
            body = json.loads(str(exc))
            return int(body.get("code", 0)), str(body.get("message", ""))
        except (ValueError, TypeError, AttributeError) as bad:
            raise TransientBrokerError(f"alpaca: unparseable error (HTTP {exc.status_code})") from bad

    # -- orders ------------------------------------------------------------------------
    def submit(self, order: Any) -> str:
        """Send ``order`` under its client id; the venue's order id (a UUID string)."""
        if order.quantity is None or order.quantity <= 0:
            raise VenueRuleDenied(f"{order.symbol}: an Alpaca order needs a positive quantity")
        qty = Decimal(order.quantity)
        tif = TimeInForce(order.time_in_force)
        if qty != qty.to_integral_value() and tif is TimeInForce.GTC:
            tif = TimeInForce.DAY  # Alpaca takes fractional orders as day orders only
        common = dict(symbol=order.symbol, qty=float(qty), side=OrderSide(order.side),
                      time_in_force=tif, client_order_id=order.client_order_id)
        request: MarketOrderRequest | LimitOrderRequest | StopOrderRequest
        if order.order_type == "market":
            request = MarketOrderRequest(**common)
        elif order.order_type == "limit" and order.limit_price is not None:
            request = LimitOrderRequest(**common, limit_price=float(order.limit_price))
        elif order.order_type == "stop" and order.stop_price is not None:
            request = StopOrderRequest(**common, stop_price=float(order.stop_price))
        else:
            raise VenueRuleDenied(f"{order.symbol}: order type {order.order_type!r} without its price "
                                  "or not supported (market, limit, stop)")
        with self._lock:
            self._watch.add(order.client_order_id)
        try:
            placed = self._call(self._client.submit_order, request)
        except APIError as exc:
            code, message = self._code(exc)
            if code == DUPLICATE_CLIENT_ID and "unique" in message:
                known = self.query(order.client_order_id)
                if known is not None:
                    return known.venue_order_id
                raise TransientBrokerError("alpaca: duplicate client id not found by query") from exc
            with self._lock:
                self._watch.discard(order.client_order_id)
            raise BrokerRejectedError(message or str(exc), str(code)) from exc
        assert isinstance(placed, AlpacaOrder)
        return str(placed.id)

    def query(self, client_order_id: str) -> OrderReport | None:
        """The venue's view of one order, ``None`` when Alpaca answers 404 for the id."""
        try:
            found = self._call(self._client.get_order_by_client_id, client_order_id)
        except APIError as exc:
            if exc.status_code == 404:
                return None
            code, message = self._code(exc)
            raise BrokerRejectedError(message or str(exc), str(code)) from exc
        assert isinstance(found, AlpacaOrder)
        report = order_report(found)
        self._track(report)
        return report

    def cancel(self, client_order_id: str) -> bool:
        """Ask Alpaca to cancel (looked up by client id); False when unknown or not cancelable."""
        report = self.query(client_order_id)
        if report is None or not report.is_open:
            return False
        try:
            self._call(self._client.cancel_order_by_id, report.venue_order_id)
        except APIError as exc:
            if exc.status_code in (404, 422):
                return False  # gone or already final: its report says what became of it
            code, message = self._code(exc)
            raise BrokerRejectedError(message or str(exc), str(code)) from exc
        return True

    def open_orders(self) -> list[OrderReport]:
        """Every open order at the venue, ours and others'."""
        found = self._read(self._client.get_orders,
                           GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500))
        return [order_report(o) for o in found if isinstance(o, AlpacaOrder)]

    # -- account -----------------------------------------------------------------------
    def balances(self) -> dict[str, VenueBalance]:
        """The account's cash in its currency: ``free`` what buying can use, the rest ``locked``."""
        account: Any = self._read(self._client.get_account)
        cash = dec(account.cash)
        spare = account.non_marginable_buying_power
        free = min(cash, dec(spare)) if spare is not None else cash
        asset = account.currency or "USD"
        return {asset: VenueBalance(asset, free, cash - free)}

    def positions(self) -> dict[str, Decimal]:
        """Symbol → signed quantity (negative short)."""
        held: Any = self._read(self._client.get_all_positions)
        out: dict[str, Decimal] = {}
        for p in held:
            qty = abs(dec(p.qty))
            out[p.symbol] = -qty if str(getattr(p.side, "value", p.side)) == "short" else qty
        return {k: v for k, v in out.items() if v}

    def rules(self, symbol: str) -> VenueRules | None:
        """The asset's rules: whole shares unless fractionable (then ``min_trade_increment``),
        ``price_increment`` as tick, ``min_order_size``; ``None`` for an unknown asset."""
        if symbol in self._rules:
            return self._rules[symbol]
        try:
            asset: Any = self._call(self._client.get_asset, symbol)
        except APIError as exc:
            if exc.status_code != 404:
                code, message = self._code(exc)  # e.g. a wrong key: the venue's refusal
                raise BrokerRejectedError(message or str(exc), str(code)) from exc
            self._rules[symbol] = None
            return None
        frac = bool(asset.fractionable)
        rules = VenueRules(symbol, step=dec(asset.min_trade_increment) if frac else Decimal(1),
                           tick=dec(asset.price_increment),
                           min_quantity=dec(asset.min_order_size) if frac else Decimal(1),
                           # Alpaca's floor for a fractional order's value
                           min_notional=Decimal(1) if frac else ZERO,
                           shortable=bool(asset.shortable))
        self._rules[symbol] = rules
        return rules

    def clock(self) -> Any:
        """Alpaca's market clock (``is_open``, ``next_open``, ``next_close``)."""
        return self._read(self._client.get_clock)

    # -- the stream --------------------------------------------------------------------
    def _track(self, report: OrderReport, ours: bool = True) -> None:
        """Keep watching our open orders (caught up after a reconnect), drop final ones."""
        with self._lock:
            if report.is_open and ours:
                self._watch.add(report.client_order_id)
            elif not report.is_open:
                self._watch.discard(report.client_order_id)

    async def _on_update(self, update: TradeUpdate) -> None:
        event = str(getattr(update.event, "value", update.event))
        report = order_report(update.order, event, update.timestamp, update.qty, update.price,
                              update.execution_id)
        self._track(report, ours=False)
        self._reports.put(report)

    def _connected(self) -> None:
        self.reconnects += 1
        self.connected.set()
        threading.Thread(target=self._catch_up, name="alpaca-catch-up", daemon=True).start()

    def _catch_up(self) -> None:
        """After a (re)connect: what happened to our open orders while the stream was down."""
        with self._lock:
            watched = set(self._watch)
        if not watched:
            return
        try:
            still_open = {r.client_order_id: r for r in self.open_orders()}
            for cid in watched:
                report = still_open.get(cid) or self.query(cid)
                if report is not None:
                    self._reports.put(report)
        except (TransientBrokerError, BrokerRejectedError, APIError) as exc:
            log.warning("alpaca_catch_up_failed", error=str(exc))  # the next reconnect retries

    def poll(self) -> list[OrderReport]:
        """Reports received since the last call, in arrival order (the manager orders them)."""
        out: list[OrderReport] = []
        while True:
            try:
                out.append(self._reports.get_nowait())
            except queue.Empty:
                return out

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Block until the stream is authorized and listening (True) or ``timeout`` passes."""
        return self.connected.wait(timeout)

    def close(self) -> None:
        """Stop the stream thread (REST needs no closing)."""
        stream, thread = self._stream, self._thread
        self._stream = self._thread = None
        if stream is None or thread is None:
            return
        loop = stream._loop
        if loop is not None and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(stream.stop_ws(), loop).result(5)
                asyncio.run_coroutine_threadsafe(stream.close(), loop).result(5)
            except (RuntimeError, TimeoutError, OSError):
                pass
        else:
            stream._stop_stream_queue.put_nowait({"should_stop": True})
        thread.join(10)


__all__ = ["AlpacaBroker", "order_report"]
