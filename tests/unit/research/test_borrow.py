"""The borrow fee of shorts: hand-computed cases in research and the engine, the accrual
arithmetic, validation, sweeps (each row its own backtest) and the refusals."""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).parents[3] / "var/numba-cache"))

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import YEAR_SECONDS, Execution
from tradelab.money import book
from tradelab.research.backtest import backtest
from tradelab.research.borrow import _accrue, borrow_fees, interval_seconds
from tradelab.testing import ScriptedStrategy, scripted_bars

RATE = 0.04
EX = Execution(size=10, size_type="amount", fees=0.0, borrow_fee=RATE)

# Short entry decided on bar 0 (code 1), exit decided on bar 3 (code 2); with next_open the
# short is held at the closes of bars 1, 2 and 3 and covered at bar 4's open.
ROWS = [(100.0, 101.0, 99.0, 100.0, 1), (100.0, 103.0, 99.0, 102.0, 0),
        (102.0, 106.0, 101.0, 105.0, 0), (105.0, 106.0, 97.0, 98.0, 2),
        (99.0, 100.0, 98.0, 99.0, 0), (99.0, 100.0, 98.0, 99.5, 0)]


def _bars(gap_days: int = 1) -> pd.DataFrame:
    """The scripted bars; bar 3 comes ``gap_days`` after bar 2 (a weekend: 3)."""
    bars = scripted_bars(ROWS)
    days = [0, 1, 2, 2 + gap_days, 3 + gap_days, 4 + gap_days]
    bars.index = pd.DatetimeIndex([pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=d)
                                   for d in days])
    return bars


def _by_hand(bars: pd.DataFrame, held: list[int], units: float) -> float:
    """rate x (seconds / year) x units x close, for each interval from a held bar's close."""
    return sum(RATE * ((bars.index[i + 1] - bars.index[i]).total_seconds() / YEAR_SECONDS)
               * units * bars["close"].iloc[i] for i in held)


@pytest.mark.parametrize("gap_days", [1, 3], ids=["daily", "weekend"])
def test_the_cover_carries_rate_times_time_times_units_times_close(gap_days: int) -> None:
    bars = _bars(gap_days)
    want = _by_hand(bars, [1, 2, 3], 10.0)
    research = backtest(ScriptedStrategy(), bars, execution=EX, direction="short")
    orders = research.orders
    assert list(orders["side"]) == ["sell", "buy"]
    assert orders["time"].iloc[1] == bars.index[4]
    assert orders["fees"].iloc[0] == 0.0  # the short entry pays no borrow
    assert orders["fees"].iloc[1] == pytest.approx(want, rel=1e-12)
    assert research.stats["borrow_fees"] == pytest.approx(want, rel=1e-12)
    assert research.stats["borrow_accrued"] == 0.0
    engine = assemble_engine([(ScriptedStrategy(), "X")], ReplayFeed(bars, "X"), EX,
                             config=EngineConfig(direction="short")).run()
    assert [f.side for f in engine.fills] == ["sell", "buy"]
    assert engine.fills[0].fees == 0
    # the same float as research's, booked at 10 places (tradelab.money)
    assert engine.fills[1].fees == book(float(orders["fees"].iloc[1]))
    # the fee is paid in cash: equity is the short's P&L less the fee, in both
    pnl = 10 * (orders["price"].iloc[0] - orders["price"].iloc[1])
    assert research.final_equity == pytest.approx(EX.cash + pnl - want, rel=1e-12)
    assert float(engine.equity) == pytest.approx(EX.cash + pnl - want, rel=1e-12)


def test_a_weekend_costs_three_days_of_borrow() -> None:
    daily = backtest(ScriptedStrategy(), _bars(1), execution=EX, direction="short")
    weekend = backtest(ScriptedStrategy(), _bars(3), execution=EX, direction="short")
    # bar 2's interval is three days instead of one, at bar 2's close
    extra = RATE * (2 * 86_400.0 / YEAR_SECONDS) * 10 * 105.0
    assert weekend.stats["borrow_fees"] - daily.stats["borrow_fees"] == pytest.approx(extra,
                                                                                      rel=1e-9)


def test_fill_at_close_counts_the_entry_bar_and_not_the_cover_bar() -> None:
    bars = _bars()
    ex = replace(EX, fill="close")  # short at bar 0's close, covered at bar 3's close
    research = backtest(ScriptedStrategy(), bars, execution=ex, direction="short")
    want = _by_hand(bars, [0, 1, 2], 10.0)
    assert research.orders["fees"].iloc[1] == pytest.approx(want, rel=1e-12)
    engine = assemble_engine([(ScriptedStrategy(), "X")], ReplayFeed(bars, "X"), ex,
                             config=EngineConfig(direction="short")).run()
    assert engine.fills[1].fees == book(float(research.orders["fees"].iloc[1]))


