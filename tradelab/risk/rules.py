"""Risk rules as pure functions.

Each rule takes a :class:`RiskContext` (the order and the account as they are
now) and :class:`RiskLimits` and returns ``None`` (pass) or a reason string
(deny). No rule reads a clock, the store or the portfolio itself, which keeps
them trivially testable and safe to call on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from decimal import Decimal

from tradelab.money import ZERO


@dataclass(frozen=True)
class RiskLimits:
    """Limits for an account or a strategy; ``None`` disables a rule.

    ``max_daily_loss`` and ``max_drawdown`` are fractions of equity (0.05 = 5 %);
    breaching either is *critical*: it denies and engages the kill switch.
    ``trading_hours`` is a ``(start, end)`` pair of UTC times, inclusive.
    ``allow_short``: may an order open or add to a short position (``None``: not
    decided here; the engine sets it by venue, see :func:`with_short_default`);
    ``short_symbols``: when set, only these symbols may be sold short. Position and
    exposure limits count a short by its absolute size.
    """

    max_position: Decimal | None = None          # units held after the order, absolute
    max_order_notional: Decimal | None = None    # quantity × price of one order
    max_gross_exposure: Decimal | None = None    # Σ |position value| after the order
    max_daily_loss: float | None = None
    max_drawdown: float | None = None
    max_orders_per_minute: int | None = None
    trading_hours: tuple[time, time] | None = None
    allowed_symbols: frozenset[str] | None = None
    allow_short: bool | None = None
    short_symbols: frozenset[str] | None = None

    def merged(self, override: RiskLimits | None) -> RiskLimits:
        """These limits with every limit ``override`` sets taking precedence."""
        if override is None:
            return self
        values = {k: getattr(override, k) if getattr(override, k) is not None else getattr(self, k)
                  for k in self.__dataclass_fields__}
        return RiskLimits(**values)


@dataclass(frozen=True)
class RiskContext:
    """What the rules see about one order request."""

    at: datetime
    symbol: str
    side: str
    quantity: Decimal          # requested (or estimated, for entries sized at fill)
    price: Decimal             # reference price (last close)
    position: Decimal          # current signed position in ``symbol``
    equity: Decimal
    peak_equity: Decimal
    day_start_equity: Decimal
    gross_exposure: Decimal    # before the order
    orders_last_minute: int = 0
    strategy: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price

    @property
    def position_after(self) -> Decimal:
        return self.position + (self.quantity if self.side == "buy" else -self.quantity)


Rule = Callable[[RiskContext, RiskLimits], str | None]


def max_position(ctx: RiskContext, lim: RiskLimits) -> str | None:
    if lim.max_position is None or abs(ctx.position_after) <= lim.max_position:
        return None
    return f"position after order {ctx.position_after} {ctx.symbol} exceeds max_position {lim.max_position}"


def max_order_notional(ctx: RiskContext, lim: RiskLimits) -> str | None:
    if lim.max_order_notional is None or ctx.notional <= lim.max_order_notional:
        return None
    return f"order notional {ctx.notional:.2f} exceeds max_order_notional {lim.max_order_notional}"


def max_gross_exposure(ctx: RiskContext, lim: RiskLimits) -> str | None:
    if lim.max_gross_exposure is None:
        return None
    before = abs(ctx.position) * ctx.price
    after = ctx.gross_exposure - before + abs(ctx.position_after) * ctx.price
    if after <= lim.max_gross_exposure or after <= ctx.gross_exposure:  # reducing is always allowed
        return None
    return f"gross exposure after order {after:.2f} exceeds max_gross_exposure {lim.max_gross_exposure}"


def max_daily_loss(ctx: RiskContext, lim: RiskLimits) -> str | None:
    if lim.max_daily_loss is None or ctx.day_start_equity <= ZERO:
        return None
    loss = (ctx.day_start_equity - ctx.equity) / ctx.day_start_equity
    if loss <= Decimal(repr(lim.max_daily_loss)):
        return None
    return f"daily loss {float(loss):.2%} exceeds max_daily_loss {lim.max_daily_loss:.2%}"


def max_drawdown(ctx: RiskContext, lim: RiskLimits) -> str | None:
    if lim.max_drawdown is None or ctx.peak_equity <= ZERO:
        return None
    dd = (ctx.peak_equity - ctx.equity) / ctx.peak_equity
    if dd <= Decimal(repr(lim.max_drawdown)):
        return None
    return f"drawdown {float(dd):.2%} exceeds max_drawdown {lim.max_drawdown:.2%}"


def max_orders_per_minute(ctx: RiskContext, lim: RiskLimits) -> str | None:
    if lim.max_orders_per_minute is None or ctx.orders_last_minute < lim.max_orders_per_minute:
        return None
    return (f"{ctx.orders_last_minute} orders in the last minute; "
            f"max_orders_per_minute is {lim.max_orders_per_minute}")


def trading_hours(ctx: RiskContext, lim: RiskLimits) -> str | None:
    if lim.trading_hours is None:
        return None
    start, end = lim.trading_hours
    now = ctx.at.timetz().replace(tzinfo=None)
    if start <= now <= end:
        return None
    return f"{ctx.at:%H:%M} UTC is outside trading hours {start:%H:%M}-{end:%H:%M}"


def instrument_allowed(ctx: RiskContext, lim: RiskLimits) -> str | None:
    if lim.allowed_symbols is None or ctx.symbol in lim.allowed_symbols:
        return None
    return f"{ctx.symbol} is not in the allow-list ({', '.join(sorted(lim.allowed_symbols))})"


def short_not_allowed(ctx: RiskContext, lim: RiskLimits) -> str | None:
    after = ctx.position_after
    if after >= 0 or after >= ctx.position:
        return None  # neither opens nor adds to a short (covering is always allowed)
    if lim.allow_short is False:
        return (f"{ctx.side} {ctx.quantity} {ctx.symbol} would hold {after}: short selling "
                f"is not allowed on this account ([risk] allow_short = false)")
    if lim.short_symbols is not None and ctx.symbol not in lim.short_symbols:
        return (f"{ctx.symbol} may not be sold short: not in [risk] short_symbols "
                f"({', '.join(sorted(lim.short_symbols)) or 'none'})")
    return None


def with_short_default(limits: RiskLimits, simulated: bool) -> RiskLimits:
    """``limits`` with an unset ``allow_short`` decided by the venue: allowed at a
    simulated (paper) venue, denied at a real one (a spot account cannot borrow)."""
    return replace(limits, allow_short=simulated) if limits.allow_short is None else limits


#: name -> (rule, critical). Critical breaches engage the kill switch.
RULES: dict[str, tuple[Rule, bool]] = {
    "instrument_allowed": (instrument_allowed, False),
    "short_not_allowed": (short_not_allowed, False),
    "trading_hours": (trading_hours, False),
    "max_orders_per_minute": (max_orders_per_minute, False),
    "max_order_notional": (max_order_notional, False),
    "max_position": (max_position, False),
    "max_gross_exposure": (max_gross_exposure, False),
    "max_daily_loss": (max_daily_loss, True),
    "max_drawdown": (max_drawdown, True),
}


def evaluate(ctx: RiskContext, limits: RiskLimits) -> list[tuple[str, str, bool]]:
    """Every breached rule as ``(name, reason, critical)``; empty means approved."""
    out = []
    for name, (rule, critical) in RULES.items():
        reason = rule(ctx, limits)
        if reason is not None:
            out.append((name, reason, critical))
    return out
