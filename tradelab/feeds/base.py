"""What every live feed shares: the engine-facing queue, the I/O thread, backoff, validation.

A feed runs its I/O on a background thread with its own asyncio loop
(:meth:`ThreadFeed._run`, written by each feed) and hands bars to the
synchronous engine through a bounded queue, so a slow engine slows the source
down instead of growing memory. Every bar passes a
:class:`~tradelab.feeds.sequence.Sequencer` (duplicates and out-of-order bars
dropped and counted under ``dropped``) and malformed input is counted by
reason under ``rejected`` (the reasons of :mod:`tradelab.feeds.protocol`).

Reconnects and failed polls back off exponentially with jitter
(:func:`backoff_delay`); the count of consecutive failures resets when new
bars arrive, and after ``max_retries`` consecutive failures the iteration
raises :class:`FeedError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import queue
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from tradelab.data.bars import utc
from tradelab.errors import TradelabError
from tradelab.feeds.aggregate import TickAggregator
from tradelab.feeds.protocol import Rejected, check_bar
from tradelab.feeds.sequence import Sequencer
from tradelab.interfaces import Bar

Backfill = Callable[[str, Any, Any], pd.DataFrame]
EMPTY_COLUMNS = ["open", "high", "low", "close", "volume"]
_END = object()


class FeedError(TradelabError):
    """The feed gave up (too many failed reconnects or polls) or was misconfigured."""


class Stale(Exception):
    """Nothing heard from the source within ``stale_after``: the connection is replaced."""


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def backoff_delay(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after ``failures`` consecutive failures (>= 1).

    ``min(cap, base * 2**(failures-1))`` scaled by a random factor in ``[0.5, 1]``, so
    many clients that lost the same server do not come back in lockstep.
    """
    return min(cap, base * 2 ** (failures - 1)) * (0.5 + 0.5 * rng.random())


