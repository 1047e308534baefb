"""TieredCache: read-through promotion with tags, write-all, invalidation, stats."""

from __future__ import annotations

from pathlib import Path

from tradelab.cache.disk import DiskCache
from tradelab.cache.memory import MemoryCache
from tradelab.cache.tiered import CacheLevel, TieredCache
from tradelab.interfaces import Cache
from tradelab.testing import ManualClock, make_bars


def _tiers(tmp_path: Path, clock: ManualClock) -> tuple[TieredCache, MemoryCache, DiskCache]:
    l1 = MemoryCache(max_items=8, ttl=10.0, clock=clock)
    l2 = DiskCache(tmp_path, ttl=3600)
    return TieredCache([l1, l2]), l1, l2


def test_levels_and_tiered_satisfy_the_protocols(tmp_path: Path) -> None:
    cache, l1, l2 = _tiers(tmp_path, ManualClock())
    assert isinstance(cache, Cache)
    assert isinstance(l1, CacheLevel) and isinstance(l2, CacheLevel)


def test_set_writes_every_level(tmp_path: Path) -> None:
    cache, l1, l2 = _tiers(tmp_path, ManualClock())
    cache.set("k", 1, tags=["source=sample"])
    assert l1.get("k") == 1 and l2.get("k") == 1


def test_l2_hit_is_promoted_to_l1_with_its_tags(tmp_path: Path) -> None:
    clock = ManualClock()
    cache, l1, _ = _tiers(tmp_path, clock)
    bars = make_bars(30)
    cache.set("k", bars, tags=["source=sample", "symbol=SPX"])
    clock.advance(11)  # L1 entry expired, L2 still has it
    assert "k" not in l1
    got = cache.get("k")
    assert got is not None and got.equals(bars)
    assert "k" in l1  # promoted
    stats = cache.stats()
    assert stats["served_by"] == {"memory": 0, "disk": 1}
    # the promoted copy carries the tags, so invalidation reaches it
    assert cache.invalidate_levels("symbol=SPX") == {"memory": 1, "disk": 1}
    assert cache.get("k") is None


def test_stats_per_level_and_overall_ratio(tmp_path: Path) -> None:
    cache, _, _ = _tiers(tmp_path, ManualClock())
    cache.set("a", 1)
    cache.get("a")       # L1 hit
    cache.get("b")       # miss everywhere
    stats = cache.stats()
    memory, disk = stats["levels"]
    assert (memory["hits"], memory["misses"], memory["size"]) == (1, 1, 1)
    assert (disk["hits"], disk["misses"], disk["size"]) == (0, 1, 1)
    assert (stats["hits"], stats["misses"], stats["hit_ratio"]) == (1, 1, 0.5)


def test_invalidate_and_clear_count_distinct_entries(tmp_path: Path) -> None:
    cache, _, _ = _tiers(tmp_path, ManualClock())
    cache.set("a", 1, tags=["source=file"])
    cache.set("b", 2, tags=["source=file"])
    cache.set("c", 3, tags=["source=sample"])
    assert cache.invalidate("source=file") == 2
    assert cache.clear() == 1


def test_no_levels_is_a_disabled_cache() -> None:
    cache = TieredCache([])
    cache.set("k", 1)
    assert cache.get("k") is None
    assert cache.invalidate("x") == 0 and cache.clear() == 0
    assert cache.stats()["levels"] == []
