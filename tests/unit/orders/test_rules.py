"""Venue rules before submit: the documented rounding, and denial with the reason."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradelab.orders.brokers import VenueRuleDenied
from tradelab.orders.rules import VenueRules, conform, conform_price, conform_quantity

BTC = VenueRules("BTC/USDT", step=Decimal("0.00001"), tick=Decimal("0.01"),
                 min_quantity=Decimal("0.00001"), min_notional=Decimal("5"))


def test_quantity_rounds_down_to_the_lot_step() -> None:
    assert conform_quantity(BTC, Decimal("0.123456789")) == Decimal("0.12345")
    assert conform_quantity(VenueRules("X", step=Decimal(1)), Decimal("7.99")) == 7


def test_prices_round_in_the_orders_favour() -> None:
    assert conform_price(BTC, Decimal("100.019"), "buy") == Decimal("100.01")   # limit buy: down
    assert conform_price(BTC, Decimal("100.011"), "sell") == Decimal("100.02")  # limit sell: up
    assert conform_price(BTC, Decimal("100.019"), "sell", "stop") == Decimal("100.01")
    assert conform_price(BTC, Decimal("100.011"), "buy", "stop") == Decimal("100.02")


def test_under_min_notional_is_denied_with_the_reason() -> None:
    with pytest.raises(VenueRuleDenied, match=r"BTC/USDT: notional .* under the venue's minimum notional 5"):
        conform(BTC, "buy", Decimal("0.0001"), Decimal("40000"))


def test_quantity_rounding_to_zero_is_denied() -> None:
    with pytest.raises(VenueRuleDenied, match="rounds to 0 at lot step 1"):
        conform(VenueRules("AAPL", step=Decimal(1)), "buy", Decimal("0.4"), Decimal(190))


@given(st.decimals(min_value="0.00001", max_value="1000", places=8),
       st.decimals(min_value="1", max_value="100000", places=2))
def test_conformed_orders_sit_on_the_grid_and_never_exceed_the_request(qty, price) -> None:
    try:
        q, _, _ = conform(BTC, "buy", qty, price)
    except VenueRuleDenied:
        assert conform_quantity(BTC, qty) * price < BTC.min_notional or conform_quantity(BTC, qty) == 0
        return
    assert q <= qty and (q / BTC.step) == (q / BTC.step).to_integral_value()
    assert q * price >= BTC.min_notional
