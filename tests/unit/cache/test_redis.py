"""The Redis tier against a real redis-server; and the cache surviving its death."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.redis_harness import start_redis
from tradelab.cache.disk import DiskCache
from tradelab.cache.memory import MemoryCache
from tradelab.cache.redis_cache import RedisCache
from tradelab.cache.tiered import TieredCache
from tradelab.testing import make_bars


def test_round_trip_ttl_and_tags(redis_url: str) -> None:
    cache = RedisCache(redis_url, ttl=60)
    bars = make_bars(50)
    cache.set("a", bars, tags={"source=sample", "symbol=SPX"})
    cache.set("b", bars.iloc[:5], tags={"source=sample", "symbol=IXIC"})
    cache.set("c", 42, tags={"source=file"}, ttl=1)
    value, tags = cache.get_with_tags("a")
    pd.testing.assert_frame_equal(value, bars)
    assert tags == {"source=sample", "symbol=SPX"}
    import redis

    assert 0 < redis.Redis.from_url(redis_url).ttl("tradelab:e:c") <= 1
    assert cache.invalidate("symbol=SPX") == 1
    assert cache.get("a") is None and cache.get("b") is not None
    assert cache.invalidate("source=sample") == 1
    assert cache.get("b") is None
    assert cache.stats()["hits"] == 2 and cache.stats()["errors"] == 0


def test_entries_are_shared_across_processes(redis_url: str) -> None:
    RedisCache(redis_url).set("shared", {"x": 1.5}, tags={"source=sample"})
    code = ("import sys; from tradelab.cache.redis_cache import RedisCache; "
            "print(RedisCache(sys.argv[1]).get('shared'))")
    out = subprocess.run([sys.executable, "-c", code, redis_url], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "{'x': 1.5}"


def test_prefixes_isolate_namespaces(redis_url: str) -> None:
    a, b = RedisCache(redis_url, prefix="one:"), RedisCache(redis_url, prefix="two:")
    a.set("k", 1)
    b.set("k", 2)
    assert b.clear() == 1
    assert a.get("k") == 1 and b.get("k") is None


def test_a_redis_hit_is_promoted_to_the_faster_tiers(redis_url: str, tmp_path: Path) -> None:
    RedisCache(redis_url).set("key", "value", tags={"symbol=SPX"})
    memory, disk = MemoryCache(), DiskCache(tmp_path / "disk")
    tiered = TieredCache([memory, disk, RedisCache(redis_url)])
    assert tiered.get("key") == "value"
    assert memory.get("key") == "value" and disk.get("key") == "value"
    assert tiered.invalidate("symbol=SPX") == 1
    assert tiered.get("key") is None


def test_cache_keeps_working_when_redis_dies(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    clock = [0.0]
    l3 = RedisCache(server.url, timeout=0.2, retry_after=5.0, clock=lambda: clock[0])
    tiered = TieredCache([MemoryCache(), DiskCache(tmp_path / "disk"), l3])
    tiered.set("before", 1, tags={"source=x"})
    server.stop()
    # writes and reads go on through memory and disk; the dead tier is counted
    tiered.set("during", 2, tags={"source=x"})
    assert tiered.get("before") == 1 and tiered.get("during") == 2
    assert tiered.get("absent") is None
    stats = l3.stats()
    assert stats["errors"] >= 1 and stats["available"] is False
    # the circuit breaker skips Redis instead of paying a timeout per call
    skipped = l3.skipped
    tiered.get("absent-too")
    assert l3.skipped == skipped + 1
    # after the window, a restarted server is used again
    restarted = start_redis(tmp_path / "redis2", port=server.port)
    try:
        clock[0] += 6.0
        tiered.set("after", 3)
        assert l3.get("after") == 3 and l3.available
    finally:
        restarted.stop()


@pytest.mark.parametrize("url", ["redis://:hunter2-pw@127.0.0.1:1/0"])
def test_the_redis_password_is_masked_in_the_effective_config(url: str, tmp_path: Path) -> None:
    from tradelab.config import load_config

    s = load_config(paths=[], environ={"TRADELAB__CACHE__REDIS_URL": url}, home=tmp_path)
    assert "hunter2-pw" not in str(s.redacted())
    assert "hunter2-pw" not in repr(RedisCache(url))
