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
* Sizing of an entry (a short entry mirrors it: :meth:`Execution.short_entry_fill`):
  ``size_type="percent"``: spend ``size`` (0–1] of the available cash, fees
  included: ``qty = ((cash * size - fixed_fees) / (1 + fees)) / fill_price``;
  ``"value"``: ``qty = size / price`` where *price* is before slippage;
  ``"amount"``: ``qty = size`` units (reduced to what the cash affords).
  Exits sell the whole position.
* ``fractional=False`` rounds the quantity down to whole units (``qty // 1``,
  no tolerance, exactly like vectorbt's ``size_granularity=1``).
* :meth:`Execution.entry_fill` is a port of vectorbt's ``buy_nb``; use it (not
  a re-derivation) wherever an entry is sized, so research and the engine agree.
* Entry and exit on the same bar cancel out (no order).
* Borrow fee (``borrow_fee``, an annual rate; 0: off): a short position accrues
  ``borrow_fee * (seconds between two bars / YEAR_SECONDS) * units * close`` for
  each interval it is held across, valued at the close of the interval's first bar
  (calendar time, weekends included, as brokers bill borrow; see
  :meth:`Execution.borrow_charge`). The amount accrued is charged when the short is
  bought back, as an extra fixed fee on that order (a cover or a reversal):
  equity marked while the short is open does not include it yet. Simulated venues
  only; a real venue bills borrow itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

FillAt = Literal["next_open", "close"]
SizeType = Literal["amount", "value", "percent"]

