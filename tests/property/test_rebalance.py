"""rebalance(): targets → orders → the book lands within one lot of the targets, cash
stays >= 0, value is conserved but for the fees, reducing orders go first, and a
balanced book (without fees) is left alone.

The orders are booked by the engine's Decimal :class:`~tradelab.portfolio.Portfolio`
(a real part, not the rebalance module's own arithmetic)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tradelab.money import money_context
from tradelab.orders.rebalance import OrderIntent, RebalanceError, apply_orders, rebalance
from tradelab.orders.rules import VenueRules
from tradelab.portfolio import Portfolio

SYMBOLS = ("A", "B", "C", "D")
prices_st = st.decimals(min_value=Decimal("0.5"), max_value=Decimal("2000"), places=2)
positions_st = st.integers(min_value=-40, max_value=40)
weights_st = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)
lots_st = st.sampled_from([Decimal(1), Decimal("0.1"), Decimal("0.001"), Decimal(0)])
fees_st = st.sampled_from([Decimal(0), Decimal("0.0005"), Decimal("0.01")])


@st.composite
def books(draw: st.DrawFn, long_budget: float, capitalized: bool = False) -> dict:
    n = draw(st.integers(min_value=1, max_value=len(SYMBOLS)))
    syms = SYMBOLS[:n]
    prices = {s: draw(prices_st) for s in syms}
    positions = {s: Decimal(draw(positions_st)) for s in syms}
    value = sum(positions[s] * prices[s] for s in syms)
    # Cash >= 0 and enough of it that the equity is positive.
    cash = draw(st.decimals(min_value=Decimal(1), max_value=Decimal(200_000), places=2))
    cash += max(Decimal(0), -value)
    if capitalized:  # cash covers the whole book twice: no buy can be short of cash
        cash += 2 * sum(abs(positions[s] * prices[s]) for s in syms)
    raw = [draw(weights_st) for _ in syms]
    gross = sum(abs(w) for w in raw)
    scale = 1.0 / gross if gross > 1 else 1.0
    weights = [w * scale for w in raw]
    longs = sum(w for w in weights if w > 0)
    if longs > long_budget:  # keep the long side within the budget
        weights = [w * long_budget / longs if w > 0 else w for w in weights]
    targets = {s: Decimal(repr(round(w, 6))) for s, w in zip(syms, weights, strict=True)}
    return {"prices": prices, "positions": positions, "cash": cash, "targets": targets,
            "equity": cash + value}


def _book(book: dict, orders: list[OrderIntent], fee: Decimal) -> tuple[Portfolio, Decimal]:
    pf = Portfolio(book["cash"])
    for s, q in book["positions"].items():
        if q:
            pf.apply_fill(s, "buy" if q > 0 else "sell", abs(q), book["prices"][s], Decimal(0))
    pf.cash = book["cash"]  # the opening fills above only set up the book
    paid = Decimal(0)
    for o in orders:
        fees = o.quantity * book["prices"][o.symbol] * fee
        pf.apply_fill(o.symbol, o.side, o.quantity, book["prices"][o.symbol], fees)
        paid += fees
        assert pf.cash >= 0, f"cash {pf.cash} < 0 after {o}"
    for s, p in book["prices"].items():
        pf.mark(s, p)
    return pf, paid


@settings(max_examples=300, deadline=None)
@given(book=books(long_budget=0.5, capitalized=True), lot=lots_st, fee=fees_st)
def test_book_lands_within_one_lot_of_targets(book: dict, lot: Decimal, fee: Decimal) -> None:
    with money_context():
        orders = rebalance(book["targets"], book["positions"], book["prices"], book["equity"],
                           lots=lot, fee=fee)
        pf, paid = _book(book, orders, fee)
        # Conservation: at unchanged prices the value changes by exactly the fees paid.
        assert pf.equity == book["equity"] - paid
        # The long side costs at most its weights' share of the equity.
        longs = sum(max(pf.position(s), Decimal(0)) * p for s, p in book["prices"].items())
        assert longs <= sum(max(w, Decimal(0)) for w in book["targets"].values()) * book["equity"]
        step = lot if lot > 0 else Decimal("1e-10")
        for s, w in book["targets"].items():
            target_qty = w * book["equity"] / book["prices"][s]
            assert abs(pf.position(s) - target_qty) < step, (s, pf.position(s), target_qty)
            # Targets are rounded towards zero: never beyond the target, never the other side.
            assert abs(pf.position(s)) <= abs(target_qty) and pf.position(s) * target_qty >= 0
        for o in orders:
            assert o.quantity > 0
            if lot > 0:
                assert (o.quantity / lot) == (o.quantity / lot).to_integral_value()


@settings(max_examples=300, deadline=None)
@given(book=books(long_budget=1.0), lot=lots_st, fee=fees_st)
def test_cash_never_negative_and_reducing_orders_first(book: dict, lot: Decimal,
                                                      fee: Decimal) -> None:
    with money_context():
        orders = rebalance(book["targets"], book["positions"], book["prices"], book["equity"],
                           lots=lot, fee=fee)
        pf, paid = _book(book, orders, fee)  # asserts cash >= 0 after every order
        assert pf.equity == book["equity"] - paid
        flags = [o.reducing for o in orders]
        assert flags == sorted(flags, reverse=True), "an opening order before a reducing one"
        # Within the reducing group sells (of longs) come before covers, and within the
        # opening group short sales come before buys.
        for group in ([o for o in orders if o.reducing], [o for o in orders if not o.reducing]):
            sides = [o.side for o in group]
            assert sides == sorted(sides, key=lambda x: x != "sell")
        held = dict(book["positions"])
        for o in orders:
            before = held.get(o.symbol, Decimal(0))
            after = before + o.signed()
            if o.reducing:
                assert abs(after) < abs(before) and after * before >= 0
            held[o.symbol] = after
        # Apply_orders (the backtest's booking) agrees with the engine's portfolio.
        positions, cash, fees_paid = apply_orders(orders, book["positions"], book["prices"],
                                                  book["cash"], fee=fee)
        assert cash == pf.cash and fees_paid == paid
        assert all(positions.get(s, 0) == pf.position(s) for s in book["prices"])


@settings(max_examples=200, deadline=None)
@given(book=books(long_budget=0.5, capitalized=True), lot=lots_st)
def test_a_balanced_book_is_left_alone(book: dict, lot: Decimal) -> None:
    with money_context():
        orders = rebalance(book["targets"], book["positions"], book["prices"], book["equity"],
                           lots=lot)
        assume(orders)
        positions, cash, _ = apply_orders(orders, book["positions"], book["prices"], book["cash"])
        equity = cash + sum(q * book["prices"][s] for s, q in positions.items())
        assert equity == book["equity"]
        assert rebalance(book["targets"], positions, book["prices"], equity, lots=lot) == []


def test_a_flip_is_a_closing_then_an_opening_order() -> None:
    orders = rebalance({"A": Decimal("-0.5")}, {"A": Decimal(10)}, {"A": Decimal(10)},
                       Decimal(1000), lots=1)
    assert orders == [OrderIntent("A", "sell", Decimal(10), True),
                      OrderIntent("A", "sell", Decimal(50), False)]


def test_buys_share_a_cash_shortfall_and_venue_minimums_drop_small_orders() -> None:
    # Fully invested targets with 1% fees cannot all be bought: both buys shrink by the
    # same factor (then to whole units), and the cash stays >= 0.
    prices = {"A": Decimal(10), "B": Decimal(10)}
    orders = rebalance({"A": Decimal("0.5"), "B": Decimal("0.5")}, {}, prices, Decimal(1000),
                       lots=1, fee=Decimal("0.01"))
    assert [(o.symbol, o.quantity) for o in orders] == [("A", Decimal(49)), ("B", Decimal(49))]
    rules = {"A": VenueRules("A", step=Decimal(1), min_notional=Decimal(100))}
    small = rebalance({"A": Decimal("0.05")}, {}, {"A": Decimal(10)}, Decimal(1000), lots=rules)
    assert small == []  # 5 units = 50 < the minimum notional of 100


def test_untradable_symbols_get_no_order() -> None:
    orders = rebalance({"A": Decimal("0.5"), "B": Decimal("0.5")}, {"B": Decimal(3)},
                       {"A": Decimal(10), "B": Decimal(10)}, Decimal(1000), lots=1,
                       tradable={"A"})
    assert [o.symbol for o in orders] == ["A"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"equity": Decimal(-1)}, r"equity = -1: must be >= 0"),
    ({"fee": Decimal(1)}, r"fee = 1: must be in \[0, 1\)"),
    ({"targets": {"A": Decimal("NaN")}}, r"targets\[A\] = NaN"),
    ({"targets": {"Z": Decimal("0.1")}}, r"prices\[Z\]: missing"),
    ({"positions": {"Y": Decimal(1)}}, r"prices\[Y\]: missing"),
    ({"lots": Decimal(-1)}, r"lots\[A\] = -1"),
])
def test_bad_input_names_the_field(kwargs: dict, message: str) -> None:
    args = {"targets": {"A": Decimal("0.5")}, "positions": {}, "prices": {"A": Decimal(10)},
            "equity": Decimal(1000)}
    args.update(kwargs)
    with pytest.raises(RebalanceError, match=message):
        rebalance(args.pop("targets"), args.pop("positions"), args.pop("prices"),
                  args.pop("equity"), **args)
