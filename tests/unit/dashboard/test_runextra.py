"""Per-symbol performance, feed health and the price chart's data (tradelab.dashboard.runextra)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.api.helpers import ROOT
from tradelab.dashboard.runextra import (
    bar_interval,
    chart_data,
    feed_health,
    indicators,
    symbol_performance,
)
from tradelab.dashboard.runview import closed_trades, run_figures
from tradelab.store.feed_reads import FeedRows, run_feed, run_recent_bars
from tradelab.store.records import EquityPoint, FillRecord
from tradelab.strategy.registry import StrategyRegistry

T = datetime(2020, 1, 1, tzinfo=UTC)
D = Decimal

prices = st.decimals(min_value=D("1"), max_value=D("1000"), places=2)
trades = st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(1, 20), prices,
                            st.decimals(min_value=D("0"), max_value=D("5"), places=2)),
                  min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(trades=trades, marks=st.dictionaries(st.sampled_from(["A", "B", "C"]), prices))
def test_per_symbol_pnl_adds_up_to_the_runs_pnl(trades: list, marks: dict) -> None:
    """Long-only round trips on a few symbols: sum of per-symbol P&L == the P&L tile."""
    fills, held = [], {"A": 0, "B": 0, "C": 0}
    for n, (sym, qty, price, fee) in enumerate(trades):
        side = "sell" if held[sym] >= qty and n % 2 else "buy"
        held[sym] += qty if side == "buy" else -qty
        fills.append(FillRecord(f"f{n}", f"o{n}", sym, side, D(qty), price, fee,
                                T + timedelta(minutes=n)))
    close = {s: marks.get(s, D("100")) for s in held}
    cash_flow = sum((-(f.quantity * f.price) if f.side == "buy" else f.quantity * f.price)
                    - f.fees for f in fills)
    value = sum(D(held[s]) * close[s] for s in held)
    start = D("100000")
    last = EquityPoint(fills[-1].at, 1, start + cash_flow, value, start + cash_flow + value, D(0))
    bar_marks = {s: (last.at, float(close[s])) for s in held}
    fig = run_figures(fills, last, bar_marks, float(start))
    per = symbol_performance(fills, last, fig.positions, closed_trades(fills, bar_marks))
    assert per["pnl"].sum() == pytest.approx(fig.pnl, abs=1e-6)
    assert per["fees"].sum() == pytest.approx(fig.fees, abs=1e-9)
    assert per["fills"].sum() == len(fills)
    assert fig.pnl == pytest.approx(float(cash_flow + value), abs=1e-6)


def test_fills_after_the_snapshot_are_left_out_like_the_tiles() -> None:
    fills = [FillRecord("a", "o1", "A", "buy", D(1), D(10), D(1), T),
             FillRecord("b", "o2", "A", "sell", D(1), D(12), D(1), T + timedelta(hours=2))]
    last = EquityPoint(T + timedelta(hours=1), 1, D(89), D(10), D(99), D(0))
    fig = run_figures(fills, last, {"A": (last.at, 10.0)}, 100.0)
    per = symbol_performance(fills, last, fig.positions, closed_trades(fills[:1], {}))
    assert per.to_dict("records") == [{"symbol": "A", "pnl": -1.0, "realized": 0.0,
                                       "unrealized": 0.0, "fees": 1.0, "fills": 1,
                                       "round_trips": 0, "win_rate": None}]


def _bars(n: int, step: timedelta, start: datetime = T) -> list[dict]:
    return [{"at": start + i * step, "open": 1.0 + i, "high": 2.0 + i, "low": 0.5 + i,
             "close": 1.5 + i, "volume": 1.0} for i in range(n)]


def test_bar_interval_is_the_smallest_positive_step() -> None:
    bars = _bars(5, timedelta(minutes=5))
    bars[3]["at"] += timedelta(minutes=20)  # a gap does not lengthen the interval
    assert bar_interval(bars) == timedelta(minutes=5)
    assert bar_interval(bars[:1]) is None


def test_feed_is_stale_after_three_intervals() -> None:
    bars = _bars(4, timedelta(hours=1))
    feed = FeedRows(4, bars[0]["at"], bars[-1]["at"], [])
    fresh = feed_health(feed, bars, bars[-1]["at"] + timedelta(hours=3))
    stale = feed_health(feed, bars, bars[-1]["at"] + timedelta(hours=3, seconds=1))
    assert (fresh["state"], stale["state"]) == ("ok", "stale")
    assert fresh["threshold"] == timedelta(hours=3)
    assert stale["age"] == timedelta(hours=3, seconds=1)
    configured = feed_health(feed, bars, bars[-1]["at"] + timedelta(minutes=2),
                             stale_after=timedelta(minutes=1))
    assert configured["state"] == "stale"
    assert feed_health(FeedRows(), [], T)["state"] == "no bars"


def test_feed_reads_count_bars_and_sum_quality_per_reason(store: object) -> None:
    from sqlalchemy import insert

    from tradelab.store.bar_sql import RB
    from tradelab.store.quality_repo import QualityRepo

    s = store  # the seeded store of tests/unit/dashboard/conftest.py
    run = s.runs("paper")[0].id  # type: ignore[attr-defined]
    with s._write.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(insert(RB), [{"run_id": run, "symbol": "SPX", **b}
                                  for b in _bars(7, timedelta(days=1))])
    QualityRepo(s).record([{"source": "x", "symbol": "SPX", "kind": "rejected",
                            "reason": "nan", "count": c, "at": T + timedelta(days=c),
                            "run_id": run} for c in (1, 2)])
    with s.engine.connect() as conn:  # type: ignore[attr-defined]
        feed = run_feed(conn, run)
        recent = run_recent_bars(conn, run, "SPX", limit=3)
        with pytest.raises(ValueError, match="limit must be at least 1, got 0"):
            run_recent_bars(conn, run, "SPX", limit=0)
    assert (feed.bars, feed.first_bar) == (7, T)
    assert feed.last_bar == T + timedelta(days=6)
    assert feed.quality == [{"kind": "rejected", "reason": "nan", "symbol": "SPX", "count": 3,
                             "last_at": T + timedelta(days=2)}]
    assert [b["at"] for b in recent] == [T + timedelta(days=d) for d in (4, 5, 6)]


def test_chart_data_draws_the_strategys_indicators_from_the_runs_params() -> None:
    registry = StrategyRegistry.discover([ROOT / "strategies"], entry_points=False)
    run = SimpleNamespace(strategy="sma_cross", params={"fast": 2, "slow": 4}, symbol="A,B")
    bars = _bars(6, timedelta(days=1))
    fills = [FillRecord("a", "o", "A", "buy", D(1), D("3.5"), D(0), T + timedelta(days=2)),
             FillRecord("b", "p", "B", "buy", D(1), D(9), D(0), T + timedelta(days=2))]
    frame, lines, markers = chart_data(run, bars, fills, registry)
    assert list(lines) == ["SMA(2)", "SMA(4)"]
    closes = pd.Series([b["close"] for b in bars])
    assert lines["SMA(2)"][-1] == pytest.approx(closes.iloc[-2:].mean())
    assert lines["SMA(4)"][-1] == pytest.approx(closes.iloc[-4:].mean())
    assert markers.to_dict("records") == [{"at": T + timedelta(days=2), "side": "buy",
                                           "price": 3.5}]
    assert len(frame) == 6
    unknown = SimpleNamespace(strategy="hold", params={}, symbol="A")
    bad = SimpleNamespace(strategy="sma_cross", params={"fast": 9, "slow": 3}, symbol="A")
    assert indicators(unknown, frame, registry) == {}
    assert indicators(bad, frame, registry) == {}  # fast >= slow: refused, nothing drawn