def parse_time(value: Any) -> datetime:
    """A candle time: int milliseconds since the epoch, or an aware datetime/Timestamp.

    Raises
    ------
    Rejected
        ``missing_field`` (None), ``bad_time`` (naive, unparsable, wrong type).
    """
    if value is None:
        raise Rejected("missing_field", "time")
    if isinstance(value, bool):
        raise Rejected("bad_time", "bool")
    if isinstance(value, int | float) and not isinstance(value, datetime):
        if not math.isfinite(value):
            raise Rejected("bad_time", repr(value))
        try:
            return datetime.fromtimestamp(int(value) / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise Rejected("bad_time", repr(value)) from None
    if isinstance(value, datetime):  # pandas Timestamps too
        if value.tzinfo is None:
            raise Rejected("bad_time", f"{value} has no time zone")
        return pd.Timestamp(value).tz_convert("UTC").to_pydatetime()
    raise Rejected("bad_time", type(value).__name__)


def row_time(row: Any) -> datetime | None:
    """The time of a ``(time, ...)`` row, or ``None`` when it has no valid one."""
    try:
        return parse_time(row[0])
    except (Rejected, TypeError, IndexError, KeyError):
        return None


def _number(value: Any, name: str) -> float:
    if value is None:
        raise Rejected("missing_field", name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected("bad_type", f"{name} is {type(value).__name__}")
    return float(value)


def row_bar(symbol: str, time: datetime, row: Sequence[Any]) -> Bar:
    """``row`` = ``(time, open, high, low, close, volume)`` checked against the bar contract.

    ``time`` is the already parsed time of ``row[0]``. Raises :class:`Rejected`.
    """
    if len(row) < 6:
        raise Rejected("missing_field", f"{len(row)} fields")
    o, h, low, c, v = (_number(x, k) for x, k in zip(row[1:6], EMPTY_COLUMNS, strict=True))
    check_bar(o, h, low, c, v)
    return Bar(symbol, time, o, h, low, c, v)


def tick_values(price: Any, size: Any) -> tuple[float, float]:
    """A trade's price and size, checked: both finite and positive.

    Raises :class:`Rejected`: ``missing_field``, ``bad_type``, ``nan``,
    ``non_positive`` (price or size) or ``negative_volume`` (size).
    """
    p, s = _number(price, "price"), _number(size, "size")
    if not (math.isfinite(p) and math.isfinite(s)):
        raise Rejected("nan")
    if s < 0:
        raise Rejected("negative_volume")
    if p <= 0 or s == 0:
        raise Rejected("non_positive", "price" if p <= 0 else "size")
    return p, s


TICK_COUNTS = ("accepted", "late_accepted", "late_dropped", "invalid", "bars")


class TickBars:
    """One :class:`~tradelab.feeds.aggregate.TickAggregator` per symbol, with counts that
    survive :meth:`reset` (a feed's ``stats()["ticks"]``).

    ``counts`` also takes the feed's own tick outcomes (e.g. ``duplicate``).
    """

    def __init__(self, symbols: Sequence[str], interval: Any, grace: Any) -> None:
        self.interval, self.grace = interval, grace
        self.counts: Counter[str] = Counter()
        self.aggregators: dict[str, TickAggregator] = {}
        self.reset(symbols)

    def reset(self, symbols: Sequence[str]) -> None:
        """Discard the half-built bars of ``symbols`` (keeping their counts)."""
        for sym in symbols:
            old = self.aggregators.get(sym)
            if old is not None:
                self.counts.update(old.counts)
            self.aggregators[sym] = TickAggregator(sym, self.interval, self.grace)

    def add(self, symbol: str, time: Any, price: float, size: float) -> list[Bar]:
        """One tick of ``symbol``; the bars it completed (see the aggregator's policy)."""
        return self.aggregators[symbol].add(time, price, size)

    def summary(self, *extra: str) -> dict[str, int]:
        """:data:`TICK_COUNTS` (and ``extra`` keys) summed over symbols and resets."""
        total = Counter(self.counts)
        for agg in self.aggregators.values():
            total.update(agg.counts)
        return {k: total[k] for k in (*TICK_COUNTS, *extra)}


def frame_rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """A bar frame as ``(time, open, high, low, close, volume)`` rows (values unchecked)."""
    if frame is None or len(frame) == 0:
        return []
    values = frame.reindex(columns=EMPTY_COLUMNS).astype("float64").to_numpy().tolist()
    stamps = pd.DatetimeIndex(frame.index)
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC")
    return [(t.to_pydatetime(), *v) for t, v in zip(stamps, values, strict=True)]


class ThreadFeed(ABC):
    """Base of the live feeds: iterate it like ``ReplayFeed``; subclasses write :meth:`_run`.

    Parameters
    ----------
    symbols
        One symbol or several.
    backfill
        ``(symbol, start, end) -> bars`` for gaps and ``history``; ``None``: none.
    start_after
        Deliver only bars after this time (resuming a run).
    queue_size, reorder_depth, reorder_hold
        Engine-side buffer and the :class:`Sequencer`'s reorder buffer.
    stale_after
        Seconds without news before the source counts as stale (see each feed).
    backoff_base, backoff_max, max_retries, seed
        See :func:`backoff_delay`; ``seed`` seeds the jitter (tests).

    Attributes
    ----------
    rejected
        Reason → malformed input rejected.
    reconnects, stale, backfilled, delivered
        Counters; see :meth:`stats`.
    recoveries
        Seconds from each lost connection (or failed poll) to the first fresh bar after it.
    """

    label = "feed"

    def __init__(self, symbols: str | Sequence[str], *, backfill: Backfill | None = None,
                 start_after: datetime | None = None, queue_size: int = 1024,
                 reorder_depth: int = 1, reorder_hold: float = 0.2, stale_after: float = 5.0,
                 backoff_base: float = 0.05, backoff_max: float = 5.0, max_retries: int = 10,
                 seed: int | None = None) -> None:
        self.symbols = [symbols] if isinstance(symbols, str) else list(symbols)
        if not self.symbols:
            raise ValueError("at least one symbol")
        if stale_after <= 0:
            raise ValueError("stale_after must be > 0")
        self.backfill = backfill
        self.stale_after, self.reorder_hold = stale_after, reorder_hold
        self.backoff_base, self.backoff_max, self.max_retries = backoff_base, backoff_max, max_retries
        self._rng = random.Random(seed)
        self.sequencer = Sequencer(reorder_depth, reorder_hold)
        self._start_after: datetime | None = None
        self.start_after = start_after
        self._q: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.rejected: Counter[str] = Counter()
        self.reconnects = self.stale = self.backfilled = self.delivered = 0
        self._accepted = 0  # bars that passed the sequencer (backoff resets when it grows)
        self.recoveries: list[float] = []
        self._lost_at: float | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def start_after(self) -> datetime | None:
        """Nothing at or before this time is delivered (set before iterating, e.g. on resume)."""
        return self._start_after

    @start_after.setter
    def start_after(self, value: Any) -> None:
        t = None if value is None else utc(value).to_pydatetime()
        self._start_after = t
        if t is not None:
            for sym in self.symbols:
                last = self.sequencer.last.get(sym)
                if last is None or last < t:
                    self.sequencer.last[sym] = t

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
                    raise FeedError(f"{self.label}: {item.exc}") from item.exc
                if self._closed:
                    return
                self.delivered += 1
                yield item
        finally:
            self.close()

    def history(self, symbol: str, through: Any, n: int) -> pd.DataFrame:
        """The last ``n`` bars up to and including ``through``, from ``backfill`` (warmup)."""
        if self.backfill is None or through is None or n <= 0:
            return pd.DataFrame(columns=EMPTY_COLUMNS)
        return self.backfill(symbol, None, through).iloc[-n:]

    def close(self) -> None:
        """Stop: the iteration ends and the I/O thread winds down."""
        self._closed = True
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop already finished
                loop.call_soon_threadsafe(task.cancel)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def stats(self) -> dict[str, Any]:
        """Delivered, backfilled, reconnects, stale episodes, rejected and dropped by reason."""
        return {"delivered": self.delivered, "backfilled": self.backfilled,
                "reconnects": self.reconnects, "stale": self.stale,
                "rejected": dict(self.rejected), "dropped": dict(self.sequencer.dropped),
                "recoveries": list(self.recoveries)}

    # -- the I/O thread -------------------------------------------------------------------
    @abstractmethod
    async def _run(self) -> None:
        """The feed's I/O, on the feed's own event loop, until the end or :meth:`close`."""

    async def _cleanup(self) -> None:  # noqa: B027  (a hook: most feeds hold nothing to release)
        """Release I/O resources; runs on the I/O loop after :meth:`_run`, even when cancelled."""

    def _start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._thread_main,
                                        name=f"tradelab-{type(self).__name__}", daemon=True)
        self._thread.start()

    def _thread_main(self) -> None:
        async def main() -> None:
            self._task = asyncio.current_task()
            await self._run()

        # asyncio.Runner cancels and awaits leftover tasks (keepalives) on exit.
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
            finally:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    runner.run(self._cleanup())

    async def _put(self, item: Any) -> None:
        # Polling instead of a blocking put: blocking would freeze this event loop.
        while not self._closed:
            try:
                self._q.put_nowait(item)
                return
            except queue.Full:
                await asyncio.sleep(0.002)

    async def _end(self) -> None:
        """End of stream: every waiting bar, then the end marker."""
        for bar in self.sequencer.drain():
            await self._put(bar)
        await self._put(_END)

    def _offer(self, bar: Bar, now: float, backfill: bool = False) -> bool:
        if self.sequencer.offer(bar, now, backfill=backfill):
            self._accepted += 1
            self.backfilled += backfill
            return True
        return False

    async def _release(self, now: float) -> None:
        for bar in self.sequencer.ready(now):
            await self._put(bar)

    def _lost(self) -> None:
        """A connection was lost or a poll failed (recovery time runs from the first one)."""
        if self._lost_at is None:
            self._lost_at = time.perf_counter()

    def _recovered(self) -> None:
        if self._lost_at is not None:
            self.recoveries.append(time.perf_counter() - self._lost_at)
            self._lost_at = None

    async def _sessions(self, session: Callable[[], Awaitable[bool]],
                        errors: tuple[type[BaseException], ...],
                        on_lost: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run ``session()`` (one connection) until it reports the end, reconnecting.

        A session that raises one of ``errors`` (or :class:`Stale`) is lost: ``on_lost``
        runs, then the backoff. A session that brought new bars was healthy, so the
        backoff after it starts from scratch.
        """
        failures = 0
        lost: tuple[type[BaseException], ...] = (*errors, Stale)
        while not self._closed:
            fresh_before = self._accepted
            try:
                if await session():
                    # Only now, with the session closed cleanly: the consumer's close()
                    # after the end must not cancel the closing handshake.
                    await self._end()
                    return
            except lost:
                pass  # counted below as a failed or lost connection
            if self._closed:
                return
            self._lost()
            if on_lost is not None:
                await on_lost()
            failures = 1 if self._accepted > fresh_before else failures + 1
            await self._retry(failures)

    async def _retry(self, failures: int) -> None:
        """Count a reconnect and wait out its backoff; give up after ``max_retries``."""
        if failures > self.max_retries:
            raise FeedError(f"gave up after {self.max_retries} failed reconnects")
        self.reconnects += 1
        # Hand-rolled, not tenacity: the retry state must reset after a healthy
        # session inside one long-lived loop, which a per-call retry policy does not model.
        await asyncio.sleep(backoff_delay(failures, self.backoff_base, self.backoff_max,
                                          self._rng))
