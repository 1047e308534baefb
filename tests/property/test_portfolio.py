"""cash + mark-to-market value changes only by price moves and by exactly the fees paid."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradelab.money import money_context
from tradelab.portfolio import Portfolio

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=10)
quantities = st.decimals(min_value=Decimal("0.0000000001"), max_value=Decimal("10000"), places=10)
fees = st.decimals(min_value=Decimal(0), max_value=Decimal("500"), places=10)
fill = st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["buy", "sell"]), quantities, prices, fees,
                 prices)  # the last price is the new mark of the symbol after the fill


@settings(max_examples=300, deadline=None)
@given(cash=st.decimals(min_value=Decimal(0), max_value=Decimal("1e9"), places=10),
       fills=st.lists(fill, max_size=40))
def test_value_is_conserved_up_to_price_moves_and_fees(cash: Decimal, fills: list) -> None:
    with money_context():  # the test's own arithmetic at the portfolio's precision
        _check(cash, fills)


def _check(cash: Decimal, fills: list) -> None:
    pf = Portfolio(cash)
    marks: dict[str, Decimal] = {}
    for symbol, side, qty, price, fee, new_mark in fills:
        before = pf.equity
        held = pf.position(symbol)
        pf.apply_fill(symbol, side, qty, price, fee)
        # At the fill price, the trade itself only costs the fees.
        pf.mark(symbol, price)
        marked_at_fill = pf.equity
        signed = qty if side == "buy" else -qty
        old_mark = marks.get(symbol, price)
        assert marked_at_fill == before + held * (price - old_mark) - fee
        pf.mark(symbol, new_mark)
        marks[symbol] = new_mark
        assert pf.equity == marked_at_fill + (held + signed) * (new_mark - price)
    assert pf.fees_paid == sum((f[4] for f in fills), Decimal(0))