def test_a_short_open_at_the_end_reports_its_accrual_uncharged() -> None:
    bars = _bars()
    bars.iloc[3, bars.columns.get_loc("volume")] = 0  # no exit: still short at the end
    research = backtest(ScriptedStrategy(), bars, execution=EX, direction="short")
    assert list(research.orders["side"]) == ["sell"]
    assert research.stats["borrow_fees"] == 0.0
    assert research.stats["borrow_accrued"] == pytest.approx(_by_hand(bars, [1, 2, 3, 4], 10.0),
                                                             rel=1e-12)
    # equity marks the open short without the accrual (billed on cover, like a broker)
    assert research.final_equity == pytest.approx(
        EX.cash + 10 * (research.orders["price"].iloc[0] - bars["close"].iloc[-1]), rel=1e-12)


def test_no_borrow_fee_and_long_only_leave_the_backtest_unchanged() -> None:
    bars = _bars()
    plain = backtest(ScriptedStrategy(), bars, execution=replace(EX, borrow_fee=0.0),
                     direction="short")
    assert "borrow_fees" not in plain.stats
    assert plain.orders["fees"].tolist() == [0.0, 0.0]
    long_ = backtest(ScriptedStrategy(), bars, execution=EX, direction="long")
    assert long_.orders.equals(backtest(ScriptedStrategy(), bars, direction="long",
                                        execution=replace(EX, borrow_fee=0.0)).orders)


def test_borrow_fees_from_order_records_by_hand() -> None:
    dtype = [("id", np.int64), ("col", np.int64), ("idx", np.int64), ("size", float),
             ("price", float), ("fees", float), ("side", np.int64)]
    # column 0: short 4 at bar 1, covered at bar 3, short 2 at bar 4 (open at the end);
    # column 1: long only
    records = np.array([(0, 0, 1, 4.0, 10.0, 0.0, 1), (1, 0, 3, 4.0, 10.0, 0.0, 0),
                        (2, 0, 4, 2.0, 10.0, 0.0, 1), (0, 1, 0, 1.0, 10.0, 0.0, 0)], dtype=dtype)
    closes = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    seconds = np.full(6, YEAR_SECONDS)  # each interval a year: the charge is rate x units x close
    seconds[0] = 0.0
    ex = Execution(borrow_fee=0.5)
    fees = borrow_fees(ex, records, closes, seconds, columns=2)
    want = np.zeros((6, 2))
    want[3, 0] = 0.5 * 4 * (2.0 + 3.0)
    assert fees.per_bar.tolist() == want.tolist()
    assert fees.open_accrued.tolist() == [0.5 * 2 * 5.0, 0.0]
    assert fees.paid.tolist() == [10.0, 0.0]


def test_the_passes_settle_or_fail_loudly() -> None:
    from tradelab.errors import TradelabError
    from tradelab.research.conventions import TradeSpec
    from tradelab.research.simulate import run_with_borrow

    bars = _bars()
    signals = ScriptedStrategy().generate(bars)
    _, fees = run_with_borrow(EX, bars, signals, TradeSpec("short"))
    assert fees.passes == 2  # the plain run, then the one charging the cover
    _, none = run_with_borrow(EX, bars, signals, TradeSpec("long"))
    assert none.passes == 1 and not none.per_bar.any()
    with pytest.raises(TradelabError, match="did not settle in 1 passes"):
        run_with_borrow(EX, bars, signals, TradeSpec("short"), max_passes=1)


def test_interval_seconds_are_whole_microseconds_like_timedelta() -> None:
    index = pd.DatetimeIndex(["2024-01-01 00:00:00", "2024-01-01 00:00:01.000001",
                              "2024-01-03 12:00:00"], tz="UTC")
    got = interval_seconds(index)
    assert got.tolist() == [0.0] + [(b - a).to_pytimedelta().total_seconds()
                                    for a, b in itertools.pairwise(index)]


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(0.0, 1.0), units=st.floats(1e-6, 1e6),
       steps=st.lists(st.tuples(st.integers(1, 10 * 86_400_000_000), st.floats(0.01, 1e5)),
                      min_size=1, max_size=40))
def test_research_and_engine_add_the_same_floats(rate, units, steps) -> None:
    """Research's vectorized accrual is bit for bit the paper broker's running sum, and
    within float rounding of the exact (Decimal) amount."""
    ex = Execution(borrow_fee=rate)
    seconds = np.array([m / 1e6 for m, _ in steps])
    closes = np.array([c for _, c in steps])
    running = 0.0
    for s, c in zip(seconds.tolist(), closes.tolist(), strict=True):
        running = running + ex.borrow_charge(s, units, c)
    assert _accrue(ex, 0.0, seconds, closes, units) == running
    exact = sum((Decimal(repr(rate)) * Decimal(m) / Decimal(10**6) / Decimal(repr(YEAR_SECONDS))
                 * Decimal(repr(units)) * Decimal(repr(c)) for m, c in steps), Decimal(0))
    assert math.isclose(running, float(exact), rel_tol=1e-12, abs_tol=1e-300)


@pytest.mark.parametrize("value", [-0.01, math.nan, math.inf])
def test_a_bad_borrow_fee_is_refused_by_name(value: float) -> None:
    with pytest.raises(ValueError, match="borrow_fee = "):
        Execution(borrow_fee=value)


