"""The sequencer: never a bar twice or out of order; late bars within the depth still delivered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tradelab.feeds.sequence import Sequencer
from tradelab.interfaces import Bar

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def bar(day: int, symbol: str = "A") -> Bar:
    return Bar(symbol, T0 + timedelta(days=day), 2.0, 3.0, 1.0, 2.0, 1.0)


def days(bars: list[Bar]) -> list[int]:
    return [(b.time - T0).days for b in bars]


def test_in_order_bars_wait_only_for_the_depth() -> None:
    seq = Sequencer(depth=1, hold=60)
    out = []
    for d in range(5):
        seq.offer(bar(d), now=0)
        out += seq.ready(now=0)
    assert days(out) == [0, 1, 2, 3]
    assert days(seq.drain()) == [4]


def test_a_swapped_pair_is_delivered_in_order() -> None:
    seq = Sequencer(depth=1, hold=60)
    out = []
    for d in (0, 2, 1, 3):
        seq.offer(bar(d), now=0)
        out += seq.ready(now=0)
    out += seq.drain()
    assert days(out) == [0, 1, 2, 3]
    assert not seq.dropped


def test_duplicates_and_too_late_bars_are_dropped_and_counted() -> None:
    seq = Sequencer(depth=0, hold=60)
    out = []
    for d in (0, 1, 1, 2, 0, 2):
        seq.offer(bar(d), now=0)
        out += seq.ready(now=0)
    assert days(out) == [0, 1, 2]
    assert seq.dropped == {"duplicate": 2, "out_of_order": 1}


def test_a_duplicate_of_a_waiting_bar_is_dropped() -> None:
    seq = Sequencer(depth=3, hold=60)
    assert seq.offer(bar(1), now=0)
    assert not seq.offer(bar(1), now=0)
    assert seq.dropped["duplicate"] == 1


def test_hold_bounds_the_wait() -> None:
    seq = Sequencer(depth=5, hold=0.5)
    seq.offer(bar(0), now=10.0)
    assert seq.ready(now=10.4) == []
    assert days(seq.ready(now=10.5)) == [0]


def test_backfill_overlap_is_not_a_duplicate_message() -> None:
    seq = Sequencer(depth=1, hold=60, last={"A": T0 + timedelta(days=1)})
    assert not seq.offer(bar(1), now=0, backfill=True)
    assert not seq.offer(bar(0), now=0)
    assert seq.dropped == {"backfill_overlap": 1, "out_of_order": 1}


def test_symbols_are_ordered_independently() -> None:
    seq = Sequencer(depth=0, hold=60)
    seq.offer(bar(3, "A"), now=0)
    seq.ready(now=0)
    assert seq.offer(bar(1, "B"), now=0)       # B has its own clock
    assert not seq.offer(bar(2, "A"), now=0)
    assert seq.oldest("B") == T0 + timedelta(days=1)
    assert seq.newest("A") == T0 + timedelta(days=3)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Sequencer(depth=-1)
