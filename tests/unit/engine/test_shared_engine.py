"""Engines in shared-account mode: each keeps its own book, the store keeps the account's."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.engine.loop import Engine
from tradelab.execution import Execution
from tradelab.risk.rules import RiskLimits
from tradelab.store import Store
from tradelab.store.shared_repo import book_fills
from tradelab.testing import make_bars

EX = Execution(fill="close", fees=0.001, size=0.4)  # 40 % of each engine's own cash per entry



@pytest.fixture()
def bars():
    return {"X": make_bars(240, seed=5), "Y": make_bars(240, seed=6)}


def make_engine(registry, store: Store, bars, symbol: str, account: str, *, shared: bool = True,
                limits: RiskLimits | None = None, resume: int | None = None, n: int = 240) -> Engine:
    strat = registry.create("sma_cross", fast=3, slow=8)
    return assemble_engine([(strat, symbol)], ReplayFeed(bars[symbol].iloc[:n], symbol), EX, store=store,
                  config=EngineConfig(account=account, shared_account=shared, flush_every=1),
                  limits=limits, resume=resume)


def trades(engine_or_fills) -> list[tuple]:
    fills = getattr(engine_or_fills, "fills", engine_or_fills)
    return [(f.symbol, f.at, f.side, f.quantity, f.price, f.fees) for f in fills]


def test_interleaved_engines_keep_their_own_books_and_the_store_keeps_the_sum(
        registry, store: Store, bars) -> None:
    a = make_engine(registry, store, bars, "X", "acct")
    b = make_engine(registry, store, bars, "Y", "acct")
    for bar_a, bar_b in zip(a.feed, b.feed, strict=True):  # one bar each, turn by turn
        a.step(bar_a)
        b.step(bar_b)
    solo = {s: make_engine(registry, store, bars, s, f"solo-{s}", shared=False).run() for s in "XY"}

    # Limits that never bind: each engine trades exactly as it would alone.
    assert trades(a) == trades(solo["X"]) and trades(b) == trades(solo["Y"])
    assert a.fills and b.fills
    assert set(a.portfolio.positions) == {"X"} and set(b.portfolio.positions) == {"Y"}
    # The account holds both: one cash balance, every fill booked once.
    acct = store.get_account("acct")
    own = [a.portfolio.cash - Decimal(repr(EX.cash)), b.portfolio.cash - Decimal(repr(EX.cash))]
    assert acct.cash == acct.initial_cash + sum(own)
    assert {p.symbol: p.quantity for p in store.positions("acct")} == {
        "X": a.portfolio.position("X"), "Y": b.portfolio.position("Y")}


def test_a_shared_limit_binds_on_the_sum_of_both_engines(registry, store: Store, bars) -> None:
    limits = RiskLimits(max_gross_exposure=Decimal(60_000))  # ~1.5 engines' entries
    a = make_engine(registry, store, bars, "X", "acct", limits=limits)
    b = make_engine(registry, store, bars, "Y", "acct", limits=limits)
    for bar_a, bar_b in zip(a.feed, b.feed, strict=True):
        a.step(bar_a)
        b.step(bar_b)
        marks = {"X": bar_a.close, "Y": bar_b.close}
        held = sum(abs(float(q.quantity)) * marks[q.symbol] for q in store.positions("acct"))
        assert held <= 60_000 * 1.2  # price moves after an entry are not the limit's to stop
    denied = [al for al in a.alerts + b.alerts if al.rule == "max_gross_exposure"]
    assert denied and all(al.message.startswith("account: ") for al in denied)


def test_resume_rebuilds_this_engines_book_from_its_own_fills_only(registry, store: Store, bars) -> None:
    first = make_engine(registry, store, bars, "X", "acct", n=130)
    first.run()
    # Meanwhile another engine on the account bought something else.
    with store.transaction() as tx:
        aid = tx.ensure_account("acct", Decimal(0))
        tx.lock_account(aid)
        book_fills(tx, aid, [("Z", "buy", Decimal(7), Decimal(50), Decimal(0))])
    resumed = make_engine(registry, store, bars, "X", "acct", resume=int(first.run_id))
    assert set(resumed.portfolio.positions) <= {"X"}
    assert resumed.portfolio.cash == first.portfolio.cash
    resumed.run()
    whole = make_engine(registry, store, bars, "X", "other")
    whole.run()
    assert trades(store.fills("acct", int(first.run_id))) == trades(store.fills("other"))
    assert resumed.portfolio.cash == whole.portfolio.cash
    assert {p.symbol: p.quantity for p in store.positions("acct")} == {
        "X": whole.portfolio.position("X"), "Z": Decimal(7)}


def test_shared_mode_needs_a_store(registry, bars) -> None:
    strat = registry.create("sma_cross", fast=3, slow=8)
    with pytest.raises(ValueError, match="shared_account needs a store"):
        assemble_engine([(strat, "X")], ReplayFeed(bars["X"], "X"), EX,
               config=EngineConfig(shared_account=True))
