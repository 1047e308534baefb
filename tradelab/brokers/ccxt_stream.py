"""The order stream of :class:`~tradelab.brokers.ccxt_broker.CcxtBroker`: ccxt.pro ``watch_orders``
in a background thread with its own event loop, feeding a thread-safe queue.

The stream reconnects by itself with jittered exponential back-off (0.25 s doubling
to 15 s). After every (re)subscription — the first one included — it asks the
broker to catch up over REST (each order it knows to be open, then the venue's open
orders), so an event lost while disconnected is replaced by a fresh report; the
OrderManager books from cumulative quantities, so a report seen twice adds nothing.
While the stream is quiet it is checked every second: updates ccxt cached
without resolving a watch (several in one read) are pushed; ccxt can reconnect inside a
pending watch without any error reaching the caller (a close racing a new watch),
so a new connection object triggers a catch-up, a connection that lost its
user-data subscription is subscribed again, and every ``resync`` seconds the open
orders are caught up anyway.
An update that jumps past its own last execution (ccxt collapses updates of one
order that arrive between two reads) is completed with a REST query, so its fees
are the order's whole fees.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from tradelab.brokers.ccxt_reports import stream_report
from tradelab.money import ZERO
from tradelab.orders.brokers import OrderReport

log = structlog.get_logger("tradelab.brokers.ccxt")


class OrderStream:
    """Runs ``watch_orders`` of ``make_client()`` until :meth:`stop`.

    Parameters
    ----------
    make_client
        Builds the ccxt.pro client (called in the stream's thread).
    catch_up
        Called (in an executor thread) after each subscription; returns reports.
    complete
        Called (in an executor thread) for a report whose cumulative quantity
        moved by more than its last execution; returns a completed report or None.
    market
        Unified symbol → ccxt market (fee valuation).
    resync
        Seconds of stream silence after which open orders are caught up over REST
        anyway (0: never); a safety net under the stream.
    """

    def __init__(self, make_client: Callable[[], Any], catch_up: Callable[[], list[OrderReport]],
                 complete: Callable[[OrderReport], OrderReport | None],
                 market: Callable[[str], dict[str, Any] | None], resync: float = 30.0) -> None:
        self.make_client, self.catch_up, self.complete, self.market = make_client, catch_up, complete, market
        self.resync = resync
        self.resubscribes = 0
        self.queue: queue.Queue[OrderReport] = queue.Queue()
        self.connected = threading.Event()
        self.reconnects = 0
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._cum: dict[str, Any] = {}
        self._seen: set[tuple[str, str, str]] = set()  # (venue id, cum qty, status) pushed
        self._thread = threading.Thread(target=self._run, daemon=True, name="ccxt-orders")
        self._thread.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._task = loop.create_task(self._main())
        self._loop = loop
        try:
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._task)
        finally:
            loop.close()

    async def _main(self) -> None:
        client = self.make_client()
        delay = 0.25
        try:
            while not self._stop.is_set():
                try:
                    await client.load_markets()
                    # the next watch is always pending while a batch is handled: an update
                    # arriving meanwhile resolves it instead of waiting in ccxt's cache
                    pending = asyncio.ensure_future(client.watch_orders())
                    try:
                        await self._subscribed_by(client, pending)  # before the catch-up: nothing missed
                        self.connected.set()
                        conn = self._connection(client)
                        await self._catch_up()
                        last_sync = time.monotonic()
                        while not self._stop.is_set():
                            done, _ = await asyncio.wait({pending}, timeout=1.0)
                            if not done:
                                await self._unread(client)
                                if not self._subscribed(client):
                                    # ccxt can reconnect without subscribing again (a close
                                    # racing a watch): subscribe, then catch up
                                    self.resubscribes += 1
                                    await client.authenticate({"type": "spot"})
                                    await self._subscribed_by(client, pending)
                                    await self._catch_up()
                                    last_sync = time.monotonic()
                                elif self._connection(client) is not conn and self._subscribed(client, True):
                                    # ccxt reconnected inside a watch (no error surfaced): catch up
                                    conn = self._connection(client)
                                    self.reconnects += 1
                                    await self._catch_up()
                                    last_sync = time.monotonic()
                                elif self.resync and time.monotonic() - last_sync > self.resync:
                                    await self._catch_up()
                                    last_sync = time.monotonic()
                                continue
                            batch = pending.result()
                            pending = asyncio.ensure_future(client.watch_orders())
                            for order in batch:
                                await self._push(order)
                            delay = 0.25
                    finally:
                        pending.cancel()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a lost stream: reconnect, then catch up
                    self.connected.clear()
                    if self._stop.is_set():
                        break
                    self.reconnects += 1
                    log.warning("order_stream_lost", error=type(exc).__name__, retry_in=round(delay, 2))
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 15.0)
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    @staticmethod
    def _connection(client: Any) -> Any:
        """The websocket client object carrying the order stream (a new one after a reconnect)."""
        if client.id != "binance":
            return None
        return client.clients.get(client.urls["api"]["ws"]["ws-api"]["spot"])

    @staticmethod
    def _subscribed(client: Any, confirmed: bool = False) -> bool:
        """False when the Binance WebSocket API connection lost its user-data subscription
        (``confirmed``: also False until the venue acknowledged the subscription)."""
        if client.id != "binance":
            return True
        url = client.urls["api"]["ws"]["ws-api"]["spot"]
        conn = client.clients.get(url)
        if conn is None:
            return not confirmed
        return "spot" in conn.subscriptions and not (
            confirmed and "authenticate:signature:spot" in conn.futures)

    async def _subscribed_by(self, client: Any, pending: asyncio.Future[Any], timeout: float = 20.0) -> None:
        """Wait until the venue acknowledged the user-data subscription ``pending`` started
        (ccxt raises its "subscribed" flag before the acknowledgement arrives)."""
        deadline = time.monotonic() + timeout
        while not self._subscribed(client, confirmed=True):
            if pending.done():
                pending.result()  # raises what broke the subscription
                return
            if time.monotonic() > deadline:
                raise TimeoutError("user-data subscription not acknowledged")
            await asyncio.sleep(0.01)

    async def _catch_up(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for report in await loop.run_in_executor(None, self.catch_up):
                self.queue.put(report)
        except Exception as exc:  # the next reconnect (or reconciliation) tries again
            log.warning("order_stream_catch_up_failed", error=str(exc))

    async def _unread(self, client: Any) -> None:
        """Updates ccxt cached without resolving a watch (several arrived in one read: only
        the first resolves, the rest wait for the next message): push what changed."""
        for order in list(getattr(client, "orders", None) or []):
            info = order.get("info") or {}
            key = (str(order.get("id")), str(info.get("z", order.get("filled"))),
                   str(info.get("X", order.get("status"))))
            if key not in self._seen:
                await self._push(order)

    async def _push(self, order: dict[str, Any]) -> None:
        info = order.get("info") or {}
        self._seen.add((str(order.get("id")), str(info.get("z", order.get("filled"))),
                        str(info.get("X", order.get("status")))))
        report = stream_report(order, self.market(str(order.get("symbol"))))
        key = report.venue_order_id
        before = self._cum.get(key, ZERO)
        if report.cum_quantity > before and report.cum_quantity - before != report.last_quantity:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(Exception):
                fuller = await loop.run_in_executor(None, self.complete, report)
                if fuller is not None:
                    report = fuller
        if report.cum_quantity > before:
            self._cum[key] = report.cum_quantity
        self.queue.put(report)

    def drain(self) -> list[OrderReport]:
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out

    def stop(self) -> None:
        self._stop.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)
        self._thread.join(5)


__all__ = ["OrderStream"]
