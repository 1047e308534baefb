"""L1: an in-process LRU cache with TTL and tags."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _Entry:
    value: Any
    expires: float
    tags: frozenset[str]


class MemoryCache:
    """Least-recently-used cache bounded by item count, with per-entry expiry.

    Parameters
    ----------
    max_items
        Entries kept; setting one more evicts the least recently used.
    ttl
        Default time to live in seconds.
    clock
        Monotonic seconds; injectable so tests control expiry.

    Notes
    -----
    Values are stored by reference (no copy); callers that hand out mutable
    values must copy them (the market-data service does).
    """

    name = "memory"

    def __init__(self, max_items: int = 64, ttl: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_items < 1:
            raise ValueError(f"max_items={max_items}; must be >= 1")
        self.max_items = max_items
        self.ttl = ttl
        self._clock = clock
        self._items: OrderedDict[str, _Entry] = OrderedDict()
        self._tags: dict[str, set[str]] = {}
        # The dashboard and the engine may share one App from different threads.
        self._lock = threading.RLock()
        self._hits = self._misses = self._evictions = self._expirations = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            entry = self._items.get(key)  # type: ignore[call-overload]
            return entry is not None and entry.expires > self._clock()

    def get_with_tags(self, key: str) -> tuple[Any, frozenset[str]] | None:
        """``(value, tags)`` for a live entry, else ``None``; counts a hit or miss."""
        with self._lock:
            entry = self._items.get(key)
            if entry is not None and entry.expires <= self._clock():
                self._remove(key)
                self._expirations += 1
                entry = None
            if entry is None:
                self._misses += 1
                return None
            self._items.move_to_end(key)
            self._hits += 1
            return entry.value, entry.tags

    def get(self, key: str) -> Any | None:
        """The value for ``key``, or ``None`` when absent or expired."""
        found = self.get_with_tags(key)
        return None if found is None else found[0]

    def set(self, key: str, value: Any, *, ttl: float | None = None,
            tags: Iterable[str] = ()) -> None:
        """Store ``value`` for ``ttl`` seconds (default: the cache's ttl) under ``tags``."""
        expires = self._clock() + (self.ttl if ttl is None else ttl)
        entry = _Entry(value, expires, frozenset(tags))
        with self._lock:
            if key in self._items:
                self._remove(key)
            self._items[key] = entry
            for tag in entry.tags:
                self._tags.setdefault(tag, set()).add(key)
            while len(self._items) > self.max_items:
                oldest = next(iter(self._items))
                self._remove(oldest)
                self._evictions += 1

    def _remove(self, key: str) -> None:
        entry = self._items.pop(key)
        for tag in entry.tags:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]

    def invalidate(self, tag: str) -> int:
        """Remove every entry carrying ``tag``; returns how many were removed."""
        with self._lock:
            keys = list(self._tags.get(tag, ()))
            for key in keys:
                self._remove(key)
            return len(keys)

    def clear(self) -> int:
        """Remove everything; returns how many entries were removed."""
        with self._lock:
            n = len(self._items)
            self._items.clear()
            self._tags.clear()
            return n

    def stats(self) -> dict[str, Any]:
        """Hits, misses, size, evictions, expirations and hit ratio since creation."""
        with self._lock:
            lookups = self._hits + self._misses
            return {"name": self.name, "hits": self._hits, "misses": self._misses,
                    "size": len(self._items), "max_items": self.max_items,
                    "evictions": self._evictions, "expirations": self._expirations,
                    "hit_ratio": self._hits / lookups if lookups else 0.0}
