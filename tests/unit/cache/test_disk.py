"""DiskCache: persistence across processes, TTL, multi-tag invalidation, stats."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd

from tradelab.cache.disk import DiskCache
from tradelab.interfaces import Cache
from tradelab.testing import make_bars


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_is_a_cache(tmp_path: Path) -> None:
    assert isinstance(DiskCache(tmp_path), Cache)


def test_a_subprocess_reads_what_the_parent_wrote(tmp_path: Path) -> None:
    bars = make_bars(50)
    cache = DiskCache(tmp_path)
    cache.set("bars", bars, tags=["source=sample", "symbol=SPX"])
    out = _run(f"""
        from tradelab.cache.disk import DiskCache
        c = DiskCache({str(tmp_path)!r})
        v = c.get("bars")
        print(len(v), repr(float(v["close"].iloc[-1])), c.get("nope"))
    """)
    assert out == f"50 {float(bars['close'].iloc[-1])!r} None"
    # the child's hit and miss are in the shared statistics
    stats = DiskCache(tmp_path).stats()
    assert (stats["hits"], stats["misses"], stats["size"]) == (1, 1, 1)


def test_parent_invalidates_what_a_subprocess_wrote(tmp_path: Path) -> None:
    _run(f"""
        from tradelab.cache.disk import DiskCache
        from tradelab.testing import make_bars
        c = DiskCache({str(tmp_path)!r})
        c.set("a", make_bars(5), tags=["source=file", "symbol=ORCL"])
        c.set("b", make_bars(5), tags=["source=file", "symbol=NVDA"])
        c.set("c", make_bars(5), tags=["source=sample", "symbol=SPX"])
    """)
    cache = DiskCache(tmp_path)
    assert cache.invalidate("symbol=ORCL") == 1
    assert cache.get("a") is None and isinstance(cache.get("b"), pd.DataFrame)
    assert cache.invalidate("source=file") == 1
    assert cache.get("b") is None and cache.get("c") is not None
    assert cache.invalidate("source=file") == 0


def test_ttl_expires_entries(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, ttl=0.2)
    cache.set("short", 1)
    cache.set("long", 2, ttl=60)
    assert cache.get("short") == 1
    time.sleep(0.3)
    assert cache.get("short") is None and cache.get("long") == 2
    assert cache.stats()["size"] == 1


def test_get_with_tags_and_clear(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    cache.set("k", 1, tags=["x", "y"])
    assert cache.get_with_tags("k") == (1, frozenset({"x", "y"}))
    assert cache.clear() == 1
    assert cache.get("k") is None and cache.invalidate("x") == 0


def test_an_unreadable_old_entry_is_a_miss(tmp_path: Path) -> None:
    # an entry pickled by a class that no longer exists (e.g. an older tradelab)
    _run(f"""
        import diskcache
        class Gone: pass
        import __main__; __main__.Gone = Gone
        c = diskcache.Cache({str(tmp_path / 'entries')!r})
        c.set("k", ((), Gone()))
    """)
    cache = DiskCache(tmp_path)
    assert cache.get("k") is None
    assert len(cache) == 0
