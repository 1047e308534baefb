"""Trades as ticks for :class:`~tradelab.feeds.ccxt_feed.CcxtFeed` (``ticks=True``).

The trade side of the ccxt feed: REST paging of ``fetch_trades`` from the last
trade seen, ``watch_trades`` sessions spliced onto REST at the stream's first
trade, de-duplication across overlapping pages, and the candle fallback when an
exchange's trade history no longer reaches back (see the ccxt feed's module text
for the policy). A mixin: it works on the feed's client, sequencer and counters.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from tradelab.feeds.base import (
    Stale,
    TickBars,
    parse_time,
    row_time,
    tick_values,
)
from tradelab.feeds.polling import PollingBase
from tradelab.feeds.protocol import Rejected
from tradelab.interfaces import Bar

MS = 1_000_000  # nanoseconds per millisecond


class Trail:
    """One symbol's trade cursor: the newest trade seen and the keys of recent ones."""

    def __init__(self) -> None:
        self.floor: int | None = None    # ns: trades before it are history (not built)
        self.newest: int | None = None   # ns of the newest trade taken
        self.seen: dict[Any, int] = {}   # (id, timestamp) -> ns, recent trades only


class TradeBars(PollingBase):
    """The ``ticks=True`` behaviour of :class:`~tradelab.feeds.ccxt_feed.CcxtFeed`.

    A :class:`~tradelab.feeds.polling.PollingBase` (whose sequencer, counters, cursor
    and delivery it works on), so the feed's method order is unchanged:
    ``CcxtFeed → TradeBars → PollingBase``.
    """

    # Set by CcxtFeed.__init__.
    client: Any
    page_limit: int
    tick_bars: TickBars
    _trails: dict[str, Trail]
    _refill: set[str]
    _keep: int   # ns: how long a trade's key is remembered for de-duplication

    @abstractmethod
    async def _request(self, symbol: str, since: int | None, trades: bool = False) -> list[Any]:
        """One REST page (``fetch_trades`` with ``trades``), rate-limited (CcxtFeed)."""

    async def _catch_up(self, symbol: str, backfill: bool, until: int | None = None) -> int:
        """REST trades of ``symbol`` after the last one seen (paged); returns bars accepted.

        ``until`` (ns): trades from then on come from the stream and are skipped here.
        """
        trail = self._trail_start(symbol)
        if trail is None:
            trail = await self._fresh_start(symbol)
            if trail is None:
                return 0
        accepted, fresh = 0, 0
        since = trail.newest if trail.newest is not None else trail.floor
        while since is not None:
            page = await self._request(symbol, since // MS, trades=True)
            if trail.newest is not None and not _reaches(page, since):
                if page:   # newer trades, but not back to the last one seen: a gap
                    return await self._history_gap(symbol, page, backfill, until)
                break
            new, bars = self._take(symbol, page, until)
            fresh += new
            accepted += await self._deliver(symbol, bars, backfill)
            newest = max((t for t in map(_trade_ns, page) if t is not None), default=None)
            if (len(page) < self.page_limit or not new or newest is None or newest <= since
                    or (until is not None and newest >= until)):
                break
            since = newest
        if not fresh and until is None:
            # Nothing new from ``since``: an exchange may bound such queries to a window,
            # so ask for the newest trades too.
            recent = await self._request(symbol, None, trades=True)
            ref = trail.newest if trail.newest is not None else trail.floor
            if ref is not None and any(t is not None and t > ref for t in map(_trade_ns, recent)):
                if trail.newest is not None and not _reaches(recent, ref):
                    return accepted + await self._history_gap(symbol, recent, backfill, None)
                _, bars = self._take(symbol, recent, None)
                accepted += await self._deliver(symbol, bars, backfill)
        return accepted

    def _trail_start(self, symbol: str) -> Trail | None:
        """The symbol's trail; ``None`` before its start is known (no ``start_after``)."""
        trail = self._trails[symbol]
        if trail.floor is None and self.start_after is not None:
            trail.floor = int(pd.Timestamp(self.start_after).value) + 1
        return trail if trail.floor is not None else None

    async def _fresh_start(self, symbol: str) -> Trail | None:
        """No ``start_after``: delivery starts with the bar the newest trade is in."""
        recent = await self._request(symbol, None, trades=True)
        newest = max((t for t in map(_trade_ns, recent) if t is not None), default=None)
        if newest is None:
            return None
        step = self.tick_bars.aggregators[symbol].interval
        bucket = newest - newest % step
        trail = self._trails[symbol]
        trail.floor = bucket
        self.sequencer.last[symbol] = _time(bucket - step)   # the bar before is history
        return trail

    def _take(self, symbol: str, trades: Sequence[Any],
              until: int | None) -> tuple[int, list[Bar]]:
        """Dedupe, validate and aggregate trades; returns (trades taken, bars completed)."""
        trail, bars, taken = self._trails[symbol], [], 0
        for trade in trades:
            if not isinstance(trade, Mapping):
                self.rejected["not_object"] += 1
                continue
            key = _key(trade)
            if key in trail.seen:
                self.tick_bars.counts["duplicate"] += 1
                continue
            try:
                t = parse_time(trade.get("timestamp"))
                price, size = tick_values(trade.get("price"), trade.get("amount"))
            except Rejected as exc:
                self.rejected[exc.reason] += 1
                trail.seen[key] = trail.newest or 0   # counted once, however often re-sent
                continue
            ns = int(pd.Timestamp(t).value)
            if (until is not None and ns >= until) or (trail.floor is not None
                                                       and ns < trail.floor):
                continue   # the stream's (``until``) or history (before the start)
            trail.seen[key] = ns
            taken += 1
            if trail.newest is None or ns > trail.newest:
                trail.newest = ns
            bars += self.tick_bars.add(symbol, ns, price, size)
        if trail.newest is not None and len(trail.seen) > 64:
            horizon = trail.newest - self._keep
            trail.seen = {k: v for k, v in trail.seen.items() if v >= horizon}
        return taken, bars

    async def _deliver(self, symbol: str, bars: Sequence[Bar], backfill: bool) -> int:
        """Offer built bars in order; after a history gap the first comes from candles."""
        accepted, now = 0, asyncio.get_running_loop().time()
        for bar in bars:
            if self.end is not None and bar.time > self.end:
                self._past_end.add(symbol)
            elif symbol in self._refill:
                self._refill.discard(symbol)
                accepted += await self._candles(symbol, bar.time)
            else:
                accepted += self._offer(bar, now, backfill=backfill)
        return accepted

    async def _history_gap(self, symbol: str, page: Sequence[Any], backfill: bool,
                           until: int | None) -> int:
        """The exchange has no trades back to the last one seen: candles bridge the gap.

        The half-built bar is discarded; ``page`` starts a fresh aggregation whose
        first bar (it may lack trades from before the page) and everything before it
        are delivered from ``fetch_ohlcv``.
        """
        self.tick_bars.reset([symbol])
        self._refill.add(symbol)
        trail = self._trails[symbol]
        trail.newest, trail.seen = None, {}
        trail.floor = min((t for t in map(_trade_ns, page) if t is not None), default=None)
        _, bars = self._take(symbol, page, until)
        return await self._deliver(symbol, bars, backfill)

    async def _candles(self, symbol: str, through: datetime) -> int:
        """Closed candles after the last bar delivered, up to and including ``through``."""
        after = self.cursor[symbol]
        if after is None or after >= through:
            return 0
        rows = await self._fetch(symbol, after)
        rows = [r for r in rows if (t := row_time(r)) is None or t <= through]
        return self._ingest(symbol, rows, asyncio.get_running_loop().time(), backfill=True,
                            hold=False)

    async def _trade_updates(self) -> dict[str, list[Any]]:
        if len(self.symbols) == 1:
            sym = self.symbols[0]
            return {sym: list(await self.client.watch_trades(sym))}
        out: dict[str, list[Any]] = {}
        for trade in await self.client.watch_trades_for_symbols(self.symbols):
            name = trade.get("symbol") if isinstance(trade, Mapping) else None
            out.setdefault(name if isinstance(name, str) else "", []).append(trade)
        return out

    async def _watch_trades(self) -> bool:
        """One websocket session of trades; ``True`` once ``end`` is reached."""
        loop = asyncio.get_running_loop()
        caught_up = False
        while not self._closed:
            try:
                updates = await asyncio.wait_for(self._trade_updates(), self.stale_after)
            except TimeoutError:
                self.stale += 1
                raise Stale from None
            recovering = self._lost_at is not None
            if not caught_up:
                # REST up to the stream's first trade: what was missed before or while
                # the connection was down.
                for sym in self.symbols:
                    first = min((t for t in map(_trade_ns, updates.get(sym, ()))
                                 if t is not None), default=None)
                    await self._catch_up(sym, recovering, until=first)
                caught_up = True
                if recovering:
                    self._recovered()
            for sym, trades in updates.items():
                if sym not in self.symbols:
                    self.rejected["unknown_symbol"] += len(trades)
                    continue
                if self._trail_start(sym) is None:
                    continue   # no start yet (nothing traded before): wait for REST
                _, bars = self._take(sym, trades, None)
                await self._deliver(sym, bars, False)
            await self._release(loop.time())
            if self._finished():
                return True
        return False


def _trade_ns(trade: Any) -> int | None:
    """A trade's time in ns since the epoch, or ``None`` without a valid one."""
    try:
        t = parse_time(trade.get("timestamp") if isinstance(trade, Mapping) else None)
    except Rejected:
        return None
    return int(pd.Timestamp(t).value)


def _reaches(page: Sequence[Any], since: int) -> bool:
    """Whether a page asked from ``since`` (the time of a trade seen) goes back to it."""
    return any(t is not None and t <= since for t in map(_trade_ns, page))


def _key(trade: Mapping[str, Any]) -> Any:
    key = (trade.get("id"), trade.get("timestamp"))
    try:
        hash(key)
    except TypeError:
        return repr(key)
    return key


def _time(ns: int) -> datetime:
    return pd.Timestamp(ns, unit="ns", tz=UTC).to_pydatetime()


__all__ = ["TradeBars", "Trail"]
