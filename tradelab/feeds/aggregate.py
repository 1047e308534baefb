"""Ticks → fixed-interval OHLCV bars, and ticks derived from bars (for replays and tests).

Late and out-of-order ticks
---------------------------
Buckets are epoch-aligned: a tick at ``t`` belongs to ``[b, b + interval)`` with
``b = floor(t / interval) * interval``. The *watermark* is the latest tick time
seen. A bucket stays open until the watermark reaches ``b + interval + grace``;
then it is closed and its bar emitted (buckets close in time order).

* A tick for a bucket that is still open is accepted, even if it is older than
  ticks already seen: ``open`` is the price of the earliest-stamped tick,
  ``close`` of the latest-stamped one (equal stamps: first arrival is the open,
  last arrival the close), ``high``/``low`` are the extremes, ``volume`` the sum.
  Counted as ``late_accepted`` when it is older than the watermark.
* A tick for a bucket already closed is dropped and counted as ``late_dropped``:
  a bar, once emitted, is never revised.
* A tick with a non-finite or non-positive price, or a negative or non-finite
  size, is dropped and counted as ``invalid``.
* An interval without ticks produces no bar.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from tradelab.data.bars import interval_timedelta
from tradelab.interfaces import Bar


def _ns(t: Any) -> int:
    if isinstance(t, int):
        return t
    return int(pd.Timestamp(t).value)


def _interval_ns(interval: Any) -> int:
    # "1d"/"1h" as elsewhere in tradelab (pandas deprecates the lower-case day unit).
    td = interval_timedelta(interval) if isinstance(interval, str) else None
    ns = int((td if td is not None else pd.Timedelta(interval)).value)
    if ns <= 0:
        raise ValueError(f"interval {interval!r}: must be positive")
    return ns


class TickAggregator:
    """Aggregate one symbol's ticks into time bars (see the module text for the policy).

    Parameters
    ----------
    symbol
        The symbol of the emitted bars.
    interval
        Bar length: anything ``pandas.Timedelta`` accepts (``"1min"``, ``"1d"``...).
    grace
        How long after its end a bucket still accepts late ticks (default 0).

    Attributes
    ----------
    counts
        ``accepted``, ``late_accepted``, ``late_dropped``, ``invalid``, ``bars``.
    """

    def __init__(self, symbol: str, interval: Any, grace: Any = 0) -> None:
        self.symbol = symbol
        self.interval = _interval_ns(interval)
        self.grace = int(pd.Timedelta(grace).value)
        if self.grace < 0:
            raise ValueError("grace must be >= 0")
        self.counts: Counter[str] = Counter()
        # bucket start → [open_t, open, high, low, close_t, close, volume]
        self._open: dict[int, list[Any]] = {}
        self._closed_before = -(2**63)  # buckets starting before this are closed
        self._watermark = -(2**63)

    def add(self, time: Any, price: float, size: float) -> list[Bar]:
        """Add one tick; returns the bars it closed (oldest first, often none).

        ``time`` is an aware datetime/Timestamp or int nanoseconds since the epoch (UTC).
        """
        if not (math.isfinite(price) and price > 0 and math.isfinite(size) and size >= 0):
            self.counts["invalid"] += 1
            return []
        t = _ns(time)
        b = t - t % self.interval
        if b < self._closed_before:
            self.counts["late_dropped"] += 1
            return []
        if t < self._watermark:
            self.counts["late_accepted"] += 1
        self.counts["accepted"] += 1
        acc = self._open.get(b)
        if acc is None:
            self._open[b] = [t, price, price, price, t, price, size]
        else:
            if t < acc[0]:
                acc[0], acc[1] = t, price
            if price > acc[2]:
                acc[2] = price
            if price < acc[3]:
                acc[3] = price
            if t >= acc[4]:
                acc[4], acc[5] = t, price
            acc[6] += size
        if t > self._watermark:
            self._watermark = t
            # Close every bucket whose end + grace the watermark has reached.
            return self._close(t - self.grace - self.interval + 1)
        return []

    def _close(self, before: int) -> list[Bar]:
        # Bucket b is closed when b + interval + grace <= watermark, i.e. b < before.
        limit = before - before % self.interval + (0 if before % self.interval == 0
                                                   else self.interval)
        # limit: the first bucket start >= before, so every bucket below it is closed.
        if limit <= self._closed_before:
            return []
        self._closed_before = limit
        done = sorted(b for b in self._open if b < limit)
        return [self._emit(b) for b in done]

    def _emit(self, b: int) -> Bar:
        _, o, h, low, _, c, v = self._open.pop(b)
        self.counts["bars"] += 1
        t = datetime.fromtimestamp(b // 10**9, UTC).replace(microsecond=(b % 10**9) // 1000)
        return Bar(self.symbol, t, o, h, low, c, v)

    def flush(self) -> list[Bar]:
        """Close every open bucket (end of stream); later ticks for them count as late."""
        if not self._open:
            return []
        last = max(self._open)
        return self._close(last + 1)


def aggregate(ticks: Any, symbol: str, interval: Any, grace: Any = 0) -> pd.DataFrame:
    """Aggregate an iterable of ``(time, price, size)`` into a contract bar frame."""
    agg = TickAggregator(symbol, interval, grace)
    bars: list[Bar] = []
    for t, p, s in ticks:
        bars.extend(agg.add(t, p, s))
    bars.extend(agg.flush())
    index = pd.DatetimeIndex([b.time for b in bars], name="time").as_unit("ns")
    if index.tz is None:
        index = index.tz_localize("UTC")
    return pd.DataFrame({"open": [b.open for b in bars], "high": [b.high for b in bars],
                         "low": [b.low for b in bars], "close": [b.close for b in bars],
                         "volume": [b.volume for b in bars]}, index=index, dtype="float64")


def bar_ticks(time: Any, o: float, h: float, low: float, c: float, v: float,
              interval: Any, n: int = 4) -> list[tuple[int, float, float]]:
    """``n`` ticks (``n >= 4``) inside ``[time, time + interval)`` that aggregate to the bar.

    The path is open → low → high → close for an up bar and open → high → low →
    close otherwise (extra ticks repeat the close); the volume is split evenly.
    Times are int nanoseconds, strictly increasing.
    """
    if n < 4:
        raise ValueError("n must be >= 4 (open, high, low, close)")
    start, step = _ns(time), _interval_ns(interval) // n
    if step <= 0:
        raise ValueError(f"interval {interval!r} too short for {n} ticks")
    path = [o, low, h, c] if c >= o else [o, h, low, c]
    path += [c] * (n - 4)
    size = v / n
    return [(start + i * step, p, size) for i, p in enumerate(path)]
