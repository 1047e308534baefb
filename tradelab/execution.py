"""The execution convention shared by the backtester and the paper broker.

One frozen :class:`Execution` describes how a signal becomes a fill. Research
passes it to vectorbt, the paper broker applies it bar by bar; parity between
the two depends on both reading this one object.

Convention (explicit, never inferred):

* ``fill="next_open"`` (default): a signal on bar *t*'s close fills at bar
  *t+1*'s open; a signal on the last bar does not fill. ``fill="close"``: it
  fills at bar *t*'s close.
* Slippage moves the fill price against the trader: buys at
  ``price * (1 + slippage)``, sells at ``price * (1 - slippage)``.
* Fees per order: ``quantity * fill_price * fees + fixed_fees``, paid in cash.
* Sizing of an entry (long-only):
  ``size_type="percent"``: spend ``size`` (0–1] of the available cash, fees
  included: ``qty = (cash * size - fixed_fees) / (fill_price * (1 + fees))``;
  ``"value"``: ``qty = size / price`` where *price* is before slippage;
  ``"amount"``: ``qty = size`` units (reduced to what the cash affords).
  Exits sell the whole position.
* ``fractional=False`` rounds the quantity down to whole units.
* Entry and exit on the same bar cancel out (no order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

FillAt = Literal["next_open", "close"]
SizeType = Literal["amount", "value", "percent"]


@dataclass(frozen=True)
class Execution:
    """How signals become fills; see the module docstring for the arithmetic."""

    cash: float = 100_000.0
    fees: float = 0.0005
    fixed_fees: float = 0.0
    slippage: float = 0.0
    size: float = 1.0
    size_type: SizeType = "percent"
    fill: FillAt = "next_open"
    fractional: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not (self.cash > 0 and math.isfinite(self.cash)):
            problems.append(f"cash = {self.cash!r}: must be a positive number")
        if not 0 <= self.fees < 1:
            problems.append(f"fees = {self.fees!r}: must be in [0, 1)")
        if not self.fixed_fees >= 0:
            problems.append(f"fixed_fees = {self.fixed_fees!r}: must be >= 0")
        if not 0 <= self.slippage < 1:
            problems.append(f"slippage = {self.slippage!r}: must be in [0, 1)")
        if self.size_type not in ("amount", "value", "percent"):
            problems.append(f"size_type = {self.size_type!r}: expected amount, value or percent")
        elif not self.size > 0 or (self.size_type == "percent" and self.size > 1):
            bound = "(0, 1]" if self.size_type == "percent" else "> 0"
            problems.append(f"size = {self.size!r}: must be {bound} for size_type={self.size_type}")
        if self.fill not in ("next_open", "close"):
            problems.append(f"fill = {self.fill!r}: expected next_open or close")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_settings(cls, research: Any, **overrides: Any) -> Execution:
        """From :class:`tradelab.config.ResearchSettings`, with keyword overrides."""
        base = cls(cash=research.cash, fees=research.fees, fixed_fees=research.fixed_fees,
                   slippage=research.slippage, size=research.size, size_type=research.size_type,
                   fill=research.fill, fractional=research.fractional)
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **given) if given else base

    def fill_price(self, price: float, buy: bool) -> float:
        """The price after slippage."""
        return price * (1.0 + self.slippage) if buy else price * (1.0 - self.slippage)

    def entry_quantity(self, cash: float, price: float) -> float:
        """Units bought at raw ``price`` with ``cash`` available (float, as vectorbt does).

        The engine converts the result to Decimal; computing it with the same float
        operations as vectorbt is what keeps whole-unit rounding identical.
        """
        fill = self.fill_price(price, buy=True)
        if self.size_type == "percent":
            qty = (cash * self.size - self.fixed_fees) / (fill * (1.0 + self.fees))
        else:
            qty = self.size / price if self.size_type == "value" else self.size
            affordable = (cash - self.fixed_fees) / (fill * (1.0 + self.fees))
            qty = min(qty, affordable)
        if not self.fractional:
            qty = math.floor(qty + 1e-9)  # tolerate float noise just below a whole unit
        return max(qty, 0.0)

    def order_fees(self, quantity: float, fill_price: float) -> float:
        return quantity * fill_price * self.fees + self.fixed_fees
