"""Positions, cash, realized/unrealized P&L and equity, in exact Decimal arithmetic.

Accounting identity (checked by ``tests/property/test_portfolio.py``): a fill of
signed quantity *q* at price *p* with fees *f* changes cash by ``-(q*p) - f``
and the position by *q*, so ``cash + Σ quantity × mark`` changes by
``q × (mark - p) - f``: only by price moves and by exactly the fees paid.
See :mod:`tradelab.money` for the precision policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradelab.money import MONEY_CONTEXT, ZERO, to_decimal


@dataclass
class Position:
    """A signed position (long > 0, short < 0) with its cost basis."""

    symbol: str
    quantity: Decimal = ZERO
    cost: Decimal = ZERO          # signed: quantity × average entry price, exact
    realized_pnl: Decimal = ZERO  # before fees; fees are tracked on the portfolio
    last_price: Decimal = ZERO

    @property
    def avg_price(self) -> Decimal:
        if not self.quantity:
            return ZERO
        return MONEY_CONTEXT.divide(self.cost, self.quantity)

    @property
    def market_value(self) -> Decimal:
        return MONEY_CONTEXT.multiply(self.quantity, self.last_price)

    @property
    def unrealized_pnl(self) -> Decimal:
        return MONEY_CONTEXT.subtract(self.market_value, self.cost)


class Portfolio:
    """Cash and positions of one account.

    Parameters
    ----------
    cash
        Starting cash.
    account
        Account name (for events and the store).
    """

    def __init__(self, cash: Decimal | float | int, account: str = "paper") -> None:
        self.account = account
        self.cash = to_decimal(cash)
        self.positions: dict[str, Position] = {}
        self.fees_paid = ZERO

    # -- fills ------------------------------------------------------------------------
    def apply_fill(self, symbol: str, side: str, quantity: Decimal, price: Decimal,
                   fees: Decimal) -> Position:
        """Book a fill; return the updated position.

        ``side`` is ``"buy"`` or ``"sell"``; ``quantity`` is positive.
        """
        if quantity <= 0:
            raise ValueError(f"fill quantity must be positive, got {quantity}")
        if side not in ("buy", "sell"):
            raise ValueError(f"fill side must be 'buy' or 'sell', got {side!r}")
        ctx = MONEY_CONTEXT
        signed = quantity if side == "buy" else -quantity
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        notional = ctx.multiply(signed, price)
        self.cash = ctx.subtract(ctx.subtract(self.cash, notional), fees)
        self.fees_paid = ctx.add(self.fees_paid, fees)
        old = pos.quantity
        new = ctx.add(old, signed)
        if old == 0 or (old > 0) == (signed > 0):
            pos.cost = ctx.add(pos.cost, notional)          # opening or adding
        elif (new > 0) == (old > 0) or new == 0:
            # Reducing: remove the proportional cost, realize the difference.
            removed = ctx.divide(ctx.multiply(pos.cost, -signed), old) if new else pos.cost
            pos.realized_pnl = ctx.add(pos.realized_pnl, ctx.subtract(ctx.multiply(-signed, price), removed))
            pos.cost = ctx.subtract(pos.cost, removed)
        else:
            # Flipping through zero: close the old position, open the rest.
            pos.realized_pnl = ctx.add(pos.realized_pnl,
                                       ctx.subtract(ctx.multiply(old, price), pos.cost))
            pos.cost = ctx.multiply(new, price)
        pos.quantity = new
        if not pos.last_price:
            pos.last_price = price
        return pos

    # -- marks ------------------------------------------------------------------------
    def mark(self, symbol: str, price: float | Decimal) -> None:
        """Set the mark price of ``symbol`` (no-op for symbols without a position)."""
        pos = self.positions.get(symbol)
        if pos is not None:  # a bar's close is a float: to_decimal's conversion, inline
            pos.last_price = Decimal(repr(price)) if type(price) is float else to_decimal(price)

    def position(self, symbol: str) -> Decimal:
        pos = self.positions.get(symbol)
        return pos.quantity if pos is not None else ZERO

    @property
    def positions_value(self) -> Decimal:
        total = ZERO
        for pos in self.positions.values():
            if pos.quantity:
                total = MONEY_CONTEXT.add(total, pos.market_value)
        return total

    @property
    def gross_exposure(self) -> Decimal:
        total = ZERO
        for pos in self.positions.values():
            if pos.quantity:
                total = MONEY_CONTEXT.add(total, abs(pos.market_value))
        return total

    @property
    def equity(self) -> Decimal:
        return MONEY_CONTEXT.add(self.cash, self.positions_value)

    @property
    def realized_pnl(self) -> Decimal:
        return sum((p.realized_pnl for p in self.positions.values()), ZERO)

    @property
    def unrealized_pnl(self) -> Decimal:
        return sum((p.unrealized_pnl for p in self.positions.values() if p.quantity), ZERO)

    # -- recovery ---------------------------------------------------------------------
    def restore(self, cash: Decimal, positions: list[dict]) -> None:
        """Replace the state with what the store holds (``quantity``, ``avg_price``, ...)."""
        self.cash = to_decimal(cash)
        self.positions = {}
        for row in positions:
            qty = to_decimal(row["quantity"])
            avg = to_decimal(row.get("avg_price") or 0)
            self.positions[row["symbol"]] = Position(
                row["symbol"], qty, MONEY_CONTEXT.multiply(qty, avg),
                to_decimal(row.get("realized_pnl") or 0),
                to_decimal(row.get("last_price") or avg))
