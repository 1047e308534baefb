"""The precision policy for money, prices and quantities in the engine.

Policy
------
* Cash, prices, quantities, fees and P&L are :class:`decimal.Decimal` everywhere
  in the engine, the portfolio and the store.
* Arithmetic on them runs in :data:`MONEY_CONTEXT`: 50 significant digits,
  ``ROUND_HALF_EVEN``. Inputs have at most 17 significant digits (they come
  from floats, see below), so sums and products of fills stay exact; only
  divisions (average price, proportional cost on a partial close) round, and
  those never feed back into cash.
* Fill quantities, prices and fees are computed with the float convention
  functions of :mod:`tradelab.execution` (the same float operations vectorbt
  performs, which is what keeps whole-unit rounding and fill prices identical
  between research and the engine) and converted once with
  :func:`to_decimal`, i.e. ``Decimal(repr(x))``: the shortest decimal that
  round-trips to the same float, never the float's long binary expansion.
* Bars stay float (the bar contract); a close is converted with
  :func:`to_decimal` when it marks a position.
* Booked amounts (fill quantity, price, fees) are quantized to :data:`SCALE`
  = 10 decimal places (``ROUND_HALF_EVEN``) by :func:`book`: that is the scale
  of the store's ``NUMERIC(28, 10)`` columns, so what the engine holds in
  memory is exactly what a restart reads back, and a recovered run ends with
  the same equity as an uninterrupted one. With whole units the products
  ``quantity × price`` then stay at 10 places and cash is stored exactly;
  fractional quantities produce 20-place notionals, which the store rounds
  (a request to widen the store's scale is open).
* Nothing is rounded to cents; :func:`display` quantizes for humans only.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

MONEY_CONTEXT = Context(prec=50, rounding=ROUND_HALF_EVEN)
ZERO = Decimal(0)
ONE = Decimal(1)

SCALE = 10  # must equal tradelab.store.types.SCALE (a unit test checks it)
QUANTUM = Decimal(1).scaleb(-SCALE)

__all__ = ["MONEY_CONTEXT", "ONE", "QUANTUM", "SCALE", "ZERO", "book", "display", "money_context",
           "to_decimal", "to_float"]


def book(x: float | Decimal) -> Decimal:
    """A float from the convention functions as a booked amount (10 places, half-even)."""
    return to_decimal(x).quantize(QUANTUM, rounding=ROUND_HALF_EVEN, context=MONEY_CONTEXT)


def to_decimal(x: float | int | str | Decimal) -> Decimal:
    """Convert a number to Decimal without binary noise (floats via ``repr``)."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, float):
        return Decimal(repr(x))
    return Decimal(x)


def to_float(x: Decimal | float | int) -> float:
    """The nearest float; used only to feed the float convention functions."""
    return float(x)


def money_context() -> localcontext:  # type: ignore[valid-type]
    """``with money_context(): ...`` runs Decimal arithmetic under the policy."""
    return localcontext(MONEY_CONTEXT)


def display(x: Decimal, places: int = 2) -> str:
    """A human-readable, quantized rendering (never used for arithmetic)."""
    return f"{x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):,}"
