from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradelab.orders.model import IllegalTransitionError, Order, OrderState, client_order_id

T = datetime(2020, 1, 2, tzinfo=UTC)


def _order() -> Order:
    return Order("cid-1", "acc", "s", "SPX", "buy", Decimal(1), T)


def test_legal_path_to_filled() -> None:
    o = _order()
    for to in (OrderState.SUBMITTED, OrderState.PARTIALLY_FILLED, OrderState.PARTIALLY_FILLED,
               OrderState.FILLED):
        o.transition(to, T)
    assert o.state is OrderState.FILLED and not o.is_open


@pytest.mark.parametrize(("path", "bad"), [
    ((), OrderState.FILLED),
    ((OrderState.SUBMITTED, OrderState.FILLED), OrderState.CANCELLED),
    ((OrderState.REJECTED,), OrderState.SUBMITTED),
    ((OrderState.SUBMITTED, OrderState.PARTIALLY_FILLED), OrderState.SUBMITTED),
])
def test_illegal_transition_names_order_and_states(path, bad) -> None:
    o = _order()
    for to in path:
        o.transition(to, T)
    before = o.state
    with pytest.raises(IllegalTransitionError) as info:
        o.transition(bad, T)
    msg = str(info.value)
    assert "cid-1" in msg and f"{before.value} -> {bad.value}" in msg
    assert o.state is before


def test_client_order_ids_are_deterministic_and_distinct() -> None:
    a = client_order_id("7", "sma_cross", "SPX", T, "buy")
    assert a == client_order_id("7", "sma_cross", "SPX", T, "buy")
    assert a != client_order_id("7", "sma_cross", "SPX", T, "sell")
    assert a != client_order_id("8", "sma_cross", "SPX", T, "buy")
