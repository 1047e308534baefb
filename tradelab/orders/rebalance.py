"""Target weights → orders: the one :func:`rebalance` research and the engine share.

Given target weights per symbol, the current positions, prices and the account's
equity, :func:`rebalance` returns the orders that move the book to the targets.
It is pure (no I/O, no state) and exact (:class:`~decimal.Decimal` in
:data:`~tradelab.money.MONEY_CONTEXT`).

Rules
-----
* **Target quantity** of a symbol: ``weight × equity / price`` rounded **down**
  (towards zero) to the symbol's lot step; the order is the difference to the
  position (a multiple of the lot when the position is; otherwise its size is
  rounded down to the lot too). The resulting position is within one lot of the
  target and never beyond it, and since every target is rounded towards zero, the
  book's long side never costs more than ``sum of long weights × equity`` (a reducing
  sell rounds *up* to reach its rounded target, so the buys that follow are funded).
  Lot step 0 means fractional quantities, booked at :data:`~tradelab.money.SCALE`
  places (rounded down too).
* **Order of the orders**: reducing orders first — sells of longs, then buys that
  cover shorts — then opening orders: short sells, then buys of longs. A position
  that flips side is split into its closing and its opening order.
* **Cash never goes negative**: sells add ``q × p × (1 - slippage) × (1 - fee)``
  minus the fixed fee (a short sale's proceeds count as cash, as in vectorbt's
  cash account without ``lock_cash``); buys cost ``q × p × (1 + slippage) × (1 + fee)``
  plus the fixed fee. When a group of buys (the covers, then the opening buys) costs
  more than the cash at that point, every buy of the group is scaled down by one
  common factor (then rounded down to its lot), so they share the shortfall.
* **Venue rules** (``lots`` as :class:`~tradelab.orders.rules.VenueRules`): an order
  under the minimum quantity or notional is not sent (the position stays off
  target by less than that minimum); ``max_quantity`` caps an order.
* A symbol outside ``tradable`` gets no order (its bar is missing; see
  :mod:`tradelab.data.universe`). A symbol held but absent from ``targets`` has
  target 0.
* Orders whose notional is under ``threshold × equity`` are not sent (a drift band;
  default 0: every lot counts).
* Without fees, rebalancing a book this function has just balanced (at the same
  prices) sends nothing: the equity is unchanged and every position is within a lot
  of its target. Fees paid lower the equity, which moves each target by
  ``weight × fees / price`` units: more than a lot when that is large, so a second
  call may send small orders; ``threshold`` absorbs them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Literal

from tradelab.errors import TradelabError
from tradelab.money import MONEY_CONTEXT, ONE, QUANTUM, ZERO
from tradelab.orders.rules import VenueRules, conform_quantity

Side = Literal["buy", "sell"]
Lots = Decimal | int | Mapping[str, "Decimal | int | VenueRules"]

_C = MONEY_CONTEXT


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """One order :func:`rebalance` wants sent: a market order for ``quantity`` (> 0)."""

    symbol: str
    side: Side
    quantity: Decimal
    #: True for an order that reduces the size of a position (sell of a long, cover of a short).
    reducing: bool

    def signed(self) -> Decimal:
        """``+quantity`` for a buy, ``-quantity`` for a sell."""
        return self.quantity if self.side == "buy" else -self.quantity


class RebalanceError(TradelabError):
    """Bad input to :func:`rebalance` (the message names the field and the value)."""


def _rules(lots: Lots, symbol: str) -> VenueRules:
    value = lots.get(symbol, ZERO) if isinstance(lots, Mapping) else lots
    if isinstance(value, VenueRules):
        return value
    step = Decimal(value)
    if step < 0:
        raise RebalanceError(f"lots[{symbol}] = {step}: must be >= 0")
    return VenueRules(symbol, step=step)


def _to_lot(rules: VenueRules, quantity: Decimal) -> Decimal:
    """``quantity`` (>= 0) down to the lot (or to SCALE places for fractional symbols)."""
    if rules.step > 0:
        units = (quantity / rules.step).to_integral_value(rounding=ROUND_FLOOR, context=_C)
        return _C.multiply(units, rules.step) if units else ZERO
    return quantity.quantize(QUANTUM, rounding=ROUND_FLOOR, context=_C)


def _round_down(rules: VenueRules, quantity: Decimal) -> Decimal:
    """An order's size (>= 0) down to the lot and capped at the venue's maximum."""
    if rules.step > 0:
        return conform_quantity(rules, quantity)
    q = _to_lot(rules, quantity)
    return min(q, rules.max_quantity) if rules.max_quantity > 0 else q


def _check(name: str, value: Decimal, *, positive: bool = False, below_one: bool = False) -> None:
    if not value.is_finite() or value < 0 or (positive and value == 0) or (below_one and value >= 1):
        bound = "> 0" if positive else "in [0, 1)" if below_one else ">= 0"
        raise RebalanceError(f"{name} = {value}: must be {bound}")


def rebalance(targets: Mapping[str, Decimal], positions: Mapping[str, Decimal],
              prices: Mapping[str, Decimal], equity: Decimal, *, lots: Lots = ZERO,
              fee: Decimal = ZERO, fixed_fee: Decimal = ZERO, slippage: Decimal = ZERO,
              tradable: Collection[str] | None = None, threshold: Decimal = ZERO,
              ) -> list[OrderIntent]:
    """The orders that move ``positions`` to ``targets`` (see the module docstring).

    Parameters
    ----------
    targets
        Symbol → target weight (fraction of ``equity``; negative = short).
    positions
        Symbol → quantity held (negative = short).
    prices
        Symbol → the price the orders are expected to fill at (before slippage); needed
        for every symbol in ``targets`` or ``positions`` that is traded.
    equity
        Cash plus the positions marked at ``prices``; the cash is derived from it.
    lots
        Lot step of every symbol (one number, or per symbol: a number or
        :class:`~tradelab.orders.rules.VenueRules`); 0 = fractional.
    fee, fixed_fee, slippage
        Proportional fee, fee per order and slippage (the execution convention).
    tradable
        Symbols that may be traded now (default: all).
    threshold
        Orders with notional under ``threshold × equity`` are not sent.

    Returns
    -------
    list of OrderIntent
        Reducing orders first, then opening ones; nothing when the book is on target.

    Raises
    ------
    RebalanceError
        A non-finite or out-of-range input, naming it.
    """
    with localcontext(_C):
        for name, v in (("equity", equity), ("fee", fee), ("fixed_fee", fixed_fee),
                        ("slippage", slippage), ("threshold", threshold)):
            _check(name, Decimal(v), below_one=name in ("fee", "slippage"))
        for s, w in targets.items():
            if not Decimal(w).is_finite():
                raise RebalanceError(f"targets[{s}] = {w}: must be a finite number")
        for s, q in positions.items():
            if Decimal(q) != 0 and s not in prices:
                raise RebalanceError(f"prices[{s}]: missing (needed to mark the position {q})")
        symbols = list(dict.fromkeys([*positions, *targets]))
        wanted: dict[str, Decimal] = {}
        for s in symbols:
            held = Decimal(positions.get(s, ZERO))
            w = Decimal(targets.get(s, ZERO))
            if tradable is not None and s not in tradable:
                continue
            if w == 0 and held == 0:
                continue
            if s not in prices:
                raise RebalanceError(f"prices[{s}]: missing (symbol in targets or positions)")
            p = Decimal(prices[s])
            _check(f"prices[{s}]", p, positive=True)
            rules = _rules(lots, s)
            exact = w * equity / p
            target = _to_lot(rules, abs(exact)).copy_sign(exact) if exact else ZERO
            delta = target - held
            if delta == 0:
                continue
            size = _round_down(rules, abs(delta))
            if size > 0:
                wanted[s] = size if delta > 0 else -size
        return _sequence(wanted, positions, prices, equity, lots, fee, fixed_fee, slippage,
                         threshold)


def _sequence(wanted: dict[str, Decimal], positions: Mapping[str, Decimal],
              prices: Mapping[str, Decimal], equity: Decimal, lots: Lots, fee: Decimal,
              fixed_fee: Decimal, slippage: Decimal, threshold: Decimal) -> list[OrderIntent]:
    """Split into reducing/opening parts, order them and keep the cash >= 0."""
    reduce_sells: list[OrderIntent] = []
    covers: list[OrderIntent] = []
    open_sells: list[OrderIntent] = []
    open_buys: list[OrderIntent] = []
    for s, q in wanted.items():
        held = Decimal(positions.get(s, ZERO))
        if q < 0:
            closing = min(-q, max(held, ZERO))
            if closing > 0:
                reduce_sells.append(OrderIntent(s, "sell", closing, True))
            if -q - closing > 0:
                open_sells.append(OrderIntent(s, "sell", -q - closing, False))
        else:
            closing = min(q, max(-held, ZERO))
            if closing > 0:
                covers.append(OrderIntent(s, "buy", closing, True))
            if q - closing > 0:
                open_buys.append(OrderIntent(s, "buy", q - closing, False))
    cash = equity - sum((Decimal(positions[s]) * Decimal(prices[s]) for s in positions
                         if Decimal(positions[s]) != 0), ZERO)
    out: list[OrderIntent] = []
    for group in (reduce_sells, covers, open_sells, open_buys):
        group = [o for o in group
                 if o.quantity * Decimal(prices[o.symbol]) >= threshold * equity
                 and _meets_minimums(_rules(lots, o.symbol), o, Decimal(prices[o.symbol]))]
        if group and group[0].side == "buy":
            group = _afford(group, cash, prices, lots, fee, fixed_fee, slippage)
        for o in group:
            cash += _cash_flow(o, Decimal(prices[o.symbol]), fee, fixed_fee, slippage)
        out.extend(group)
    return out


def _meets_minimums(rules: VenueRules, order: OrderIntent, price: Decimal) -> bool:
    if rules.min_quantity > 0 and order.quantity < rules.min_quantity:
        return False
    return not (rules.min_notional > 0 and order.quantity * price < rules.min_notional)


def _cash_flow(order: OrderIntent, price: Decimal, fee: Decimal, fixed_fee: Decimal,
               slippage: Decimal) -> Decimal:
    """Cash change of one order (negative for a buy)."""
    if order.side == "buy":
        fill = price * (ONE + slippage)
        return -(order.quantity * fill * (ONE + fee) + fixed_fee)
    fill = price * (ONE - slippage)
    return order.quantity * fill * (ONE - fee) - fixed_fee


def _afford(buys: list[OrderIntent], cash: Decimal, prices: Mapping[str, Decimal], lots: Lots,
            fee: Decimal, fixed_fee: Decimal, slippage: Decimal) -> list[OrderIntent]:
    """The buys scaled by one factor (then rounded down to lots) to cost at most ``cash``."""
    def cost(group: list[OrderIntent]) -> Decimal:
        return -sum((_cash_flow(o, Decimal(prices[o.symbol]), fee, fixed_fee, slippage)
                     for o in group), ZERO)

    total = cost(buys)
    if total <= cash:
        return buys
    variable = total - fixed_fee * len(buys)
    room = cash - fixed_fee * len(buys)
    factor = room / variable if room > 0 and variable > 0 else ZERO
    scaled = []
    for o in buys:
        q = _round_down(_rules(lots, o.symbol), o.quantity * factor)
        if q > 0:
            scaled.append(OrderIntent(o.symbol, o.side, q, o.reducing))
    # Dropping an order frees its fixed fee; rounding down only lowers the cost, so the
    # scaled group always fits (asserted, as a guard against a future change of the rules).
    if cost(scaled) > cash:
        raise AssertionError(f"rebalance: scaled buys cost {cost(scaled)} > cash {cash}")
    return scaled


def apply_orders(orders: list[OrderIntent], positions: Mapping[str, Decimal],
                 prices: Mapping[str, Decimal], cash: Decimal, *, fee: Decimal = ZERO,
                 fixed_fee: Decimal = ZERO, slippage: Decimal = ZERO,
                 ) -> tuple[dict[str, Decimal], Decimal, Decimal]:
    """Book ``orders`` filled at ``prices`` under the convention :func:`rebalance` assumes.

    Returns
    -------
    (positions, cash, fees)
        The new positions (zeros dropped), cash and the fees paid.
    """
    with localcontext(_C):
        book = {s: Decimal(q) for s, q in positions.items()}
        paid = ZERO
        for o in orders:
            p = Decimal(prices[o.symbol])
            flow = _cash_flow(o, p, fee, fixed_fee, slippage)
            fill = p * (ONE + slippage) if o.side == "buy" else p * (ONE - slippage)
            paid += o.quantity * fill * fee + fixed_fee
            cash += flow
            book[o.symbol] = book.get(o.symbol, ZERO) + o.signed()
        return {s: q for s, q in book.items() if q != 0}, cash, paid


def net_orders(orders: list[OrderIntent]) -> list[OrderIntent]:
    """One order per symbol (the signed sum), sells first, in first-seen order.

    A flip from long to short is a closing and an opening order in :func:`rebalance`'s
    list; a venue (and vectorbt, one order per symbol and bar) gets their sum. Research
    and the engine both send this list, so their fills are the same.
    """
    net: dict[str, Decimal] = {}
    for o in orders:
        net[o.symbol] = net.get(o.symbol, ZERO) + o.signed()
    merged = [OrderIntent(s, "buy" if q > 0 else "sell", abs(q), False)
              for s, q in net.items() if q != 0]
    return sorted(merged, key=lambda o: o.side != "sell")


__all__ = ["OrderIntent", "RebalanceError", "apply_orders", "net_orders", "rebalance"]
