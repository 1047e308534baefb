"""Feeds that ask a REST-style source for new bars: :class:`PollingFeed` and the base of ``CcxtFeed``.

Conventions (shared with :class:`~tradelab.feeds.websocket.WebsocketFeed`)
-------------------------------------------------------------------------
* Each poll asks for the bars after the newest one already handled (delivered
  or rejected), so a gap after an outage is filled by the first poll that
  succeeds again; those bars count as ``backfilled``.
* Every row is validated (time, types, the bar-contract value rules of
  :func:`~tradelab.feeds.protocol.check_bar`); a bad one is counted under its
  reason in ``rejected`` and skipped, once.
* With ``hold_newest`` the newest row of a poll is taken to be still forming
  and is not delivered until a later row exists (exchange candles; the next
  poll fetches it again with its final values).
* Bars go through the :class:`~tradelab.feeds.sequence.Sequencer`: nothing
  twice, nothing out of order.
* A failed poll (one of ``transient``) backs off with jitter and counts as a
  reconnect; ``max_retries`` consecutive failures end the iteration with
  :class:`~tradelab.feeds.base.FeedError`.
* ``stale``: polls succeeded but no new bar for ``stale_after`` seconds
  (counted once per silent stretch).
* The iteration ends after the first bar at or after ``end`` (``None``: never;
  close it from another thread or stop the engine).
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from tradelab.data.bars import interval_timedelta, utc
from tradelab.errors import DataSourceError
from tradelab.feeds.base import ThreadFeed, frame_rows, parse_time, row_bar, row_time
from tradelab.feeds.protocol import Rejected
from tradelab.interfaces import DataSource


def default_stale(interval: str, poll_seconds: float) -> float:
    """Seconds without a new bar before a polled source is stale: two intervals, three polls."""
    td = interval_timedelta(interval)
    return max(3 * poll_seconds, 2 * td.total_seconds() if td is not None else 0.0, 1.0)


class PollingBase(ThreadFeed):
    """A :class:`ThreadFeed` that polls: subclasses write :meth:`_fetch` (see the module text).

    Parameters (besides :class:`ThreadFeed`'s)
    ----------
    poll_seconds
        Pause between polls.
    hold_newest
        Treat the newest row of each poll as still forming.
    end
        End the iteration once a bar at or after this time has been delivered.
    transient
        Exceptions that mean "try again later" (others end the iteration).
    """

    transient: tuple[type[BaseException], ...] = (OSError, TimeoutError)

    def __init__(self, symbols: str | Sequence[str], *, poll_seconds: float = 1.0,
                 hold_newest: bool = False, end: Any = None,
                 transient: tuple[type[BaseException], ...] | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("reorder_depth", 0)  # each poll is sorted: nothing to wait for
        super().__init__(symbols, **kwargs)
        if poll_seconds < 0:
            raise ValueError("poll_seconds must be >= 0")
        self.poll_seconds, self.hold_newest = poll_seconds, hold_newest
        self.end = None if end is None else utc(end).to_pydatetime()
        if transient is not None:
            self.transient = transient
        self._cursor: dict[str, datetime | None] = {}
        self.forming: dict[str, Sequence[Any]] = {}
        self._past_end: set[str] = set()
        self.polls = self.failed_polls = 0

    @property
    def cursor(self) -> dict[str, datetime | None]:
        """Newest row handled per symbol (delivered or rejected): the next poll starts after it."""
        cursor = self._cursor
        for sym in self.symbols:
            last, current = self.sequencer.last.get(sym), cursor.get(sym)
            if current is None or (last is not None and last > current):
                cursor[sym] = last
        return cursor

    def stats(self) -> dict[str, Any]:
        """As :meth:`ThreadFeed.stats`, plus ``polls`` and ``failed_polls``."""
        return {**super().stats(), "polls": self.polls, "failed_polls": self.failed_polls}

    @abstractmethod
    async def _fetch(self, symbol: str, after: datetime | None) -> list[Sequence[Any]]:
        """Rows ``(time, open, high, low, close, volume)`` newer than ``after`` (None: recent)."""

    async def _run(self) -> None:
        await self._poll_loop()

    async def _poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        failures, heard = 0, loop.time()
        while not self._closed:
            try:
                fresh = await self.poll_once()
            except self.transient:
                self.failed_polls += 1
                self._lost()
                failures += 1
                await self._retry(failures)
                continue
            failures = 0
            now = loop.time()
            if fresh:
                heard = now
            elif now - heard > self.stale_after:
                self.stale += 1
                heard = now  # once per silent stretch
            if self._finished():
                await self._end()
                return
            await asyncio.sleep(self.poll_seconds)

    async def poll_once(self, backfill: bool = False) -> int:
        """Poll every symbol once; returns how many new bars were accepted.

        The bars count as ``backfilled`` after a failure (or when ``backfill`` is set).
        """
        loop = asyncio.get_running_loop()
        recovering = self._lost_at is not None
        fresh = 0
        for sym in self.symbols:
            fresh += await self._poll_symbol(sym, recovering or backfill)
        self.polls += 1
        await self._release(loop.time())
        if recovering:
            self._recovered()
        return fresh

    async def _poll_symbol(self, symbol: str, backfill: bool) -> int:
        """One symbol's poll: its new rows, ingested; returns the bars accepted."""
        rows = await self._fetch(symbol, self.cursor[symbol])
        return self._ingest(symbol, rows, asyncio.get_running_loop().time(), backfill=backfill)

    def _ingest(self, symbol: str, rows: Sequence[Sequence[Any]], now: float,
                backfill: bool = False, hold: bool | None = None) -> int:
        """Validate, order and offer one poll's rows; returns the bars accepted.

        ``hold`` (default ``hold_newest``): keep the newest row back as still forming.
        """
        timed = []
        for row in rows:
            try:
                if not isinstance(row, Sequence) or len(row) < 1:
                    raise Rejected("not_object" if not isinstance(row, Sequence)
                                   else "missing_field")
                timed.append((parse_time(row[0]), row))
            except Rejected as exc:
                self.rejected[exc.reason] += 1
        timed.sort(key=lambda tr: tr[0])
        if (self.hold_newest if hold is None else hold) and timed:
            newest = timed[-1][0]
            self.forming[symbol] = timed[-1][1]
            timed = [tr for tr in timed if tr[0] < newest]
        cursor = self.cursor[symbol]
        delivered = self.sequencer.newest(symbol)
        accepted = 0
        for t, row in timed:
            if self.end is not None and t > self.end:
                self._past_end.add(symbol)
                continue
            if cursor is not None and t <= cursor and (delivered is None or t > delivered):
                continue  # rejected before (or before ``start_after``): not counted twice
            try:
                bar = row_bar(symbol, t, row)
            except Rejected as exc:
                self.rejected[exc.reason] += 1
            else:
                # At or before a delivered bar: the Sequencer counts it as a duplicate.
                accepted += self._offer(bar, now, backfill=backfill)
            if cursor is None or t > cursor:
                cursor = t
        self.cursor[symbol] = cursor
        return accepted

    def _start_here(self, symbol: str, rows: Sequence[Sequence[Any]]) -> None:
        """A fresh start: ``rows`` are history; delivery begins after their last closed one."""
        times = sorted(t for t in map(row_time, rows) if t is not None)
        if self.hold_newest:
            times = times[:-1]
        if times:
            self.cursor[symbol] = self.sequencer.last[symbol] = times[-1]

    def _finished(self) -> bool:
        if self.end is None:
            return False
        end = self.end
        return all(s in self._past_end or ((c := self.cursor[s]) is not None and c >= end)
                   for s in self.symbols)


class PollingFeed(PollingBase):
    """A ``LiveFeed`` that polls a REST-style :class:`~tradelab.interfaces.DataSource`.

    Every ``poll_seconds`` it loads each symbol's bars from the newest one it
    has handled onwards (``source.load(symbol, start=..., interval=...)``) and
    delivers the new ones; see :mod:`tradelab.feeds.polling` for validation,
    ordering, staleness and outages.

    Parameters
    ----------
    source
        The data source, unvalidated and uncached (a ``MarketData`` cache would
        answer polls with stale data): e.g. ``FileSource`` over a file another
        process appends to, or ``YFinanceSource``.
    symbols
        One symbol or several.
    interval
        Bar interval asked from the source.
    start_after
        Deliver only bars after this time. ``None``: the first poll's bars are
        history (used for :meth:`history`), only later ones are delivered —
        unless ``deliver_history`` is set.
    hold_newest
        The newest bar of a poll is still forming (intraday quotes): wait for a later one.
    transient
        Source errors that are retried with backoff (default: ``OSError``,
        ``TimeoutError``, :class:`~tradelab.errors.DataSourceError`).

    Other keywords: see :class:`PollingBase` and :class:`~tradelab.feeds.base.ThreadFeed`.
    """

    label = "polling feed"

    def __init__(self, source: DataSource, symbols: str | Sequence[str], *, interval: str = "1d",
                 poll_seconds: float = 60.0, stale_after: float | None = None,
                 deliver_history: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("transient", (OSError, TimeoutError, DataSourceError))
        super().__init__(symbols, poll_seconds=poll_seconds,
                         stale_after=stale_after or default_stale(interval, poll_seconds),
                         **kwargs)
        self.source, self.interval = source, interval
        self.label = f"polling feed {getattr(source, 'name', type(source).__name__)}"
        self.deliver_history = deliver_history
        if self.backfill is None:
            self.backfill = self._load

    def _load(self, symbol: str, start: Any, end: Any) -> pd.DataFrame:
        return self.source.load(symbol, start=start, end=end, interval=self.interval)

    async def _fetch(self, symbol: str, after: datetime | None) -> list[Sequence[Any]]:
        frame = await asyncio.to_thread(self._load, symbol, after, None)
        rows = frame_rows(frame)
        if after is None and self.start_after is None and not self.deliver_history:
            self._start_here(symbol, rows)   # the first poll is history, not news
            return []
        # ``start`` is inclusive: the row at ``after`` is the one we already have.
        return [r for r in rows if after is None or not isinstance(r[0], datetime)
                or r[0].tzinfo is None or r[0] > after]
