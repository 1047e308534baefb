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

Ticks → bars (``ticks=True``)
------------------------------
The feed subscribes to the server's tick stream and builds ``interval`` bars
per symbol with :class:`~tradelab.feeds.aggregate.TickAggregator`; the
server's own bar messages are then ignored (counted as ``bars_ignored``).
Every tick is validated by :func:`~tradelab.feeds.protocol.parse_message`
(a bad one is counted under its reason in :attr:`rejected`). Late and
out-of-order ticks follow the aggregator's policy:

* a tick for a bar that is still open (its end + ``grace`` not yet reached by
  the newest tick seen) is merged in: ``open``/``close`` are the prices of the
  earliest/latest *stamped* ticks, so the bar is what an in-order stream gives
  (counted ``late_accepted``);
* a tick for a bar already emitted is dropped (``late_dropped``): a bar is
  never revised once the engine has it;
* a bar is emitted when a tick at or after its end + ``grace`` arrives, or at
  the end of the stream.

After a reconnect the half-built bars are discarded (their ticks from before
the drop may be incomplete) and, when ``backfill`` is set, the gap up to and
including the first bar completed on the new connection is taken from the
backfill instead of from ticks; the counts are in ``stats()["ticks"]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tradelab.feeds.base import Backfill, FeedError, Stale, ThreadFeed, TickBars, frame_rows
from tradelab.feeds.protocol import Rejected, parse_message, subscribe_message
from tradelab.interfaces import Bar

__all__ = ["Backfill", "FeedError", "WebsocketFeed", "market_backfill"]


def market_backfill(data: Any, source: str | None = None, interval: str = "1d") -> Backfill:
    """A backfill over an ``App`` (``app.bars``) or ``MarketData`` (``load``): cached, validated.

    The returned callable takes ``(symbol, start, end)`` (inclusive, ``None`` = open).
    """
    load = data.bars if hasattr(data, "bars") else data.load

    def backfill(symbol: str, start: Any, end: Any) -> pd.DataFrame:
        return load(symbol, source=source, start=start, end=end, interval=interval)

    return backfill


class WebsocketFeed(ThreadFeed):
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
    ticks, interval, grace
        Build ``interval`` bars from the tick stream, accepting ticks up to
        ``grace`` after a bar's end (see the module text for the late-tick policy).

    Attributes
    ----------
    rejected
        Reason → malformed messages rejected.
    reconnects, stale, backfilled, delivered
        Counters; see :meth:`stats`.
    recoveries
        Seconds from each lost connection to the first fresh bar after it.
    tick_bars
        ``ticks=True``: the :class:`~tradelab.feeds.base.TickBars` (an aggregator per symbol).
    """

    label = "websocket feed"

    def __init__(self, url: str, symbols: str | Sequence[str], *, backfill: Backfill | None = None,
                 start_after: datetime | None = None, queue_size: int = 1024,
                 reorder_depth: int = 1, reorder_hold: float = 0.2, stale_after: float = 5.0,
                 backoff_base: float = 0.05, backoff_max: float = 5.0, max_retries: int = 10,
                 seed: int | None = None, open_timeout: float = 5.0, ticks: bool = False,
                 interval: str = "1d", grace: Any = 0) -> None:
        super().__init__(symbols, backfill=backfill, start_after=start_after,
                         queue_size=queue_size, reorder_depth=reorder_depth,
                         reorder_hold=reorder_hold, stale_after=stale_after,
                         backoff_base=backoff_base, backoff_max=backoff_max,
                         max_retries=max_retries, seed=seed)
        self.url = url
        self.label = f"websocket feed {url}"
        self.open_timeout = open_timeout
        self.ticks, self.interval, self.grace = ticks, interval, grace
        # ticks=True: one aggregator per symbol; counts survive the resets on reconnect
        self.tick_bars = TickBars(self.symbols, interval, grace) if ticks else None
        self.ticks_ignored = self.bars_ignored = 0

    def stats(self) -> dict[str, Any]:
        """Delivered, backfilled, reconnects, stale connections, rejected and dropped by reason.

        With ``ticks=True`` also ``ticks``: the aggregators' counts summed over symbols
        (``accepted``, ``late_accepted``, ``late_dropped``, ``invalid``, ``bars``).
        """
        out = {**super().stats(), "ticks_ignored": self.ticks_ignored}
        if self.tick_bars is not None:
            out["ticks"] = self.tick_bars.summary()
            out["bars_ignored"] = self.bars_ignored
        return out

    async def _run(self) -> None:
        async def session() -> bool:
            async with connect(self.url, open_timeout=self.open_timeout, close_timeout=2) as ws:
                return await self._session(ws)

        await self._sessions(session, (OSError, TimeoutError, ConnectionClosed, InvalidHandshake))

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
        await ws.send(subscribe_message(self.symbols, since, ticks=self.ticks))
        # A gap is possible before the first fresh bar after any reconnect or a resume.
        gap = self._lost_at is not None or self.start_after is not None
        if self._lost_at is not None and self.tick_bars is not None:
            self.tick_bars.reset(self.symbols)  # half-built bars may miss ticks from before the drop
        heard = loop.time()
        poll = max(0.01, min(self.stale_after / 2, self.reorder_hold / 2 or 0.05))
        while not self._closed:
            try:
                raw = await asyncio.wait_for(ws.recv(), poll)
            except TimeoutError:
                if loop.time() - heard > self.stale_after:
                    self.stale += 1
                    raise Stale from None
                await self._release(loop.time())
                continue
            try:
                kind, value = parse_message(raw)
            except Rejected as exc:
                self.rejected[exc.reason] += 1
                heard = loop.time()
                continue
            if kind == "bar" and self.ticks:
                self.bars_ignored += 1
            elif kind == "bar":
                if value.symbol not in self.symbols:
                    self.rejected["unknown_symbol"] += 1
                else:
                    gap = await self._fresh(value, gap, loop.time())
            elif kind == "tick" and self.tick_bars is not None:
                sym, t, price, size = value
                if sym not in self.symbols:
                    self.rejected["unknown_symbol"] += 1
                for bar in self.tick_bars.add(sym, t, price, size) if sym in self.symbols else ():
                    gap = await self._fresh(bar, gap, loop.time(), built=True)
            elif kind == "end":
                for agg in self.tick_bars.aggregators.values() if self.tick_bars is not None else ():
                    for bar in agg.flush():
                        gap = await self._fresh(bar, gap, loop.time(), built=True)
                await self._finish(value, loop.time())
                return True
            elif kind == "tick":
                self.ticks_ignored += 1
            heard = loop.time()  # after any wait on the queue: that wait is not silence
        return True

    async def _fresh(self, bar: Bar, gap: bool, now: float, built: bool = False) -> bool:
        """A bar from the stream (or built from its ticks); returns whether a gap is still open."""
        if not gap:
            self._offer(bar, now)
            await self._release(now)
            return False
        if built and self.backfill is not None:
            # The first bar built after a gap may lack ticks from before the connection:
            # the backfill's copy of it (``_fill`` includes ``through``) is the one delivered.
            await self._fill(bar.time, now)
        else:
            # The fresh bar first: the backfill's copy of it is then overlap.
            self._offer(bar, now)
            await self._fill(bar.time, now)
        await self._release(now)
        self._recovered()
        return False

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
            for t, o, h, low, c, v in frame_rows(frame):
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
