"""Injected clocks. Engine code asks a clock for the time; nothing else calls ``datetime.now()``."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SimClock:
    """Simulated time driven by the bars: :meth:`advance` sets it to each bar's time.

    Parameters
    ----------
    start
        Initial time (tz-aware); defaults to the Unix epoch until the first bar.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(1970, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, to: datetime) -> None:
        """Move to ``to``; simulated time never goes backwards."""
        if to.tzinfo is None:
            raise ValueError(f"SimClock.advance({to!r}): naive datetime; bars are tz-aware UTC")
        if to < self._now:
            raise ValueError(f"SimClock.advance({to}): before current time {self._now}")
        self._now = to

    @staticmethod
    def monotonic() -> float:
        """Wall-clock seconds for measuring latency and polling intervals."""
        return time.perf_counter()


class LiveClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, to: datetime) -> None:
        """Live time moves by itself; bars do not set it."""

    @staticmethod
    def monotonic() -> float:
        return time.perf_counter()
