"""The account-wide risk view in the store, on SQLite and a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradelab.portfolio import Portfolio
from tradelab.risk.rules import RiskLimits
from tradelab.risk.shared import StoreRiskView, without_account_rules
from tradelab.store import Store
from tradelab.store.shared_repo import book_fills, read_view

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
D = Decimal



@pytest.fixture()
def account_id(store: Store) -> int:
    with store.transaction() as tx:
        return tx.ensure_account("shared", D("100000"))


def view(store: Store, account_id: int, limits: RiskLimits) -> StoreRiskView:
    def write_ahead(tx: Any, cid: str) -> None:  # what the engine's recorder does
        symbol, side, qty = PENDING[cid]
        tx.upsert_order_id(cid, at=T0, account=account_id, symbol=symbol, side=side, type="market",
                           quantity=qty)

    return StoreRiskView(store, account_id, limits, write_ahead)


PENDING: dict[str, tuple[str, str, Decimal]] = {}


def request(risk: StoreRiskView, cid: str, symbol: str, qty: str, price: str = "100",
            side: str = "buy", at: datetime = T0) -> list:
    PENDING[cid] = (symbol, side, D(qty))
    breaches, _ = risk.approve(cid, at, symbol, side, D(qty), D(price), "s")
    return breaches


def test_an_approved_order_is_reserved_so_the_next_one_counts_it(store: Store, account_id: int) -> None:
    risk = view(store, account_id, RiskLimits(max_gross_exposure=D("1500")))
    assert request(risk, "a1", "AAA", "10") == []             # 1,000 of 1,500
    assert store.get_order("a1") is not None                  # committed with the check
    breaches = request(risk, "b1", "BBB", "10")               # +1,000 in another symbol
    assert [b[0] for b in breaches] == ["max_gross_exposure"]
    assert store.get_order("b1") is None                      # a denial reserves nothing
    assert request(risk, "b2", "BBB", "5") == []              # 1,500: exactly at the limit
    with store.transaction() as tx:
        assert read_view(tx, account_id).gross_exposure == D("1500")


def test_a_reducing_order_passes_and_pending_sells_do_not_count_as_reductions(
        store: Store, account_id: int) -> None:
    risk = view(store, account_id, RiskLimits(max_gross_exposure=D("1000")))
    with store.transaction() as tx:
        book_fills(tx, account_id, [("AAA", "buy", D("10"), D("100"), D("0"))])
    assert request(risk, "s1", "AAA", "10", side="sell") == []       # closing is always allowed
    # The sell may not fill: until it does, the long still counts in full.
    assert [b[0] for b in request(risk, "b1", "BBB", "1")] == ["max_gross_exposure"]


def test_marks_from_other_engines_value_their_symbols(store: Store, account_id: int) -> None:
    risk = view(store, account_id, RiskLimits(max_gross_exposure=D("2500")))
    with store.transaction() as tx:
        book_fills(tx, account_id, [("AAA", "buy", D("10"), D("100"), D("0"))])
    risk.sync(T0, {"AAA": D("200")})                           # AAA doubled: 2,000 held
    assert [b[0] for b in request(risk, "b1", "BBB", "6")] == ["max_gross_exposure"]
    assert request(risk, "b2", "BBB", "5") == []               # 2,000 + 500 = the limit


def test_sync_engages_the_kill_switch_on_account_drawdown_and_approve_then_denies(
        store: Store, account_id: int) -> None:
    risk = view(store, account_id, RiskLimits(max_drawdown=0.10))
    with store.transaction() as tx:
        book_fills(tx, account_id, [("AAA", "buy", D("500"), D("100"), D("0"))])
    assert risk.sync(T0, {"AAA": D("100")}).breach is None      # peak 100,000
    assert risk.sync(T0 + timedelta(days=1), {"AAA": D("85")}).breach is None  # -7.5 %
    out = risk.sync(T0 + timedelta(days=2), {"AAA": D("75")})   # -12.5 %: breach
    assert out.breach is not None and out.breach[0] == "max_drawdown"
    assert out.kill[0] and out.equity == D("87500")
    assert store.kill_switch("shared").engaged
    breaches, kill = risk.approve("x", T0 + timedelta(days=2), "AAA", "buy", D("1"), D("75"), "s")
    assert breaches == [] and kill[0]
    assert store.get_order("x") is None


def test_daily_loss_is_measured_from_the_previous_close(store: Store, account_id: int) -> None:
    risk = view(store, account_id, RiskLimits(max_daily_loss=0.05))
    with store.transaction() as tx:
        book_fills(tx, account_id, [("AAA", "buy", D("1000"), D("50"), D("0"))])
    assert risk.sync(T0, {"AAA": D("50")}).breach is None       # closes day 1 at 100,000
    day2 = T0 + timedelta(days=1)
    assert risk.sync(day2, {"AAA": D("48")}).breach is None     # -2 % on the first bar
    out = risk.sync(day2 + timedelta(hours=1), {"AAA": D("44.9")})  # -5.1 % since the close
    assert out.breach is not None and out.breach[0] == "max_daily_loss"
    assert out.equity == D("94900")


def test_a_gap_down_at_the_open_counts_against_the_day(store: Store, account_id: int) -> None:
    # With daily bars every bar opens a day: its loss is measured from the day before.
    risk = view(store, account_id, RiskLimits(max_daily_loss=0.05))
    with store.transaction() as tx:
        book_fills(tx, account_id, [("AAA", "buy", D("1000"), D("50"), D("0"))])
    assert risk.sync(T0, {"AAA": D("50")}).breach is None
    out = risk.sync(T0 + timedelta(days=1), {"AAA": D("44")})  # -6 % overnight
    assert out.breach is not None and out.breach[0] == "max_daily_loss"


def test_without_account_rules_keeps_only_what_one_engine_can_judge() -> None:
    lim = RiskLimits(max_position=D("5"), max_gross_exposure=D("1"), max_daily_loss=0.1,
                     max_drawdown=0.2, max_orders_per_minute=3)
    local = without_account_rules(lim)
    assert (local.max_gross_exposure, local.max_daily_loss, local.max_drawdown) == (None, None, None)
    assert (local.max_position, local.max_orders_per_minute) == (D("5"), 3)


FILL = st.tuples(st.sampled_from(["AAA", "BBB"]), st.sampled_from(["buy", "sell"]),
                 st.decimals(min_value=D("0.001"), max_value=D("500"), places=3),
                 st.decimals(min_value=D("0.01"), max_value=D("1000"), places=2),
                 st.decimals(min_value=D("0"), max_value=D("5"), places=2))


@settings(max_examples=25, deadline=None)
@given(batches=st.lists(st.lists(FILL, min_size=1, max_size=4), min_size=1, max_size=4))
def test_booking_fills_in_batches_equals_one_portfolio_taking_them_all(
        tmp_path_factory: pytest.TempPathFactory, batches: list) -> None:
    # Two engines' flushes interleave on one account: the stored account must be exactly
    # what one exact portfolio holds after every fill (no lost update, no float drift).
    s = Store(f"sqlite:///{tmp_path_factory.mktemp('book') / 'db.sqlite'}")
    s.upgrade()
    with s.transaction() as tx:
        aid = tx.ensure_account("acct", D("100000"))
    reference = Portfolio(D("100000"))
    for batch in batches:
        with s.transaction() as tx:
            tx.lock_account(aid)
            book_fills(tx, aid, batch)
        for fill in batch:
            reference.apply_fill(*fill)
    assert s.get_account("acct").cash == reference.cash
    held = {p.symbol: p.quantity for p in s.positions("acct")}
    assert held == {sym: pos.quantity for sym, pos in reference.positions.items()}
    s.close()
