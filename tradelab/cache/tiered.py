"""Cache levels stacked fastest first: L1 memory → L2 disk (→ L3 Redis later)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from tradelab.interfaces import Cache


@runtime_checkable
class CacheLevel(Cache, Protocol):
    """A :class:`~tradelab.interfaces.Cache` that can also return an entry's tags.

    A Redis level fits by storing ``(tags, value)`` per key and a set per tag.
    """

    name: str

    def get_with_tags(self, key: str) -> tuple[Any, frozenset[str]] | None: ...


class TieredCache:
    """Reads from the fastest level that has the key; writes to all levels.

    Parameters
    ----------
    levels
        Fastest first. An empty list is a disabled cache (every get misses).

    Notes
    -----
    A hit in a lower level is promoted into every faster level with its tags, so
    tag invalidation still reaches it there; the faster level's own TTL applies.
    """

    name = "tiered"

    def __init__(self, levels: Sequence[CacheLevel]) -> None:
        self.levels: list[CacheLevel] = list(levels)
        self._hits = self._misses = 0
        self._served: dict[str, int] = {lvl.name: 0 for lvl in self.levels}

    def __repr__(self) -> str:
        return f"TieredCache([{', '.join(lvl.name for lvl in self.levels)}])"

    def get_with_tags(self, key: str) -> tuple[Any, frozenset[str]] | None:
        for i, level in enumerate(self.levels):
            found = level.get_with_tags(key)
            if found is None:
                continue
            value, tags = found
            for upper in self.levels[:i]:
                upper.set(key, value, tags=tags)
            self._hits += 1
            self._served[level.name] = self._served.get(level.name, 0) + 1
            return found
        self._misses += 1
        return None

    def get(self, key: str) -> Any | None:
        """The value from the fastest level holding ``key`` (promoting it), or ``None``."""
        found = self.get_with_tags(key)
        return None if found is None else found[0]

    def set(self, key: str, value: Any, *, ttl: float | None = None,
            tags: Iterable[str] = ()) -> None:
        """Write to every level (``ttl`` ``None``: each level's own default)."""
        tags = frozenset(tags)
        # Slowest first: if it fails, no faster level holds what disk does not.
        for level in reversed(self.levels):
            level.set(key, value, ttl=ttl, tags=tags)

    def invalidate_levels(self, tag: str) -> dict[str, int]:
        """Level name → entries removed for ``tag``."""
        return {level.name: level.invalidate(tag) for level in self.levels}

    def invalidate(self, tag: str) -> int:
        """Remove ``tag``'s entries everywhere; returns the number of distinct entries.

        Every entry of a faster level also sits in the slower ones (``set`` writes
        all, promotion copies upward), so the largest per-level count is it.
        """
        return max(self.invalidate_levels(tag).values(), default=0)

    def clear_levels(self) -> dict[str, int]:
        """Level name → entries removed."""
        return {level.name: level.clear() for level in self.levels}

    def clear(self) -> int:
        """Empty every level; returns the number of distinct entries removed."""
        return max(self.clear_levels().values(), default=0)

    def stats(self) -> dict[str, Any]:
        """Per-level stats plus overall hits, misses and hit ratio of this process."""
        lookups = self._hits + self._misses
        return {"levels": [level.stats() for level in self.levels],
                "hits": self._hits, "misses": self._misses,
                "served_by": dict(self._served),
                "hit_ratio": self._hits / lookups if lookups else 0.0}
