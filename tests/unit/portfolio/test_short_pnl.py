"""The Decimal portfolio holds shorts: cash, equity and realized P&L conserved through
short entries, partial covers and reversals (Hypothesis)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradelab.money import MONEY_CONTEXT, book
from tradelab.portfolio import Portfolio

CASH = Decimal(100_000)
prices = st.decimals(min_value=Decimal("1"), max_value=Decimal("5000"), places=4)
quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("500"), places=3)
fees = st.decimals(min_value=Decimal(0), max_value=Decimal("25"), places=2)
fills = st.lists(st.tuples(st.sampled_from(["buy", "sell"]), quantities, prices, fees),
                 min_size=1, max_size=30)


@settings(max_examples=1000, deadline=None)
@given(fills=fills, mark=prices)
def test_cash_and_positions_are_conserved_but_fees(fills, mark) -> None:
    pf = Portfolio(CASH)
    flow = Decimal(0)  # Σ signed quantity x (mark - fill price): what the fills made
    paid = Decimal(0)
    for side, qty, price, fee in fills:
        pf.apply_fill("X", side, qty, price, fee)
        signed = qty if side == "buy" else -qty
        flow += signed * (mark - price)
        paid += fee
    pf.mark("X", mark)
    assert pf.equity == CASH - paid + flow
    # realized + unrealized P&L is what the fills made (fees are the portfolio's, apart); a
    # partial cover removes its share of the cost by a division, so they agree to far below
    # the booking quantum (1e-10) rather than to the last of 50 digits
    pnl = MONEY_CONTEXT.add(pf.realized_pnl, pf.unrealized_pnl)
    assert abs(pnl - flow) <= Decimal("1e-18")
    assert pf.fees_paid == paid


@settings(max_examples=200, deadline=None)
@given(qty=quantities, entry=prices, covers=st.lists(st.tuples(st.integers(1, 4), prices),
                                                    min_size=1, max_size=4),
       reverse_to=quantities, exit_price=prices)
def test_a_short_partially_covered_then_reversed(qty, entry, covers, reverse_to, exit_price) -> None:
    pf = Portfolio(CASH)
    pf.apply_fill("X", "sell", qty, entry, Decimal(0))
    assert pf.position("X") == -qty and pf.cash == CASH + qty * entry
    held, realized = qty, Decimal(0)
    for parts, price in covers:  # cover a fraction of what is still short
        part = book(held / (parts + 1))
        if part <= 0 or part >= held:
            continue
        pf.apply_fill("X", "buy", part, price, Decimal(0))
        realized += part * (entry - price)  # a short gains when it buys back lower
        held -= part
        assert pf.position("X") == -held
        assert abs(pf.realized_pnl - realized) <= Decimal("1e-30")
    # one buy through zero: cover the rest and go long reverse_to
    pf.apply_fill("X", "buy", held + reverse_to, exit_price, Decimal(0))
    realized += held * (entry - exit_price)
    pos = pf.positions["X"]
    assert pf.position("X") == reverse_to
    assert pos.avg_price == exit_price  # the new long's basis is the reversal's price
    assert abs(pf.realized_pnl - realized) <= Decimal("1e-30")
