"""The live batching rule of a portfolio engine (tradelab.feeds.stamps), driven by
scripted arrivals and a manual monotonic clock: no sleeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradelab.feeds.stamps import WAKE, Arrivals, LiveStamps, StampBatcher
from tradelab.interfaces import Bar
from tradelab.testing import ManualClock

T0 = datetime(2024, 1, 2, tzinfo=UTC)
UNIVERSE = ("KO", "PEP", "XOM")


def t(i: int) -> datetime:
    return T0 + timedelta(days=i)


def bar(sym: str, i: int, close: float = 10.0) -> Bar:
    return Bar(sym, t(i), close, close, close, close, 0.0)


def keys(batches: list[list[Bar]]) -> list[list[tuple[str, int]]]:
    return [[(b.symbol, (b.time - T0).days) for b in batch] for batch in batches]


def test_a_time_stamp_is_complete_when_every_symbol_delivered_in_universe_order() -> None:
    b = StampBatcher(UNIVERSE, cutoff=5)
    assert b.add(bar("XOM", 0), 0.0) == ([], None)
    assert b.add(bar("KO", 0), 0.1) == ([], None)
    out, rejected = b.add(bar("PEP", 0), 0.2)
    assert rejected is None and keys(out) == [[("KO", 0), ("PEP", 0), ("XOM", 0)]]
    assert b.pending is None and b.done == t(0) and b.counts["complete"] == 1


def test_the_cut_off_completes_a_time_stamp_without_the_silent_symbol_whose_bar_is_then_late(
        ) -> None:
    b = StampBatcher(UNIVERSE, cutoff=5)
    b.add(bar("PEP", 0), 10.0)
    b.add(bar("KO", 0), 11.0)
    assert b.deadline == 15.0
    assert b.expire(14.999) == []
    assert keys(b.expire(15.0)) == [[("KO", 0), ("PEP", 0)]]
    assert b.deadline is None
    out, rejected = b.add(bar("XOM", 0), 15.5)
    assert out == [] and rejected == "late"
    assert b.late == {"XOM": 1} and b.counts["cutoff"] == 1 and b.counts["late"] == 1


def test_an_arrival_after_the_deadline_counts_as_late_even_before_a_wake_up() -> None:
    b = StampBatcher(("KO", "PEP"), cutoff=2)
    b.add(bar("KO", 0), 0.0)
    out, rejected = b.add(bar("PEP", 0), 2.0)  # the cut-off passed at 2.0: t(0) is done
    assert keys(out) == [[("KO", 0)]] and rejected == "late"


def test_a_later_time_stamps_bar_completes_the_pending_one_first() -> None:
    b = StampBatcher(UNIVERSE, cutoff=5)
    b.add(bar("KO", 0), 0.0)
    b.add(bar("XOM", 0), 0.0)
    out, rejected = b.add(bar("PEP", 1), 0.1)
    assert rejected is None and keys(out) == [[("KO", 0), ("XOM", 0)]]
    assert b.pending == t(1) and b.deadline == pytest.approx(5.1)
    assert b.add(bar("PEP", 0), 0.2) == ([], "late")  # its time stamp is done
    b.add(bar("KO", 1), 0.3)
    out, _ = b.add(bar("XOM", 1), 0.3)
    assert keys(out) == [[("KO", 1), ("PEP", 1), ("XOM", 1)]]
    assert b.counts["superseded"] == 1 and b.late == {"PEP": 1}


def test_a_bar_older_than_the_pending_time_stamp_is_late_even_if_its_own_was_never_opened(
        ) -> None:
    b = StampBatcher(("KO", "PEP"), cutoff=5)
    b.add(bar("KO", 0), 0.0)
    b.add(bar("PEP", 0), 0.0)
    b.add(bar("KO", 2), 0.0)
    assert b.add(bar("PEP", 1), 0.0) == ([], "late")  # t(1) would move the engine back


def test_duplicates_and_unknown_symbols_are_counted_and_not_applied() -> None:
    b = StampBatcher(("KO", "PEP"), cutoff=5)
    b.add(bar("KO", 0, close=10.0), 0.0)
    assert b.add(bar("KO", 0, close=99.0), 0.0) == ([], "duplicate")
    assert b.add(bar("MSFT", 0), 0.0) == ([], "unknown_symbol")
    out, _ = b.add(bar("PEP", 0), 0.0)
    assert [x.close for x in out[0]] == [10.0, 10.0]  # the first KO bar, not the duplicate
    assert b.stats() | {"late_by_symbol": None} == {
        "complete": 1, "cutoff": 0, "superseded": 0, "end": 0, "late": 0, "duplicate": 1,
        "unknown_symbol": 1, "late_by_symbol": None, "cutoff_seconds": 5.0}


def test_the_end_completes_the_pending_time_stamp() -> None:
    b = StampBatcher(UNIVERSE, cutoff=5)
    assert b.finish() == []
    b.add(bar("PEP", 3), 0.0)
    assert keys(b.finish()) == [[("PEP", 3)]] and b.counts["end"] == 1 and b.finish() == []


@pytest.mark.parametrize(("symbols", "cutoff", "message"), [
    ((), 5, r"^symbols: at least one$"),
    (("KO", "KO"), 5, r"^symbols: \['KO', 'KO'\] names a symbol twice$"),
    (("KO",), 0, r"^cutoff=0: expected seconds > 0$"),
    (("KO",), -1.5, r"^cutoff=-1.5: expected seconds > 0$"),
])
def test_bad_settings_are_refused_naming_the_value(symbols: tuple[str, ...], cutoff: float,
                                                   message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StampBatcher(symbols, cutoff)


arrival = st.tuples(st.sampled_from(("KO", "PEP", "XOM", "GE")), st.integers(0, 6),
                    st.floats(0, 3))


@settings(max_examples=300, deadline=None)
@given(st.lists(arrival, max_size=60))
def test_every_bar_is_applied_once_or_counted_and_time_stamps_only_move_forward(
        arrivals: list[tuple[str, int, float]]) -> None:
    b = StampBatcher(UNIVERSE, cutoff=2.5)
    now, batches, rejected = 0.0, [], 0
    for sym, day, gap in arrivals:
        now += gap
        out, why = b.add(bar(sym, day), now)
        batches += out
        rejected += why is not None
    batches += b.finish()
    assert sum(len(x) for x in batches) + rejected == len(arrivals)
    assert rejected == b.counts["late"] + b.counts["duplicate"] + b.counts["unknown_symbol"]
    times = [x[0].time for x in batches]
    assert all(x and len({y.time for y in x}) == 1 for x in batches)
    assert times == sorted(set(times))
    for x in batches:
        assert [y.symbol for y in x] == [s for s in UNIVERSE if s in {y.symbol for y in x}]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.permutations(UNIVERSE), min_size=1, max_size=8))
def test_whole_time_stamps_in_any_symbol_order_batch_like_a_replay(
        orders: list[list[str]]) -> None:
    b = StampBatcher(UNIVERSE, cutoff=1)
    out = []
    for day, order in enumerate(orders):
        for sym in order:
            out += b.add(bar(sym, day), 0.0)[0]
    assert keys(out) == [[(s, day) for s in UNIVERSE] for day in range(len(orders))]
    assert b.counts["complete"] == len(orders) and b.finish() == []


def test_live_stamps_complete_on_a_wake_up_after_the_cut_off_and_report_late_bars() -> None:
    clock = ManualClock()
    late: list[tuple[str, str]] = []

    def script() -> Iterator[Any]:
        yield bar("KO", 0)
        clock.advance(1.0)
        yield WAKE                # before the cut-off: nothing
        clock.advance(1.0)
        yield WAKE                # 2.0 s after KO's bar: t(0) done without PEP
        yield bar("PEP", 0)       # late
        yield bar("PEP", 1)
        yield bar("KO", 1)        # complete
        yield bar("KO", 2)        # pending at the end

    stamps = LiveStamps(script(), ("KO", "PEP"), cutoff=2.0, timer=clock,
                        on_late=lambda b, why: late.append((b.symbol, why)))
    seen = []
    for batch in stamps:
        seen.append(keys([batch])[0])
    assert seen == [[("KO", 0)], [("KO", 1), ("PEP", 1)], [("KO", 2)]]
    assert late == [("PEP", "late")]
    assert stamps.stats()["late_by_symbol"] == {"PEP": 1}
    assert stamps.stats()["cutoff"] == stamps.stats()["complete"] == stamps.stats()["end"] == 1


def test_arrivals_wake_the_consumer_while_the_feed_is_silent_and_pass_on_its_bars() -> None:
    go = threading.Event()

    def feed() -> Iterator[Bar]:
        yield bar("KO", 0)
        go.wait(10)  # silent until the consumer has seen a wake-up
        yield bar("KO", 1)

    items = []
    for item in Arrivals(feed(), tick=0.01):
        items.append(item)
        if item is WAKE:
            go.set()
    bars = [i for i in items if i is not WAKE]
    assert bars == [bar("KO", 0), bar("KO", 1)]
    assert items[0] == bar("KO", 0) and items[1] is WAKE


def test_arrivals_raise_the_feeds_error_in_the_consumer() -> None:
    def feed() -> Iterator[Bar]:
        yield bar("KO", 0)
        raise ConnectionError("venue gone")

    with pytest.raises(ConnectionError, match=r"^venue gone$"):
        list(Arrivals(feed(), tick=0.01))


def test_arrivals_read_and_set_the_feeds_attributes() -> None:
    class Feed:
        start_after = None

        def __iter__(self) -> Iterator[Bar]:
            return iter(())

    inner = Feed()
    outer = Arrivals(inner)
    outer.start_after = T0
    assert inner.start_after == T0 and outer.start_after == T0
