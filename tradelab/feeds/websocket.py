"""``WebsocketFeed``: a live bar feed over websocket that the synchronous engine iterates.

asyncio lives only here, at the I/O edge: a background thread runs an event
loop that connects, validates, orders and backfills, and hands bars to the
engine through a bounded queue (so a slow engine slows the socket down instead
of growing memory).

Per message: :func:`tradelab.feeds.protocol.parse_message` (schema, types, OHLC
rules; a rejected message is counted under its reason in :attr:`rejected`),
then :class:`tradelab.feeds.sequence.Sequencer` (duplicates and out-of-order
bars dropped and counted, a small reorder buffer).

After a reconnect (or when resuming with ``start_after``) the first fresh bar's
time ``t`` bounds the gap: for each symbol the bars after its last delivered bar
up to ``t`` are loaded with ``backfill`` (e.g. :func:`market_backfill`, which goes
through the cache-backed ``MarketData``) and merged in, so no bar is lost. When
the server says the stream has ended, the bars up to its last one are backfilled
the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tradelab.data.bars import utc
from tradelab.engine.feed import Bar
from tradelab.errors import TradelabError
from tradelab.feeds.protocol import Rejected, parse_message, subscribe_message
from tradelab.feeds.sequence import Sequencer

Backfill = Callable[[str, Any, Any], pd.DataFrame]
_END = object()


class FeedError(TradelabError):
    """The feed gave up (too many failed reconnects) or was misconfigured."""


class _Stale(Exception):
    """No message (not even a heartbeat) within ``stale_after``."""


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def market_backfill(data: Any, source: str | None = None, interval: str = "1d") -> Backfill:
    """A backfill over an ``App`` (``app.bars``) or ``MarketData`` (``load``): cached, validated.

    The returned callable takes ``(symbol, start, end)`` (inclusive, ``None`` = open).
    """
    load = data.bars if hasattr(data, "bars") else data.load

    def backfill(symbol: str, start: Any, end: Any) -> pd.DataFrame:
        return load(symbol, source=source, start=start, end=end, interval=interval)

    return backfill


class WebsocketFeed:
    """Bars from a websocket server as a ``LiveFeed`` (iterate it, like ``ReplayFeed``).

    Parameters
    ----------
    url
        ``ws://host:port``.
    symbols
        One symbol or several.
    backfill
        ``(symbol, start, end) -> bars`` for gaps after reconnects; ``None``: no backfill.
    start_after
        Deliver only bars after this time (resuming a run); the gap up to the
        first live bar is backfilled.
    queue_size
        Bars buffered for the engine before the socket is no longer read.
    reorder_depth, reorder_hold
        Reorder buffer (see :class:`~tradelab.feeds.sequence.Sequencer`).
    stale_after
        Seconds without any message before the connection is declared dead.
    backoff_base, backoff_max, max_retries
        Reconnect delays ``min(max, base * 2**(n-1))`` scaled by a random
        factor in ``[0.5, 1]``; after ``max_retries`` consecutive failures the
        iteration raises :class:`FeedError`.
    seed
        Seeds the jitter (tests).

    Attributes
    ----------
    rejected
        Reason → malformed messages rejected.
    reconnects, stale, backfilled, delivered
        Counters; see :meth:`stats`.
    recoveries
        Seconds from each lost connection to the first fresh bar after it.
    """

    def __init__(self, url: str, symbols: str | Sequence[str], *, backfill: Backfill | None = None,
                 start_after: datetime | None = None, queue_size: int = 1024,
                 reorder_depth: int = 1, reorder_hold: float = 0.2, stale_after: float = 5.0,
                 backoff_base: float = 0.05, backoff_max: float = 5.0, max_retries: int = 10,
                 seed: int | None = None, open_timeout: float = 5.0) -> None:
        self.url = url
        self.symbols = [symbols] if isinstance(symbols, str) else list(symbols)
        if not self.symbols:
            raise ValueError("at least one symbol")
        self.backfill = backfill
        self.start_after = None if start_after is None else utc(start_after).to_pydatetime()
        self.stale_after, self.reorder_hold = stale_after, reorder_hold
        self.backoff_base, self.backoff_max, self.max_retries = backoff_base, backoff_max, max_retries
        self.open_timeout = open_timeout
        self._rng = random.Random(seed)
        last = dict.fromkeys(self.symbols, self.start_after) if self.start_after else {}
        self.sequencer = Sequencer(reorder_depth, reorder_hold, last)
        self._q: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.rejected: Counter[str] = Counter()
        self.reconnects = self.stale = self.backfilled = self.delivered = 0
        self.ticks_ignored = 0
        self._accepted = 0  # bars that passed the sequencer (backoff resets when it grows)
        self.recoveries: list[float] = []
        self._lost_at: float | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    # -- the engine's side --------------------------------------------------------------
    def __iter__(self) -> Iterator[Bar]:
        self._start()
        try:
            while True:
                try:
                    # A timeout, so close() from a signal handler or another thread is
                    # noticed even when no bar comes.
                    item = self._q.get(timeout=0.1)
                except queue.Empty:
                    if self._closed:
                        return
                    continue
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise FeedError(f"websocket feed {self.url}: {item.exc}") from item.exc
                if self._closed:
                    return
                self.delivered += 1
                yield item
        finally:
            self.close()

    def history(self, symbol: str, through: Any, n: int) -> pd.DataFrame:
        """The last ``n`` bars up to and including ``through``, from ``backfill`` (warmup)."""
        if self.backfill is None or through is None or n <= 0:
            return pd.DataFrame(columns=["open", "high", "low", "close", "volume"])
        return self.backfill(symbol, None, through).iloc[-n:]

    def close(self) -> None:
        """Stop: the iteration ends and the connection is closed."""
        self._closed = True
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop already finished
                loop.call_soon_threadsafe(task.cancel)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def stats(self) -> dict[str, Any]:
        """Delivered, backfilled, reconnects, stale connections, rejected and dropped by reason."""
        return {"delivered": self.delivered, "backfilled": self.backfilled,
                "reconnects": self.reconnects, "stale": self.stale,
                "ticks_ignored": self.ticks_ignored, "rejected": dict(self.rejected),
                "dropped": dict(self.sequencer.dropped), "recoveries": list(self.recoveries)}

    # -- the I/O thread -------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._thread_main, name="tradelab-ws-feed",
                                        daemon=True)
        self._thread.start()

    def _thread_main(self) -> None:
        async def main() -> None:
            self._task = asyncio.current_task()
            await self._run()

        # asyncio.Runner cancels and awaits leftover tasks (websockets' keepalive) on exit.
        with asyncio.Runner() as runner:
            self._loop = runner.get_loop()
            try:
                runner.run(main())
            except asyncio.CancelledError:
                pass
            except BaseException as exc:  # handed to the consuming thread, raised there
                while not self._closed:
                    try:
                        self._q.put(_Failure(exc), timeout=0.1)
                        break
                    except queue.Full:
                        continue

    async def _put(self, item: Any) -> None:
        # Polling instead of a blocking put: blocking would freeze this event loop.
        while not self._closed:
            try:
                self._q.put_nowait(item)
                return
            except queue.Full:
                await asyncio.sleep(0.002)

    async def _run(self) -> None:
        failures = 0
        while not self._closed:
            fresh_before = self._accepted
            try:
                async with connect(self.url, open_timeout=self.open_timeout,
                                   close_timeout=2) as ws:
                    ended = await self._session(ws)
                if ended:
                    # Only now, with the connection closed cleanly: the consumer's close()
                    # after the end must not cancel the closing handshake.
                    await self._put(_END)
                    return
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, _Stale):
                pass  # counted below as a failed or lost connection
            if self._closed:
                return
            if self._lost_at is None:
                self._lost_at = time.perf_counter()
            # A connection that brought new bars was healthy: back off from scratch.
            failures = 1 if self._accepted > fresh_before else failures + 1
            if failures > self.max_retries:
                raise FeedError(f"gave up after {self.max_retries} failed reconnects")
            self.reconnects += 1
            # Hand-rolled, not tenacity: the retry state must reset after a healthy
            # session inside one long-lived loop, which a per-call retry policy does not model.
            delay = min(self.backoff_max, self.backoff_base * 2 ** (failures - 1))
            await asyncio.sleep(delay * (0.5 + 0.5 * self._rng.random()))

    async def _session(self, ws: Any) -> bool:
        """One connection; ``True`` when the stream ended normally."""
        loop = asyncio.get_running_loop()
        first = await asyncio.wait_for(ws.recv(), self.stale_after)
        kind, _ = _parse(first)
        if kind != "hello":
            raise ConnectionError(f"expected hello, got {str(first)[:80]!r}")
        # The oldest symbol's last bar; a symbol with none yet needs its whole stream.
        lasts = [self.sequencer.last.get(s) for s in self.symbols]
        since = None if None in lasts else min(t for t in lasts if t is not None)
        await ws.send(subscribe_message(self.symbols, since))
        # A gap is possible before the first fresh bar after any reconnect or a resume.
        gap = self._lost_at is not None or self.start_after is not None
        heard = loop.time()
        poll = max(0.01, min(self.stale_after / 2, self.reorder_hold / 2 or 0.05))
        while not self._closed:
            try:
                raw = await asyncio.wait_for(ws.recv(), poll)
            except TimeoutError:
                if loop.time() - heard > self.stale_after:
                    self.stale += 1
                    raise _Stale from None
                await self._release(loop.time())
                continue
            try:
                kind, value = parse_message(raw)
            except Rejected as exc:
                self.rejected[exc.reason] += 1
                heard = loop.time()
                continue
            if kind == "bar":
                if value.symbol not in self.symbols:
                    self.rejected["unknown_symbol"] += 1
                elif gap:
                    # The fresh bar first: the backfill's copy of it is then overlap.
                    self._offer(value, loop.time())
                    await self._fill(value.time, loop.time())
                    gap = False
                    await self._release(loop.time())
                    if self._lost_at is not None:
                        self.recoveries.append(time.perf_counter() - self._lost_at)
                        self._lost_at = None
                else:
                    self._offer(value, loop.time())
                    await self._release(loop.time())
            elif kind == "end":
                await self._finish(value, loop.time())
                return True
            elif kind == "tick":
                self.ticks_ignored += 1
            heard = loop.time()  # after any wait on the queue: that wait is not silence
        return True

    def _offer(self, bar: Bar, now: float, backfill: bool = False) -> None:
        if self.sequencer.offer(bar, now, backfill=backfill):
            self._accepted += 1
            self.backfilled += backfill

    async def _release(self, now: float) -> None:
        for bar in self.sequencer.ready(now):
            await self._put(bar)

    async def _fill(self, through: datetime, now: float,
                    ends: dict[str, datetime] | None = None) -> None:
        """Backfill every symbol after its last delivered bar up to ``through`` (or ``ends``).

        Bars at ``through`` itself are included: another symbol's bar with the same
        time may be the one that was lost (the fresh bar itself is overlap).
        """
        if self.backfill is None:
            return
        for sym in self.symbols:
            # Nothing delivered yet: the gap starts after the oldest bar still waiting.
            lo = self.sequencer.last.get(sym) or self.sequencer.oldest(sym)
            hi = through if ends is None else ends.get(sym)
            if lo is None or hi is None or lo >= hi:
                continue  # never delivered anything: no known gap start
            frame = await asyncio.to_thread(self.backfill, sym, lo, hi)
            # Rows from MarketData are already validated against the bar contract.
            stamps = frame.index.to_pydatetime()
            values = frame[["open", "high", "low", "close", "volume"]].to_numpy(float).tolist()
            for t, (o, h, low, c, v) in zip(stamps, values, strict=True):
                if lo < t <= hi:
                    self._offer(Bar(sym, t, o, h, low, c, v), now, backfill=True)

    async def _finish(self, ends: dict[str, datetime], now: float) -> None:
        if any((self.sequencer.newest(s) or ends[s]) < ends[s] for s in ends if s in self.symbols):
            await self._fill(max(ends.values()), now, ends)
        for bar in self.sequencer.drain():
            await self._put(bar)


def _parse(raw: Any) -> tuple[str, Any]:
    try:
        return parse_message(raw)
    except Rejected:
        return "invalid", None
