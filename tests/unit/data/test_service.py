"""MarketData: every load through the cache, exact keys, validation per policy, stats."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradelab.cache.disk import DiskCache
from tradelab.cache.memory import MemoryCache
from tradelab.cache.tiered import TieredCache
from tradelab.config import DataSettings
from tradelab.data.files import FileSource
from tradelab.data.service import MarketData
from tradelab.errors import DataSourceError, DataValidationError
from tradelab.testing import CountingSource, ManualClock


@pytest.fixture()
def fake(orcl: pd.DataFrame) -> CountingSource:
    bad = orcl.copy()
    bad.iloc[5, bad.columns.get_loc("close")] = np.nan
    bad.iloc[7, bad.columns.get_loc("volume")] = -1.0
    return CountingSource({"ORCL": orcl, "BAD": bad}, name="fake")


def _service(src: CountingSource, tmp_path: Path, **settings: object) -> MarketData:
    cache = TieredCache([MemoryCache(clock=ManualClock()), DiskCache(tmp_path / "cache")])
    return MarketData({"fake": src}, cache, DataSettings(default_source="fake", **settings))


def test_second_load_is_a_cache_hit_without_calling_the_source(
        fake: CountingSource, tmp_path: Path, orcl: pd.DataFrame) -> None:
    md = _service(fake, tmp_path)
    first = md.load("ORCL")
    second = md.load("ORCL")
    pd.testing.assert_frame_equal(first, orcl)
    pd.testing.assert_frame_equal(second, orcl)
    assert len(fake.calls) == 1
    assert md.stats()["hits"] == 1 and md.stats()["misses"] == 1 and md.stats()["loads"] == 2


def test_a_new_process_worth_of_service_hits_the_disk_tier(
        fake: CountingSource, tmp_path: Path) -> None:
    _service(fake, tmp_path).load("ORCL")
    again = _service(fake, tmp_path)  # fresh memory tier, same directory
    again.load("ORCL")
    assert len(fake.calls) == 1
    assert again.cache.stats()["served_by"]["disk"] == 1


def test_callers_may_mutate_what_they_get(fake: CountingSource, tmp_path: Path,
                                          orcl: pd.DataFrame) -> None:
    md = _service(fake, tmp_path)
    got = md.load("ORCL")
    got["close"] = 0.0
    mine = md.load("ORCL")
    mine.iloc[0, 0] = -1.0
    pd.testing.assert_frame_equal(md.load("ORCL"), orcl)


@pytest.mark.parametrize("change", [
    {"adjust": "adjusted"}, {"policy": "fill"}, {"start": "2014-01-06"}, {"end": "2014-02-01"},
    {"interval": "1h"},
])
def test_different_arguments_are_different_keys(change: dict, fake: CountingSource,
                                                tmp_path: Path) -> None:
    md = _service(fake, tmp_path)
    md.load("ORCL")
    md.load("ORCL", **change)
    md.load("ORCL", **change)
    assert len(fake.calls) == 2
    assert md.key("ORCL") != md.key("ORCL", **change)


def test_equal_dates_written_differently_share_a_key(fake: CountingSource,
                                                     tmp_path: Path) -> None:
    md = _service(fake, tmp_path)
    assert md.key("ORCL", start="2014-01-06") == md.key("ORCL", start=pd.Timestamp("2014-01-06",
                                                                                   tz="UTC"))


def test_changed_fingerprint_reloads(fake: CountingSource, tmp_path: Path) -> None:
    md = _service(fake, tmp_path)
    md.load("ORCL")
    fake.version += 1
    md.load("ORCL")
    assert len(fake.calls) == 2


def test_rewritten_file_is_reloaded(tmp_path: Path, fixtures: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    path = root / "ORCL.csv"
    shutil.copy(fixtures / "orcl-2014-yahoo.csv", path)
    cache = TieredCache([MemoryCache(), DiskCache(tmp_path / "cache")])
    md = MarketData({"file": FileSource(root)}, cache, DataSettings(default_source="file"))
    assert len(md.load("ORCL")) == 42
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-2]) + "\n")  # two bars fewer
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert len(md.load("ORCL")) == 40


def test_default_adjust_is_the_sources_own(fake: CountingSource, tmp_path: Path) -> None:
    fake.adjust = "adjusted"
    md = _service(fake, tmp_path)
    md.load("ORCL")
    assert fake.calls[0][4] == "adjusted"


def test_policy_comes_from_settings_per_source(fake: CountingSource, tmp_path: Path) -> None:
    md = _service(fake, tmp_path, policy="raise", policies={"fake": "drop"})
    bars = md.load("BAD")
    assert len(bars) == 40
    report = md.reports[md.key("BAD")]
    assert report.policy == "drop" and report.dropped == 2


def test_raise_policy_raises_and_caches_nothing(fake: CountingSource, tmp_path: Path) -> None:
    md = _service(fake, tmp_path)
    for _ in range(2):
        with pytest.raises(DataValidationError, match=r"fake:BAD break the contract"):
            md.load("BAD")
    assert len(fake.calls) == 2
    assert md.stats()["issues"] == {"nan": 2, "negative_volume": 2}


def test_stats_count_issues_by_kind(fake: CountingSource, tmp_path: Path) -> None:
    md = _service(fake, tmp_path)
    md.load("BAD", policy="fill")
    md.load("BAD", policy="fill")  # a hit: not validated, not counted again
    stats = md.stats()
    assert stats["issues"] == {"nan": 1, "negative_volume": 1}
    assert stats["rows_fixed"] == 1 and stats["rows_dropped"] == 1
    assert md.last_report is not None and md.last_report.fixed == 1


def test_entries_are_tagged_by_source_and_symbol(fake: CountingSource, tmp_path: Path) -> None:
    md = _service(fake, tmp_path)
    md.load("ORCL")
    md.load("BAD", policy="fill")
    assert md.invalidate(symbol="orcl") == 1
    md.load("BAD", policy="fill")
    assert len(fake.calls) == 2
    assert md.invalidate(source="fake") == 1
    md.load("BAD", policy="fill")
    assert len(fake.calls) == 3


def test_unknown_source_lists_the_available_ones(fake: CountingSource, tmp_path: Path) -> None:
    md = _service(fake, tmp_path)
    with pytest.raises(DataSourceError, match=r"unknown data source 'nope'; available: fake"):
        md.load("ORCL", source="nope")


def test_source_errors_pass_through_and_are_not_cached(fake: CountingSource,
                                                       tmp_path: Path) -> None:
    md = _service(fake, tmp_path)
    with pytest.raises(DataSourceError, match="unknown symbol 'MSFT'"):
        md.load("MSFT")
    assert md.stats()["misses"] == 1
