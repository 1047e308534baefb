"""In-process token-bucket rate limiting (per user/key and per client address).

Each key owns a bucket of ``burst`` tokens refilled at ``rate`` per second;
a request takes one token or is refused with the seconds until one is back
(``Retry-After``). State lives in this process only: behind a load balancer
with several API processes each one would allow the full rate, so a shared
limiter (Redis ``INCR``/``EXPIRE`` or a Lua token bucket) is needed there.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from tradelab.errors import TradelabError

_MAX_KEYS = 50_000  # beyond this, full (idle) buckets are forgotten


class RateLimited(TradelabError):
    """Too many requests: retry after ``retry_after`` whole seconds."""

    def __init__(self, scope: str, retry_after: float) -> None:
        self.scope = scope
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"rate limit exceeded ({scope}); retry in {self.retry_after} s")


class RateLimiter:
    """Token buckets keyed by string (``"ip:1.2.3.4"``, ``"user:7"``, ``"key:ab12..."``).

    Parameters
    ----------
    timer
        Monotonic seconds (injectable for tests).
    """

    def __init__(self, timer: Callable[[], float] = time.monotonic) -> None:
        self._timer = timer
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, rate: float, burst: int) -> float:
        """Take a token from ``key``'s bucket: 0.0 if allowed, else seconds to wait."""
        now = self._timer()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > _MAX_KEYS:
                    self._forget(now, rate, burst)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate

    def check(self, key: str, rate: float, burst: int, scope: str) -> None:
        """Like :meth:`hit` but raises :class:`RateLimited` when refused."""
        wait = self.hit(key, rate, burst)
        if wait > 0:
            raise RateLimited(scope, wait)

    def _forget(self, now: float, rate: float, burst: int) -> None:
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * rate >= burst]
        for k in full:
            del self._buckets[k]


__all__ = ["RateLimited", "RateLimiter"]
