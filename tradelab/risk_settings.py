"""The ``[risk]`` configuration section (limits, per-strategy overrides, shorts).

Kept apart from :mod:`tradelab.config` (which imports it) so that the section
and :class:`tradelab.risk.rules.RiskLimits` grow together; pydantic only, cheap
to import.
"""

from __future__ import annotations

from datetime import time as dt_time
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RiskLimitSettings", "RiskSettings"]


class RiskLimitSettings(BaseModel):
    """Risk limits; an unset limit is not checked (see :class:`tradelab.risk.rules.RiskLimits`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_position: Decimal | None = Field(default=None, gt=0, description="units")
    max_order_notional: Decimal | None = Field(default=None, gt=0)
    max_gross_exposure: Decimal | None = Field(default=None, gt=0)
    max_daily_loss: float | None = Field(default=None, gt=0, lt=1, description="fraction of equity")
    max_drawdown: float | None = Field(default=None, gt=0, lt=1, description="fraction of equity")
    max_orders_per_minute: int | None = Field(default=None, gt=0)
    trading_hours: tuple[dt_time, dt_time] | None = Field(default=None, description="UTC, inclusive")
    allowed_symbols: frozenset[str] | None = None
    allow_short: bool | None = Field(default=None, description=(
        "whether orders may open or add to a short position; unset: allowed at a simulated "
        "(paper) venue, denied at a real one (e.g. a crypto spot account)"))
    short_symbols: frozenset[str] | None = Field(default=None, description=(
        "when set, only these symbols may be sold short"))


class RiskSettings(RiskLimitSettings):
    """Account-wide limits plus per-strategy overrides (``[risk.per_strategy.NAME]``)."""

    per_strategy: dict[str, RiskLimitSettings] = Field(default_factory=dict)
