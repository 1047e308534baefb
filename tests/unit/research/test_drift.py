"""Drift attribution (tradelab.drift): each kind of difference lands in its cause, and the
causes add up to the equity gap exactly."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from tradelab.drift import DriftReport, Trade, attribute, data_diff, trades
from tradelab.execution import Execution

INDEX = pd.date_range("2020-01-01", periods=20, freq="D", tz="UTC")
LAST = 110.0  # last close: open positions are marked there


def T(i: int, side: str, qty: float, price: float, fees: float = 0.0, *orders: str) -> Trade:
    return Trade(INDEX[i], side, qty, price, fees, tuple(orders))


def equity(ts: list[Trade], cash: float = 10_000.0) -> float:
    """Cash after the trades plus the position at the last close (computed independently)."""
    held = 0.0
    for t in ts:
        flow = t.quantity * t.price
        cash += (flow - t.fees) if t.side == "sell" else -(flow + t.fees)
        held += t.quantity if t.side == "buy" else -t.quantity
    return cash + held * LAST


def check_sum(run: list[Trade], research: list[Trade], **kw) -> list:
    rows = attribute(run, research, LAST, INDEX, **kw)
    assert math.isclose(math.fsum(r.total for r in rows), equity(run) - equity(research), abs_tol=1e-9)
    return rows


def test_identical_trades_match_with_no_cause() -> None:
    ts = [T(2, "buy", 10, 100, 0.5), T(6, "sell", 10, 105, 0.5)]
    rows = check_sum(ts, list(ts))
    assert [(r.kind, r.cause, r.total) for r in rows] == [("match", "none", 0.0)] * 2


def test_a_worse_price_is_a_price_loss_and_higher_fees_a_fee_loss() -> None:
    research = [T(2, "buy", 10, 100, 0.5), T(6, "sell", 10, 105, 0.5)]
    run = [T(2, "buy", 10, 100.2, 0.7), T(6, "sell", 10, 104.9, 0.6)]
    rows = check_sum(run, research)
    assert rows[0].price == pytest.approx(-2.0) and rows[0].fees == pytest.approx(-0.2)
    assert rows[1].price == pytest.approx(-1.0) and rows[1].fees == pytest.approx(-0.1)
    assert all(r.quantity == r.timing == 0 for r in rows)
    assert rows[0].cause == "price"


def test_a_smaller_fill_is_a_quantity_difference_worth_the_round_trip() -> None:
    research = [T(2, "buy", 10, 100), T(6, "sell", 10, 105)]
    run = [T(2, "buy", 6, 100), T(6, "sell", 6, 105)]
    rows = check_sum(run, research)
    assert math.fsum(r.quantity for r in rows) == pytest.approx(-4 * (105 - 100))
    assert {r.cause for r in rows} == {"quantity"} and all(r.price == r.fees == 0 for r in rows)


def test_the_rest_of_a_partial_fill_on_a_later_bar_is_a_partial_row() -> None:
    research = [T(2, "buy", 10, 100, 0, ), T(6, "sell", 10, 105)]
    run = [T(2, "buy", 6, 100, 0, "o1"), T(8, "buy", 4, 101, 0, "o1"), T(9, "sell", 10, 106, 0, "o2")]
    rows = check_sum(run, research, max_lag=1)
    kinds = [(r.kind, r.side) for r in rows]
    assert ("partial", "buy") in kinds
    partial = next(r for r in rows if r.kind == "partial")
    assert partial.run is not None and partial.run.at == INDEX[8] and partial.cause == "quantity"


def test_a_trade_on_another_bar_is_timing() -> None:
    research = [T(2, "buy", 10, 100), T(6, "sell", 10, 105)]
    run = [T(3, "buy", 10, 101), T(6, "sell", 10, 105)]
    rows = check_sum(run, research)
    assert rows[0].kind == "timing" and rows[0].cause == "timing"
    assert rows[0].timing == pytest.approx(-10.0)
    assert rows[1].kind == "match" and rows[1].total == 0


def test_a_trade_the_run_decided_but_never_filled_is_missed_with_its_exit() -> None:
    research = [T(2, "buy", 10, 100), T(6, "sell", 10, 105)]
    rows = check_sum([], research, unfilled=[(INDEX[1], "buy")])
    assert [(r.kind, r.cause) for r in rows] == [("missed", "quantity"), ("missed", "quantity")]
    assert math.fsum(r.quantity for r in rows) == pytest.approx(-50.0)


def test_a_trade_only_one_side_decided_is_a_signal_difference() -> None:
    research = [T(2, "buy", 10, 100)]
    run = [T(12, "buy", 10, 104)]
    rows = check_sum(run, research)  # 10 bars apart: not the same trade
    assert [(r.kind, r.cause) for r in rows] == [("signal", "timing"), ("signal", "timing")]


def test_fills_of_one_bar_aggregate_at_their_average_price() -> None:
    fills = [SimpleNamespace(at=INDEX[2].to_pydatetime(), side="buy", quantity=4, price=100, fees=1,
                             client_order_id="a"),
             SimpleNamespace(at=INDEX[2].to_pydatetime(), side="buy", quantity=6, price=105, fees=2,
                             client_order_id="a"),
             {"time": INDEX[3], "side": "sell", "quantity": 10.0, "price": 99.0, "fees": 0.0}]
    got = trades(fills)
    assert got[0] == Trade(INDEX[2], "buy", 10.0, 103.0, 3.0, ("a",))
    assert got[1].side == "sell" and got[1].orders == ()


def test_report_totals_threshold_and_json() -> None:
    research = [T(2, "buy", 10, 100, 0.5), T(6, "sell", 10, 105, 0.5)]
    run = [T(2, "buy", 10, 101, 0.5), T(6, "sell", 10, 105, 0.5)]
    rows = attribute(run, research, LAST, INDEX)
    rep = DriftReport(7, "s", {}, "X", Execution(), len(INDEX), 10_000.0, equity(run), equity(research),
                      LAST, rows, None, threshold=0.0005)
    assert rep.gap == pytest.approx(-10.0)
    assert rep.by_cause["price"] == pytest.approx(-10.0) and abs(rep.by_cause["other"]) < 1e-9
    assert rep.drift == pytest.approx(0.001) and rep.exceeded
    d = rep.to_dict()
    assert d["trades"] == {"run": 2, "research": 2, "kinds": {"match": 2}, "differing": 1}
    assert "EXCEEDED" in str(rep) and "price -10.00" in str(rep)
    assert len(rep.frame()) == 2


def test_data_diff_counts_differing_and_missing_bars() -> None:
    bars = pd.DataFrame({c: [1.0, 2.0, 3.0] for c in ("open", "high", "low", "close", "volume")},
                        index=INDEX[:3])
    source = bars.iloc[:2].copy()
    source.iloc[1, 3] = 2.5
    d = data_diff(bars, source, "sample")
    assert (d.compared, d.differing, d.missing, d.max_abs_diff) == (2, 1, 1, 0.5)
    assert d.examples == (f"{INDEX[1]:%Y-%m-%d %H:%M}",)


def test_a_venue_fill_goes_to_the_bar_it_happened_in() -> None:
    late = INDEX[4] + pd.Timedelta(milliseconds=412)
    fills = [SimpleNamespace(at=late.to_pydatetime(), side="buy", quantity=1, price=100, fees=0,
                             client_order_id="v")]
    assert trades(fills, INDEX)[0].at == INDEX[4]
    assert trades(fills)[0].at == late