#: Seconds in the year a borrow fee's annual rate refers to (365.25 days).
YEAR_SECONDS = 365.25 * 86_400.0


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
    borrow_fee: float = 0.0

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
        if not (self.borrow_fee >= 0 and math.isfinite(self.borrow_fee)):
            problems.append(f"borrow_fee = {self.borrow_fee!r}: must be a rate >= 0 "
                            "(a fraction per year, e.g. 0.03)")
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
        return self.entry_fill(cash, price)[0]

    def entry_fill(self, cash: float, price: float, plus: float = 0.0) -> tuple[float, float, float]:
        """``(quantity, fill_price, fees)`` of an entry at raw ``price`` with ``cash`` available.

        A line-by-line port of vectorbt 1.2's ``buy_nb`` for a long-only entry
        (``allow_partial=True``, ``lock_cash=False``, ``size_granularity=1`` for
        whole units): the same float operations in the same order, so quantities
        and fees agree bit for bit. Two details matter: vectorbt divides by
        ``1 + fees`` *before* dividing by the price, and for a fractional entry
        limited by cash it charges ``cash_limit - cash_spent_on_units`` as fees.
        Quantity 0 means the cash does not cover one unit (or the fees). ``plus``: units
        added to an ``amount``/``value`` size (a reversal covers ``plus`` short units
        in the same order, as vectorbt's ``signals_to_size_nb`` sizes it).
        """
        adj_price = self.fill_price(price, buy=True)
        granular = not self.fractional
        cash_limit = cash
        if self.size_type == "percent":
            cash_limit = min(cash_limit, self.size * cash_limit)
            size = math.inf
        elif self.size_type == "value":
            size = plus + self.size / price  # vectorbt values at the order price before slippage
        else:
            size = plus + self.size
        if cash_limit == 0:
            return 0.0, adj_price, 0.0
        if granular and math.isfinite(size):
            size = size // 1.0 * 1.0
        req_cash = size * adj_price
        req_fees = req_cash * self.fees + self.fixed_fees
        total_req_cash = req_cash + req_fees
        if _is_close_or_less(total_req_cash, cash_limit):
            quantity, fees_paid = size, req_fees
        else:
            max_req_cash = _add(cash_limit, -self.fixed_fees) / (1 + self.fees)
            if max_req_cash <= 0:
                return 0.0, adj_price, 0.0
            max_acq_size = max_req_cash / adj_price
            if granular:
                quantity = max_acq_size // 1.0 * 1.0
                fees_paid = quantity * adj_price * self.fees + self.fixed_fees
            else:
                quantity = max_acq_size
                fees_paid = cash_limit - max_req_cash
        if quantity <= 0 or _is_close(quantity, 0.0):
            return 0.0, adj_price, 0.0
        return quantity, adj_price, fees_paid

    def short_entry_fill(self, free_cash: float, price: float,
                         plus: float = 0.0) -> tuple[float, float, float]:
        """``(quantity, fill_price, fees)`` of a short entry from flat at raw ``price``.

        The mirror of :meth:`entry_fill`: a line-by-line port of vectorbt 1.2's
        ``sell_nb`` for an order opening a short (``direction="both"`` path,
        ``lock_cash=False``). ``free_cash`` is the cash not tied up by short
        positions (``cash - 2 * debt``; the cash itself when nothing is short).
        ``"percent"`` sells ``size`` of the units the free cash could buy at the
        fill price, fees included; ``"value"``: ``size / price`` units (price
        before slippage); ``"amount"``: ``size`` units. Quantity 0: nothing to sell.
        ``plus``: units added to an ``amount``/``value`` size (a reversal sells the
        ``plus`` units held long in the same order).
        """
        adj_price = self.fill_price(price, buy=False)
        granular = not self.fractional
        if self.size_type == "percent":
            total_free_cash = _add(free_cash, 0.0)
            if total_free_cash <= 0:
                return 0.0, adj_price, 0.0
            max_short_size = _add(total_free_cash, -self.fixed_fees) / (adj_price * (1 + self.fees))
            size_limit = _add(0.0, max_short_size)
            if size_limit <= 0:
                return 0.0, adj_price, 0.0
            size_limit = self.size * size_limit
        elif self.size_type == "value":
            size_limit = plus + self.size / price
        else:
            size_limit = plus + self.size
        if granular:
            size_limit = size_limit // 1.0 * 1.0
        if _is_close(size_limit, 0.0) or size_limit <= 0:
            return 0.0, adj_price, 0.0
        if granular and size_limit < 1.0 and not _is_close(size_limit, 1.0):
            return 0.0, adj_price, 0.0  # vectorbt's min_size=1 for whole units
        acq_cash = size_limit * adj_price
        fees_paid = acq_cash * self.fees + self.fixed_fees
        if _add(acq_cash, -fees_paid) < 0:
            return 0.0, adj_price, 0.0
        return size_limit, adj_price, fees_paid

    def order_fees(self, quantity: float, fill_price: float) -> float:
        return quantity * fill_price * self.fees + self.fixed_fees

    def borrow_charge(self, seconds: float, units: float, close: float) -> float:
        """Borrow fee accrued by ``units`` held short for ``seconds``, valued at ``close``.

        ``borrow_fee * (seconds / YEAR_SECONDS) * units * close``, evaluated left to
        right in float: research (:mod:`tradelab.research.borrow`) and the paper broker
        evaluate exactly these operations and add the terms in bar order starting from
        ``0.0``, so the fee on a cover is the same float in both.
        """
        return self.borrow_fee * (seconds / YEAR_SECONDS) * units * close

    def with_extra_fee(self, extra: float) -> Execution:
        """This convention with ``extra`` added to the fixed fee of an order (a cover
        carrying its accrued borrow fee); itself when ``extra`` is 0."""
        return replace(self, fixed_fees=self.fixed_fees + extra) if extra else self


# vectorbt's float tolerances (vectorbt.utils.math_): rel 1e-9, abs 1e-12.
_REL_TOL, _ABS_TOL = 1e-9, 1e-12


def _is_close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return False
    return a == b or abs(a - b) <= max(_REL_TOL * max(abs(a), abs(b)), _ABS_TOL)


def _is_close_or_less(a: float, b: float) -> bool:
    return _is_close(a, b) or a < b


def _add(a: float, b: float) -> float:
    """vectorbt's ``add_nb``: a sum that cancels to within tolerance is exactly 0."""
    if (a > 0) - (a < 0) != (b > 0) - (b < 0):
        if _is_close(abs(a), abs(b)):
            return 0.0
    elif _is_close(a + b, 0.0):
        return 0.0
    return a + b
