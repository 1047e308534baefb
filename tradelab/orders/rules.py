"""Venue rules applied before an order is sent: lot step, tick size, minimums.

A venue refuses an order whose quantity is not a multiple of its lot step, whose
price is not on its tick grid, or whose size is under its minimum quantity or
minimum notional. tradelab applies the venue's own rules first, so such an order
is either made conform or denied with the reason, and never sent to be rejected.

The rounding rule (documented, and the same for every venue):

* **Quantity**: rounded *down* to a multiple of ``step`` (never more than the
  strategy sized, so never more cash than it allowed), then capped at
  ``max_quantity`` when the venue has one.
* **Limit price**: a buy's limit rounded *down* to the tick, a sell's *up*
  (never a worse price than the strategy asked for).
* **Stop price**: a sell stop (protecting a long) rounded *down*, a buy stop *up*
  (the stop triggers no earlier than asked).
* After rounding: quantity 0 or under ``min_quantity``, or notional
  (quantity × the price the order is expected to fill at) under
  ``min_notional`` → :class:`~tradelab.orders.brokers.VenueRuleDenied` naming the
  rule, the values and the symbol.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from tradelab.money import MONEY_CONTEXT, ZERO
from tradelab.orders.brokers import VenueRuleDenied


@dataclass(frozen=True, slots=True)
class VenueRules:
    """One market's trading rules (from the venue's market data).

    ``step``/``tick`` 0 means "any quantity / any price"; minimums 0 mean none.
    """

    symbol: str
    step: Decimal = ZERO
    tick: Decimal = ZERO
    min_quantity: Decimal = ZERO
    max_quantity: Decimal = ZERO
    min_notional: Decimal = ZERO
    #: False for a spot market without margin: no sell beyond the position held.
    shortable: bool = False


def _to_grid(x: Decimal, grid: Decimal, rounding: str) -> Decimal:
    if grid <= 0:
        return x
    units = (x / grid).to_integral_value(rounding=rounding, context=MONEY_CONTEXT)
    return MONEY_CONTEXT.multiply(units, grid).normalize(MONEY_CONTEXT) if units else ZERO


def conform_quantity(rules: VenueRules, quantity: Decimal) -> Decimal:
    """``quantity`` rounded down to the lot step and capped at the maximum (not checked)."""
    q = _to_grid(quantity, rules.step, ROUND_FLOOR)
    if rules.max_quantity > 0 and q > rules.max_quantity:
        q = _to_grid(rules.max_quantity, rules.step, ROUND_FLOOR)
    return q


def conform_price(rules: VenueRules, price: Decimal, side: str, kind: str = "limit") -> Decimal:
    """A limit or stop price on the tick grid, rounded in the order's favour (see module doc)."""
    down = (side == "buy") if kind == "limit" else (side == "sell")
    return _to_grid(price, rules.tick, ROUND_FLOOR if down else ROUND_CEILING)


def conform(rules: VenueRules, side: str, quantity: Decimal, expected_price: Decimal,
            *, limit_price: Decimal | None = None,
            stop_price: Decimal | None = None) -> tuple[Decimal, Decimal | None, Decimal | None]:
    """``(quantity, limit_price, stop_price)`` made to satisfy ``rules``.

    Raises
    ------
    VenueRuleDenied
        When no conforming order exists (under the minimum quantity or notional).
    """
    q = conform_quantity(rules, quantity)
    limit = conform_price(rules, limit_price, side, "limit") if limit_price is not None else None
    stop = conform_price(rules, stop_price, side, "stop") if stop_price is not None else None
    sym = rules.symbol
    if q <= 0:
        raise VenueRuleDenied(f"{sym}: quantity {quantity} rounds to 0 at lot step {rules.step}")
    if rules.min_quantity > 0 and q < rules.min_quantity:
        raise VenueRuleDenied(f"{sym}: quantity {q} is under the venue's minimum quantity "
                              f"{rules.min_quantity}")
    price = limit if limit is not None else expected_price
    notional = MONEY_CONTEXT.multiply(q, price)
    if rules.min_notional > 0 and notional < rules.min_notional:
        raise VenueRuleDenied(f"{sym}: notional {notional.normalize()} ({q} x {price}) is under "
                              f"the venue's minimum notional {rules.min_notional}")
    return q, limit, stop


__all__ = ["VenueRules", "conform", "conform_price", "conform_quantity"]
