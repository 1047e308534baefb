"""MemoryCache: TTL on an injected clock, LRU bound, tags."""

from __future__ import annotations

from tradelab.cache.memory import MemoryCache
from tradelab.interfaces import Cache
from tradelab.testing import ManualClock, make_bars


def test_is_a_cache() -> None:
    assert isinstance(MemoryCache(), Cache)


def test_entries_expire_after_ttl() -> None:
    clock = ManualClock()
    cache = MemoryCache(ttl=10.0, clock=clock)
    bars = make_bars(20)
    cache.set("k", bars)
    clock.advance(9.9)
    assert cache.get("k") is bars
    clock.advance(0.2)
    assert cache.get("k") is None
    assert cache.stats()["expirations"] == 1 and len(cache) == 0


def test_per_entry_ttl_overrides_default() -> None:
    clock = ManualClock()
    cache = MemoryCache(ttl=100.0, clock=clock)
    cache.set("short", 1, ttl=1.0)
    cache.set("long", 2)
    clock.advance(5)
    assert cache.get("short") is None and cache.get("long") == 2


def test_lru_bound_evicts_least_recently_used() -> None:
    cache = MemoryCache(max_items=3, clock=ManualClock())
    for key in "abc":
        cache.set(key, key)
    assert cache.get("a") == "a"  # a is now the most recent
    cache.set("d", "d")
    assert cache.get("b") is None
    assert [cache.get(k) for k in "acd"] == ["a", "c", "d"]
    assert len(cache) == 3 and cache.stats()["evictions"] == 1


def test_invalidate_by_source_and_by_symbol() -> None:
    cache = MemoryCache(clock=ManualClock())
    cache.set("1", 1, tags=["source=file", "symbol=SPX"])
    cache.set("2", 2, tags=["source=file", "symbol=IXIC"])
    cache.set("3", 3, tags=["source=sample", "symbol=SPX"])
    assert cache.invalidate("symbol=SPX") == 2
    assert cache.get("1") is None and cache.get("3") is None and cache.get("2") == 2
    assert cache.invalidate("source=file") == 1
    assert cache.invalidate("source=file") == 0
    assert len(cache) == 0


def test_reset_key_drops_old_tags() -> None:
    cache = MemoryCache(clock=ManualClock())
    cache.set("k", 1, tags=["a"])
    cache.set("k", 2, tags=["b"])
    assert cache.invalidate("a") == 0 and cache.get("k") == 2


def test_stats_and_clear() -> None:
    cache = MemoryCache(clock=ManualClock())
    cache.set("k", 1)
    cache.get("k")
    cache.get("k")
    cache.get("x")
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["size"]) == (2, 1, 1)
    assert stats["hit_ratio"] == 2 / 3
    assert cache.clear() == 1 and cache.get("k") is None
