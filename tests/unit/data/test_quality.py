"""The data-quality gate: thresholds, breach fields, live feed checks and metrics."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradelab.bus import EventBus
from tradelab.clock import LiveClock, SimClock
from tradelab.config import QualitySettings, load_config
from tradelab.data.quality import (
    FRACTION_MIN_SEEN,
    QualityGate,
    QualityGatedFeed,
)
from tradelab.data.validate import validate_bars
from tradelab.errors import ConfigError, DataQualityError
from tradelab.events import RiskAlert
from tradelab.interfaces import Bar
from tradelab.monitor.metrics import Metrics

T0 = datetime(2024, 1, 2, tzinfo=UTC)


def bad_bars(orcl: pd.DataFrame, high_low: int = 4, nan: int = 2) -> pd.DataFrame:
    """Real bars with ``high_low`` inverted rows and ``nan`` rows with a missing close."""
    df = orcl.copy()
    df.iloc[1:1 + high_low, df.columns.get_loc("high")] = df["low"].iloc[1:1 + high_low] * 0.5
    df.iloc[20:20 + nan, df.columns.get_loc("close")] = np.nan
    return df


def report(df: pd.DataFrame, policy: str = "drop") -> Any:
    return validate_bars(df, policy, source="file", symbol="ORCL")[1]


# -- before a run ----------------------------------------------------------------------------
def test_max_rejected_breach_names_threshold_limit_observed_and_reasons(orcl: pd.DataFrame) -> None:
    rep = report(bad_bars(orcl))
    gate = QualityGate(QualitySettings(max_rejected=3))
    with pytest.raises(DataQualityError) as info:
        gate.check_start(rep)
    (breach,) = info.value.breaches
    assert (breach.threshold, breach.limit, breach.observed) == ("max_rejected", 3, rep.dropped)
    assert rep.dropped == 6
    assert dict(breach.breakdown)["high_low"] == 4 and dict(breach.breakdown)["nan"] == 2
    assert (breach.source, breach.symbol) == ("file", "ORCL")
    assert "rejected rows 6 > max_rejected 3" in str(info.value)


def test_unset_thresholds_are_not_checked(orcl: pd.DataFrame) -> None:
    gate = QualityGate(QualitySettings())
    gate.check_start(report(bad_bars(orcl)))          # no exception
    assert gate.breaches == []
    assert gate.rejected_total == 6                   # ... but the outcome is counted


@pytest.mark.parametrize(("settings", "threshold", "limit", "observed"), [
    (QualitySettings(max_rejected_fraction=0.1), "max_rejected_fraction", 0.1, 6 / 42),
    (QualitySettings(max_rejected_by_reason={"high_low": 3}), "max_rejected_by_reason.high_low", 3, 4),
    (QualitySettings(min_bars=40), "min_bars", 40, 36),
    (QualitySettings(max_gaps=0), "max_gaps", 0, 1),
])
def test_each_threshold_reports_its_limit_and_observation(
        orcl: pd.DataFrame, settings: QualitySettings, threshold: str, limit: float,
        observed: float) -> None:
    df = bad_bars(orcl)
    if threshold == "max_gaps":
        df = orcl.drop(orcl.index[10:30])             # 20 missing trading days: one gap
    rep = report(df)
    with pytest.raises(DataQualityError) as info:
        QualityGate(settings).check_start(rep)
    (breach,) = info.value.breaches
    assert (breach.threshold, breach.limit, breach.observed) == (threshold, limit, observed)


def test_thresholds_not_reached_do_not_breach(orcl: pd.DataFrame) -> None:
    settings = QualitySettings(max_rejected=6, max_rejected_fraction=0.5,
                               max_rejected_by_reason={"high_low": 4}, min_bars=36, max_gaps=1)
    gate = QualityGate(settings)
    gate.check_start(report(bad_bars(orcl)))
    assert gate.breaches == []


def test_warn_records_the_breach_without_refusing(orcl: pd.DataFrame) -> None:
    gate = QualityGate(QualitySettings(max_rejected=1, action="warn"))
    gate.check_start(report(bad_bars(orcl)))
    assert [b.threshold for b in gate.breaches] == ["max_rejected"]


def test_fill_counts_repaired_kinds_apart_from_rejected_rows(orcl: pd.DataFrame) -> None:
    df = bad_bars(orcl, high_low=3, nan=0)
    gate = QualityGate(QualitySettings(max_rejected=0))
    gate.check_start(report(df, "fill"))               # repaired rows are not rejected
    assert gate.rejected_total == 0
    assert gate.totals[("file", "ORCL", "repaired", "high_low")] == 3


def test_invalid_threshold_fails_config_loading_naming_the_field(tmp_path: Any) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(paths=[], environ={"TRADELAB__DATA__QUALITY__MAX_REJECTED_FRACTION": "1.5"},
                    home=tmp_path)
    assert any(p.startswith("data.quality.max_rejected_fraction") for p in info.value.problems)
    with pytest.raises(ConfigError):
        load_config(paths=[], environ={"TRADELAB__DATA__QUALITY__ACTION": "panic"}, home=tmp_path)


# -- live ------------------------------------------------------------------------------------
def test_live_fraction_waits_for_a_sample() -> None:
    gate = QualityGate(QualitySettings(max_rejected_fraction=0.05))
    gate.observe_feed({"rejected": {"not_json": 10}})
    for i in range(10):
        gate.observe_bar("SPX", T0 + timedelta(days=i))
    assert gate.check_live() is None                   # 10 of 20 is not a rate yet
    for i in range(10, FRACTION_MIN_SEEN):
        gate.observe_bar("SPX", T0 + timedelta(days=i))
    breach = gate.check_live()
    assert breach is not None and breach.threshold == "max_rejected_fraction"
    assert breach.observed == 10 / 110 and breach.stored_count == 10


def test_live_gaps_are_measured_against_the_typical_interval() -> None:
    gate = QualityGate(QualitySettings(max_gaps=1), gap_factor=5)
    times = [T0 + timedelta(days=i) for i in range(10)]
    times += [times[-1] + timedelta(days=30), times[-1] + timedelta(days=31)]
    times += [times[-1] + timedelta(days=60)]
    for t in times:
        gate.observe_bar("SPX", t)
    assert gate.gaps == 2
    breach = gate.check_live()
    assert breach is not None and (breach.threshold, breach.observed) == ("max_gaps", 2)


def test_feed_counters_are_taken_as_deltas() -> None:
    gate = QualityGate(QualitySettings())
    gate.observe_feed({"rejected": {"not_json": 2}, "dropped": {"duplicate": 1}, "stale": 0})
    gate.observe_feed({"rejected": {"not_json": 5, "nan": 1}, "dropped": {"duplicate": 1},
                       "stale": 1})
    assert gate.rejected == Counter({"not_json": 5, "nan": 1})
    assert gate.totals[("feed", "?", "dropped", "duplicate")] == 1
    assert gate.totals[("feed", "?", "stale", "connection")] == 1


class FakeLiveFeed:
    """A live feed: yields bars, rejects one message per bar; can stall until closed."""

    url = "ws://user:secret@venue.example:9000/stream"

    def __init__(self, n: int, stall_after: int | None = None) -> None:
        self.n, self.stall_after = n, stall_after
        self.rejected: Counter[str] = Counter()
        self.symbols = ["SPX"]
        self.closed = threading.Event()
        self.start_after: Any = None

    def __iter__(self) -> Iterator[Bar]:
        for i in range(self.n):
            if self.closed.is_set():
                return
            if i == self.stall_after:
                self.closed.wait(10)                   # silent until someone closes the feed
                return
            self.rejected["not_json" if i % 2 else "high_low"] += 1
            yield Bar("SPX", T0 + timedelta(days=i), 10.0, 11.0, 9.0, 10.5, 100.0)

    def stats(self) -> dict[str, Any]:
        return {"rejected": dict(self.rejected), "dropped": {}, "stale": 0}

    def close(self) -> None:
        self.closed.set()


def test_gated_feed_halts_after_the_bar_that_breaches() -> None:
    inner = FakeLiveFeed(50)
    gate = QualityGate(QualitySettings(max_rejected=5))
    stops: list[str] = []
    feed = QualityGatedFeed(inner, gate, on_breach=lambda r: (stops.append(r), feed.close()))
    got = [bar for bar in feed]
    assert len(got) == 6                               # the 6th bar brought the 6th reject
    assert len(stops) == 1 and stops[0].startswith("data quality: ")
    (breach,) = gate.breaches
    assert (breach.threshold, breach.limit, breach.observed) == ("max_rejected", 5, 6)
    assert breach.source == "ws://venue.example:9000"  # no credentials in labels or rows
    assert dict(breach.breakdown) == {"high_low": 3, "not_json": 3}


def test_gated_feed_forwards_attributes_to_the_inner_feed() -> None:
    inner = FakeLiveFeed(3)
    feed = QualityGatedFeed(inner, QualityGate(QualitySettings()))
    feed.start_after = T0                              # what recovery does on a resume
    assert inner.start_after == T0 and feed.symbols == ["SPX"]
    assert len(list(feed)) == 3


def test_stalled_feed_is_halted_by_the_watchdog() -> None:
    inner = FakeLiveFeed(50, stall_after=4)
    gate = QualityGate(QualitySettings(max_stale_seconds=0.2))
    stops: list[str] = []
    feed = QualityGatedFeed(inner, gate, on_breach=lambda r: (stops.append(r), feed.close()))
    started = time.monotonic()
    got = list(feed)
    assert len(got) == 4
    assert time.monotonic() - started < 5              # not the inner feed's 10 s timeout
    (breach,) = gate.breaches
    assert breach.threshold == "max_stale_seconds" and breach.observed > 0.2
    assert len(stops) == 1
    assert gate.totals[(breach.source, "SPX", "stale", "no_fresh_bar")] == 1


# -- metrics and alerts ----------------------------------------------------------------------
def fake_engine(bus: EventBus) -> Any:
    return SimpleNamespace(bus=bus, clock=SimClock(), run_id=7, recorder=None, account="paper",
                           wall_clock=LiveClock(), feed=None, request_stop=lambda _r: None)


def test_outcomes_and_breaches_reach_prometheus_and_raise_a_risk_alert() -> None:
    bus, metrics = EventBus(), Metrics()
    metrics.attach(bus)
    alerts: list[RiskAlert] = []
    bus.subscribe(RiskAlert, alerts.append)
    gate = QualityGate(QualitySettings(max_rejected=4))
    gate.feed_source, gate.feed_symbol = "ws://venue:1", "SPX"
    gate.bind(fake_engine(bus))
    gate.observe_feed({"rejected": {"not_json": 3, "nan": 2}, "dropped": {"duplicate": 4}})
    breach = gate.check_live()
    gate.publish()
    value = metrics.value
    assert value("tradelab_data_quality_total", {"kind": "rejected", "source": "ws://venue:1",
                                                 "symbol": "SPX", "reason": "not_json"}) == 3
    assert value("tradelab_data_quality_total", {"kind": "rejected", "source": "ws://venue:1",
                                                 "symbol": "SPX", "reason": "nan"}) == 2
    assert value("tradelab_data_quality_total", {"kind": "dropped", "source": "ws://venue:1",
                                                 "symbol": "SPX", "reason": "duplicate"}) == 4
    assert value("tradelab_data_quality_breaches_total",
                 {"threshold": "max_rejected", "action": "halt"}) == 1
    assert breach is not None
    assert [(a.rule, a.severity, a.message) for a in alerts] == \
        [("data_quality", "critical", str(breach))]


def test_staleness_gauge_follows_the_wait_for_each_bar() -> None:
    bus, metrics = EventBus(), Metrics()
    metrics.attach(bus)
    gate = QualityGate(QualitySettings())
    feed = QualityGatedFeed(FakeLiveFeed(3), gate)
    gate.bind(SimpleNamespace(**{**vars(fake_engine(bus)), "feed": feed}))
    assert len(list(feed)) == 3
    labels = {"source": "ws://venue.example:9000", "symbol": "SPX"}
    seconds = metrics.value("tradelab_feed_staleness_seconds", labels)
    assert seconds is not None and 0 <= seconds < 1