@pytest.mark.parametrize(("direction", "size"), [("short", {}), ("both", {}),
                                               ("both", {"size": 100, "size_type": "amount"})])
def test_sweep_rows_charge_the_borrow_fee_of_their_own_backtests(spx, registry, direction: str,
                                                                 size: dict) -> None:
    """Every row of a sweep with a borrow fee equals its backtest with the fee, metric for
    metric, for threads and chunks of any size; and the fee changed the results."""
    from tradelab.research.metrics import METRICS
    from tradelab.research.sweep import sweep

    cls = registry.get("sma_cross")
    bars = spx.iloc[:1500]
    grid = {"fast": [5, 10, 20], "slow": [30, 50]}
    ex = Execution(borrow_fee=0.08, **size)
    one_chunk = sweep(cls, bars, grid, execution=ex, direction=direction, progress=False)
    threaded = sweep(cls, bars, grid, execution=ex, direction=direction, progress=False,
                     chunk_size=2, workers=2)
    free = sweep(cls, bars, grid, execution=replace(ex, borrow_fee=0.0), direction=direction,
                 progress=False)
    pd.testing.assert_frame_equal(one_chunk.table, threaded.table)
    assert not np.array_equal(one_chunk.table["total_return"], free.table["total_return"])
    paid = []
    for _, row in one_chunk.table.iterrows():
        params = {k: int(row[k]) for k in grid}
        want = backtest(cls, bars, params, execution=ex, direction=direction)
        paid.append(want.stats["borrow_fees"])
        for metric in METRICS:
            assert row[metric] == pytest.approx(want.stats[metric], rel=1e-12, nan_ok=True), \
                (params, metric)
    assert max(paid) > 0  # (with percent sizing "both" goes short only in some rows)


def test_walk_forward_charges_the_borrow_fee_out_of_sample_too(spx, registry) -> None:
    """Each fold's out-of-sample figures are its pick's test window simulated with the
    fee (the fixed point of a backtest), and the fee lowered them."""
    from tradelab.research.conventions import TradeSpec
    from tradelab.research.simulate import portfolio_metrics, run_portfolio, run_with_borrow
    from tradelab.research.sweep import sweep
    from tradelab.research.walkforward import WalkForward, window_signals

    cls = registry.get("sma_cross")
    bars = spx.iloc[:1500]
    grid = {"fast": [5, 10, 20], "slow": [30, 50]}
    ex = Execution(borrow_fee=0.08)
    spec = WalkForward(3, "anchored", 0.6)
    wf = sweep(cls, bars, grid, execution=ex, direction="short", progress=False,
               walk_forward=spec).walk_forward
    assert wf is not None
    trade = TradeSpec(direction="short")
    warmup = max(cls(fast=f, slow=s).warmup for f, s in itertools.product(*grid.values()))
    paid = []
    for (_, _, te_lo, te_hi), (_, row) in zip(spec.windows(len(bars)), wf.folds.iterrows(),
                                              strict=True):
        chosen = {k: int(row[k]) for k in grid}
        sig, sim, _ = window_signals(cls, [chosen], bars, (te_lo, te_hi, te_lo - warmup), trade)
        pf, fees = run_with_borrow(ex, sim, sig, trade)
        want = portfolio_metrics(pf, ex.cash, 252.0)
        free = portfolio_metrics(run_portfolio(replace(ex, borrow_fee=0.0), sim, sig.entries,
                                               sig.exits, trade, sig), ex.cash, 252.0)
        assert row["oos_return"] == want["total_return"][0]
        assert row["oos_round_trips"] == want["n_trades"][0]
        paid.append(float(fees.paid[0]))
        if paid[-1] > 0:
            assert row["oos_return"] < free["total_return"][0]
    assert max(paid) > 0


def test_sweep_rows_with_a_time_stop_charge_the_borrow_fee_of_their_backtests(spx, registry) -> None:
    """A time stop runs through vectorbt's callbacks (the Portfolio path, signals passed as
    broadcast arguments): each row still equals its backtest with the fee."""
    from tradelab.research.sweep import sweep

    cls = registry.get("sma_cross")
    bars = spx.iloc[:1200]
    grid = {"fast": [5, 10], "slow": [30]}
    ex = Execution(borrow_fee=0.08, size=10, size_type="amount")
    table = sweep(cls, bars, grid, execution=ex, direction="short", time_stop=7,
                  progress=False).table
    free = sweep(cls, bars, grid, execution=replace(ex, borrow_fee=0.0), direction="short",
                 time_stop=7, progress=False).table
    assert not np.array_equal(table["total_return"], free["total_return"])
    for _, row in table.iterrows():
        params = {k: int(row[k]) for k in grid}
        want = backtest(cls, bars, params, execution=ex, direction="short", time_stop=7)
        assert want.stats["borrow_fees"] > 0
        assert row["total_return"] == pytest.approx(want.stats["total_return"], rel=1e-12)
        assert row["n_trades"] == want.stats["n_trades"]
