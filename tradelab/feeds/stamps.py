"""A live multi-symbol feed as a feed of time stamps (what a portfolio engine steps on).

A portfolio strategy decides on the whole universe at once, so its engine
(:mod:`tradelab.engine.portfolio_loop`) needs each time stamp's bars together. A
replay delivers them merged in time order; a live feed delivers them interleaved,
possibly out of symbol order, and one symbol may be late or silent.

**The rule** (:class:`StampBatcher`). One time stamp *t* is assembled at a time:

* *t* is **complete** when every symbol of the universe has delivered its bar for
  *t*, or when the **cut-off** passes: ``cutoff`` seconds (monotonic, on the
  engine's side) after the first bar of *t* arrived. A symbol without a bar by then
  is *missing* at *t*: the alignment rule of :mod:`tradelab.data.universe` (its last
  close is held, it is not traded), exactly as a replay treats a symbol without a bar.
* A bar of a later time stamp *t'* arriving before *t* is complete completes *t*
  first (with what it has), then starts *t'*.
* A bar for a time stamp already completed (or older than the one being assembled)
  is a **late bar**: not applied — the engine's time never goes back and the
  decision on *t* is taken — but counted (:attr:`StampBatcher.late`, the run's
  data-quality record through ``on_late``) and logged once, never silently dropped.
  A second bar of one symbol for *t* is counted as ``duplicate``; a symbol outside
  the universe as ``unknown_symbol``.
* The end of the feed (or a stop of the engine) completes the time stamp pending.

Each batch lists its bars in universe order (whatever order they arrived in), the
order a replay merges them in, so a live run trades like the replay of the same bars.

**Why a grace period after the first arrival, 5 s by default**
(``[feeds] stamp_cutoff``). The bars of one close are published together by a venue
and arrive within milliseconds to a second or two of each other (a websocket) or
within one round of requests (polling), so 5 s is long enough for a healthy feed
to deliver every symbol and short against the bar intervals live feeds use (a
minute and up): a silent symbol delays the decision by at most the cut-off.
Measuring from the arrival rather than from the bar's time keeps a backfill (old
bars arriving in a burst) and a skewed venue clock from cutting every stamp short.
The clock is the engine's side of the queue: bars waiting in it while the engine
was busy are not "late".

:class:`LiveStamps` is the engine-facing iterable: it reads the bar feed through
:class:`Arrivals` (a thread that turns the blocking feed into bars and periodic
:data:`WAKE` items, so a cut-off fires when no bar comes) and runs the batcher with
an injected monotonic ``timer``. Tests drive :class:`StampBatcher` and
:class:`LiveStamps` with scripted items and a manual timer: no sleeps.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import structlog

from tradelab.interfaces import Bar

log = structlog.get_logger("tradelab.feeds.stamps")

#: Seconds after the first bar of a time stamp arrived before it is complete anyway.
DEFAULT_CUTOFF = 5.0


class _Wake:
    """Nothing arrived for a while (a chance to check the cut-off); not a bar."""

    def __repr__(self) -> str:
        return "WAKE"


#: Yielded by :class:`Arrivals` when no bar came within its ``tick``.
WAKE = _Wake()
_END = object()


class StampBatcher:
    """The live batching rule (module docstring) as an event-driven state machine.

    Parameters
    ----------
    symbols
        The universe (the order of each batch).
    cutoff
        Seconds after the first bar of a time stamp arrived at which it is complete.

    Attributes
    ----------
    counts
        ``complete`` (every symbol), ``cutoff`` (completed by the cut-off), ``superseded``
        (by a later time stamp's bar), ``end`` (by the end of the feed), ``late``,
        ``duplicate``, ``unknown_symbol``.
    late
        Symbol → late bars (not applied).

    Raises
    ------
    ValueError
        No symbols, a symbol given twice, or ``cutoff`` not > 0.
    """

    def __init__(self, symbols: Sequence[str], cutoff: float = DEFAULT_CUTOFF) -> None:
        if not symbols:
            raise ValueError("symbols: at least one")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols: {list(symbols)!r} names a symbol twice")
        if not cutoff > 0:
            raise ValueError(f"cutoff={cutoff!r}: expected seconds > 0")
        self.symbols = tuple(symbols)
        self.cutoff = float(cutoff)
        self._rank = {s: i for i, s in enumerate(self.symbols)}
        self.counts: Counter[str] = Counter()
        self.late: Counter[str] = Counter()
        self.pending: datetime | None = None     # the time stamp being assembled
        self.done: datetime | None = None        # the last one completed
        self._bars: dict[str, Bar] = {}
        self._deadline = 0.0

    @property
    def deadline(self) -> float | None:
        """When the pending time stamp's cut-off passes (``None``: nothing pending)."""
        return None if self.pending is None else self._deadline

    def add(self, bar: Bar, now: float) -> tuple[list[list[Bar]], str | None]:
        """One arrived bar at monotonic time ``now``.

        Returns
        -------
        batches, rejected
            The time stamps completed by this arrival (oldest first), and why the bar
            itself was not taken (``"late"``, ``"duplicate"``, ``"unknown_symbol"``) or
            ``None``.
        """
        out = self.expire(now)
        sym, t = bar[0], bar[1]
        if sym not in self._rank:
            self.counts["unknown_symbol"] += 1
            return out, "unknown_symbol"
        if (self.done is not None and t <= self.done) or (
                self.pending is not None and t < self.pending):
            self.counts["late"] += 1
            self.late[sym] += 1
            return out, "late"
        if self.pending is not None and t > self.pending:
            out.append(self._complete("superseded"))
        if self.pending is None:
            self.pending, self._deadline = t, now + self.cutoff
        if sym in self._bars:
            self.counts["duplicate"] += 1
            return out, "duplicate"
        self._bars[sym] = bar
        if len(self._bars) == len(self.symbols):
            out.append(self._complete("complete"))
        return out, None

    def expire(self, now: float) -> list[list[Bar]]:
        """The pending time stamp, when its cut-off has passed at ``now``."""
        if self.pending is not None and now >= self._deadline:
            return [self._complete("cutoff")]
        return []

    def finish(self) -> list[list[Bar]]:
        """The end of the feed: the pending time stamp, complete with what it has."""
        return [self._complete("end")] if self.pending is not None else []

    def _complete(self, why: str) -> list[Bar]:
        self.counts[why] += 1
        rank = self._rank
        batch = sorted(self._bars.values(), key=lambda b: rank[b[0]])
        self.done, self.pending, self._bars = self.pending, None, {}
        return batch

    def stats(self) -> dict[str, Any]:
        """The counts, ``late`` by symbol and the cut-off (``tradelab paper``'s stamps line)."""
        keys = ("complete", "cutoff", "superseded", "end", "late", "duplicate", "unknown_symbol")
        return {**{k: self.counts[k] for k in keys}, "late_by_symbol": dict(self.late),
                "cutoff_seconds": self.cutoff}


class Arrivals:
    """Iterate a blocking bar feed on a thread; yield its bars, and :data:`WAKE` after
    each ``tick`` seconds without one (so the consumer can act on a deadline).

    Every other attribute (``stats``, ``history``, ``backfill``, ``start_after``...) is
    the feed's, read and set through, so :func:`tradelab.data.quality.gate_feed` can
    wrap this like the feed itself. An exception of the feed is raised to the consumer.
    """

    _OWN = frozenset({"feed", "tick", "_q", "_thread", "_closed"})

    def __init__(self, feed: Iterable[Bar], tick: float = 0.05) -> None:
        object.__setattr__(self, "feed", feed)
        object.__setattr__(self, "tick", tick)
        object.__setattr__(self, "_q", queue.Queue(maxsize=1024))
        object.__setattr__(self, "_thread", None)
        object.__setattr__(self, "_closed", False)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "feed"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.feed, name, value)

    def _pump(self) -> None:
        q: queue.Queue[Any] = self._q
        try:
            for bar in self.feed:
                while not self._closed:  # bounded: a slow engine slows the feed down
                    try:
                        q.put(bar, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._closed:
                    return
            item: Any = _END
        except BaseException as exc:  # raised in the consumer's thread
            item = exc
        with contextlib.suppress(queue.Full):
            q.put(item, timeout=5)

    def __iter__(self) -> Iterator[Any]:
        if self._thread is None:
            thread = threading.Thread(target=self._pump, name="tradelab-arrivals", daemon=True)
            object.__setattr__(self, "_thread", thread)
            thread.start()
        try:
            while True:
                try:
                    item = self._q.get(timeout=self.tick)
                except queue.Empty:
                    if self._closed:
                        return
                    yield WAKE
                    continue
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop: the feed is closed (its iteration ends) and so is this one."""
        object.__setattr__(self, "_closed", True)
        close = getattr(self.feed, "close", None)
        if close is not None:
            close()


class LiveStamps:
    """A live bar feed as lists of bars per time stamp (:class:`StampBatcher`'s rule).

    Parameters
    ----------
    feed
        Bars, possibly interleaved with :data:`WAKE` items (:class:`Arrivals`, or a
        :class:`~tradelab.data.quality.QualityGatedFeed` around one).
    symbols, cutoff
        The universe and the cut-off (see :class:`StampBatcher`).
    timer
        Monotonic seconds (tests inject a manual one).
    on_late
        Called with each bar not applied and the reason (``late``, ``duplicate``,
        ``unknown_symbol``): the composition root records it as data quality.
    """

    def __init__(self, feed: Any, symbols: Sequence[str], cutoff: float = DEFAULT_CUTOFF, *,
                 timer: Callable[[], float] = time.monotonic,
                 on_late: Callable[[Bar, str], None] | None = None) -> None:
        self.feed = feed
        self.batcher = StampBatcher(symbols, cutoff)
        self.timer, self.on_late = timer, on_late

    @property
    def symbols(self) -> tuple[str, ...]:
        """The universe."""
        return self.batcher.symbols

    @property
    def start_after(self) -> Any:
        """The underlying feed's resume point (set by a resume)."""
        return getattr(self.feed, "start_after", None)

    @start_after.setter
    def start_after(self, value: Any) -> None:
        self.feed.start_after = value

    def history(self, symbol: str, through: datetime | None, n: int) -> Any:
        """The feed's history (its backfill), for a resume's warmup."""
        return self.feed.history(symbol, through, n)

    def close(self) -> None:
        """Stop: the feed ends, then the pending time stamp is delivered."""
        close = getattr(self.feed, "close", None)
        if close is not None:
            close()

    def stats(self) -> dict[str, Any]:
        """The batcher's counts (:meth:`StampBatcher.stats`)."""
        return self.batcher.stats()

    def drain(self) -> list[list[Bar]]:
        """The time stamp pending, complete with what it has: an engine stopped between two
        batches steps it (its bars arrived before the stop)."""
        return self.batcher.finish()

    def __iter__(self) -> Iterator[list[Bar]]:
        b, timer = self.batcher, self.timer
        for item in self.feed:
            now = timer()
            if item is WAKE:
                yield from b.expire(now)
                continue
            batches, rejected = b.add(item, now)
            if rejected is not None:
                self._rejected(item, rejected)
            yield from batches
        yield from b.finish()

    def _rejected(self, bar: Bar, why: str) -> None:
        b = self.batcher
        log.warning("stamp_bar_not_applied", reason=why, symbol=bar[0], time=bar[1].isoformat(),
                    completed_through=None if b.done is None else b.done.isoformat())
        if self.on_late is not None:
            self.on_late(bar, why)


__all__ = ["DEFAULT_CUTOFF", "WAKE", "Arrivals", "LiveStamps", "StampBatcher"]
