"""The order stream of :class:`~tradelab.brokers.ccxt_broker.CcxtBroker`: ccxt.pro ``watch_orders``
in a background thread with its own event loop, feeding a thread-safe queue.

The stream reconnects by itself with jittered exponential back-off (0.25 s doubling
to 15 s). After every (re)subscription — the first one included — it asks the
broker to catch up over REST (each order it knows to be open, then the venue's open
orders), so an event lost while disconnected is replaced by a fresh report; the
OrderManager books from cumulative quantities, so a report seen twice adds nothing.
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
    """

    def __init__(self, make_client: Callable[[], Any], catch_up: Callable[[], list[OrderReport]],
                 complete: Callable[[OrderReport], OrderReport | None],
                 market: Callable[[str], dict[str, Any] | None]) -> None:
        self.make_client, self.catch_up, self.complete, self.market = make_client, catch_up, complete, market
        self.queue: queue.Queue[OrderReport] = queue.Queue()
        self.connected = threading.Event()
        self.reconnects = 0
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._cum: dict[str, Any] = {}
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
                    if client.id == "binance":  # subscribe first, so the catch-up misses nothing
                        await client.authenticate({"type": "spot"})
                    self.connected.set()
                    await self._catch_up()
                    # the next watch is pending while this batch is handled: an update
                    # arriving meanwhile resolves it instead of waiting in ccxt's cache
                    pending = asyncio.ensure_future(client.watch_orders())
                    try:
                        while not self._stop.is_set():
                            batch = await pending
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

    async def _catch_up(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for report in await loop.run_in_executor(None, self.catch_up):
                self.queue.put(report)
        except Exception as exc:  # the next reconnect (or reconciliation) tries again
            log.warning("order_stream_catch_up_failed", error=str(exc))

    async def _push(self, order: dict[str, Any]) -> None:
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
