"""Ordering and de-duplication between a live stream and the engine.

Policy (per symbol; the engine never sees a bar twice or out of order)
-----------------------------------------------------------------------
* A bar whose time is at or before the symbol's last *delivered* bar is
  dropped: counted as ``duplicate`` when the time equals the last delivered
  one, ``out_of_order`` when it is older (it came too late to be delivered in
  order).
* A bar whose time is already waiting in the buffer is dropped as
  ``duplicate``.
* Accepted bars wait in a small buffer ordered by time, so a bar that arrives
  up to ``depth`` positions late still goes out in order. A bar leaves the
  buffer when more than ``depth`` bars wait, or when the oldest arrival has
  waited ``hold`` seconds (which bounds the latency the buffer adds), or on
  :meth:`Sequencer.drain`.
* Bars from a backfill go through the same buffer; a backfilled bar already
  delivered or waiting is expected overlap and counted as ``backfill_overlap``,
  not as a duplicate.

Across symbols the buffer releases in time order, but a symbol's bar may follow
another symbol's later bar when it arrived after that bar had been released.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping
from datetime import datetime

from tradelab.interfaces import Bar


class Sequencer:
    """Buffer that turns a messy stream into strictly increasing bars per symbol.

    Parameters
    ----------
    depth
        How many bars may wait for a late predecessor (0: no reordering).
    hold
        Seconds after which a waiting bar is released regardless.
    last
        Last delivered time per symbol (resuming: nothing at or before it is delivered).

    Attributes
    ----------
    dropped
        Reason (``duplicate``, ``out_of_order``, ``backfill_overlap``) → count.
    """

    def __init__(self, depth: int = 1, hold: float = 0.2,
                 last: Mapping[str, datetime] | None = None) -> None:
        if depth < 0 or hold < 0:
            raise ValueError("depth and hold must be >= 0")
        self.depth, self.hold = depth, hold
        self.last: dict[str, datetime] = dict(last or {})
        self.dropped: Counter[str] = Counter()
        self._heap: list[tuple[datetime, int, Bar, float]] = []
        self._waiting: set[tuple[str, datetime]] = set()
        self._n = 0  # tie-breaker: equal times leave in arrival order

    def __len__(self) -> int:
        return len(self._heap)

    def offer(self, bar: Bar, now: float, *, backfill: bool = False) -> bool:
        """Take ``bar`` into the buffer; ``False`` (and counted) when dropped."""
        key = (bar.symbol, bar.time)
        last = self.last.get(bar.symbol)
        if key in self._waiting or (last is not None and bar.time <= last):
            if backfill:
                self.dropped["backfill_overlap"] += 1
            elif key in self._waiting or bar.time == last:
                self.dropped["duplicate"] += 1
            else:
                self.dropped["out_of_order"] += 1
            return False
        self._n += 1
        heapq.heappush(self._heap, (bar.time, self._n, bar, now))
        self._waiting.add(key)
        return True

    def newest(self, symbol: str) -> datetime | None:
        """The latest time delivered or waiting for ``symbol``."""
        times = [t for s, t in self._waiting if s == symbol]
        last = self.last.get(symbol)
        if last is not None:
            times.append(last)
        return max(times, default=None)

    def oldest(self, symbol: str) -> datetime | None:
        """The earliest time waiting for ``symbol``."""
        return min((t for s, t in self._waiting if s == symbol), default=None)

    def ready(self, now: float) -> list[Bar]:
        """Bars to deliver now (in order)."""
        out = []
        heap = self._heap
        while heap and (len(heap) > self.depth
                        or min(item[3] for item in heap) + self.hold <= now):
            out.append(self._pop())
        return out

    def drain(self) -> list[Bar]:
        """Every waiting bar, in order (end of stream)."""
        return [self._pop() for _ in range(len(self._heap))]

    def _pop(self) -> Bar:
        t, _, bar, _ = heapq.heappop(self._heap)
        self._waiting.discard((bar.symbol, t))
        self.last[bar.symbol] = t
        return bar
