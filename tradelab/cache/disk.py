"""L2: a persistent cache on diskcache (SQLite + files), shared across processes."""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import diskcache

# Raised when an entry written by an older tradelab cannot be unpickled any more.
_STALE_ERRORS = (pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError)


class DiskCache:
    """Entries with expiry, several tags each, and hit/miss counts that persist.

    Parameters
    ----------
    directory
        Folder for the cache (created if missing). Entries live in
        ``<directory>/entries``, the tag index in ``<directory>/tags``.
    ttl
        Default time to live in seconds (diskcache ``expire``).
    size_limit
        Bytes; beyond it diskcache evicts least-recently-used entries.

    Notes
    -----
    diskcache has one tag per entry; bars need two (``source=`` and ``symbol=``),
    so a tag → keys index is kept. It lives in its own diskcache without a size
    limit, so eviction can never lose the index of a live entry, and it is
    committed before the entry is (nested ``transact()``): a crash in between
    leaves an index naming a missing key, which is harmless. Every writer takes
    the locks in the same order (entries, then tags), so processes cannot
    deadlock. Hit/miss counts are diskcache's own statistics, stored in its
    database and therefore shared by all processes using the directory.
    """

    name = "disk"

    def __init__(self, directory: Path | str, ttl: float = 7 * 24 * 3600.0,
                 size_limit: int = 2**30) -> None:
        self.directory = Path(directory)
        self.ttl = ttl
        self._entries = diskcache.Cache(str(self.directory / "entries"), size_limit=size_limit,
                                        eviction_policy="least-recently-used")
        self._entries.stats(enable=True)
        self._index = diskcache.Cache(str(self.directory / "tags"), size_limit=2**62)

    def __repr__(self) -> str:
        return f"DiskCache({str(self.directory)!r})"

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        """Close the SQLite connections (they reopen on next use)."""
        self._entries.close()
        self._index.close()

    def get_with_tags(self, key: str) -> tuple[Any, frozenset[str]] | None:
        """``(value, tags)`` for a live entry, else ``None``; counts a hit or miss."""
        try:
            stored = self._entries.get(key)
        except _STALE_ERRORS:
            self._entries.delete(key)
            return None
        if stored is None:
            return None
        tags, value = stored
        return value, frozenset(tags)

    def get(self, key: str) -> Any | None:
        """The value for ``key``, or ``None`` when absent or expired."""
        found = self.get_with_tags(key)
        return None if found is None else found[0]

    def set(self, key: str, value: Any, *, ttl: float | None = None,
            tags: Iterable[str] = ()) -> None:
        """Store ``value`` for ``ttl`` seconds (default: the cache's ttl) under ``tags``."""
        tags = tuple(sorted(set(tags)))
        with self._entries.transact(), self._index.transact():
            for tag in tags:
                known = self._index.get(tag, default=frozenset())
                # Drop keys that expired or were evicted, so the index stays small.
                live = {k for k in known if k in self._entries}
                self._index.set(tag, frozenset(live | {key}))
            self._entries.set(key, (tags, value), expire=self.ttl if ttl is None else ttl)

    def invalidate(self, tag: str) -> int:
        """Remove every entry carrying ``tag``; returns how many were removed.

        A key re-set with different tags may still be listed under an old tag and
        then also be removed: over-invalidation costs a reload, never stale data.
        """
        with self._entries.transact(), self._index.transact():
            keys = self._index.pop(tag, default=frozenset())
            return sum(bool(self._entries.delete(k)) for k in keys)

    def clear(self) -> int:
        """Remove everything; returns how many live entries were removed."""
        with self._entries.transact(), self._index.transact():
            self._entries.expire()
            n = self._entries.clear()
            self._index.clear()
            return n

    def stats(self) -> dict[str, Any]:
        """Hits and misses (persistent, all processes), size, bytes and hit ratio."""
        self._entries.expire()
        hits, misses = self._entries.stats()
        lookups = hits + misses
        return {"name": self.name, "hits": hits, "misses": misses,
                "size": len(self._entries), "bytes": self._entries.volume(),
                "directory": str(self.directory),
                "hit_ratio": hits / lookups if lookups else 0.0}
