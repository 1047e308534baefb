"""The venue simulators' value types: markets, orders, trades, execution events, refusals."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

D0 = Decimal(0)
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
#: Venue-neutral error codes of :class:`VenueError` (wire layers map them).
ERROR_CODES = ("unknown_symbol", "lot_size", "price_filter", "min_notional", "insufficient_balance",
               "unknown_order", "duplicate_client_id", "bad_request", "order_closed")


class VenueError(Exception):
    """The venue refuses a request: ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True, slots=True)
class Market:
    """One replayed market: ``symbol`` is the venue's id (``BTCUSDT``), ``unified`` ours."""

    symbol: str
    unified: str
    base: str
    quote: str
    step: Decimal
    tick: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal


@dataclass(frozen=True, slots=True)
class Trade:
    """One execution of an order."""

    trade_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    fee: Decimal
    fee_asset: str
    time_ns: int


@dataclass(slots=True)
class VenueOrder:
    """An order as the venue holds it; ``status`` uses the usual venue spellings."""

    venue_id: int
    client_id: str
    symbol: str
    side: str                 # "buy" | "sell"
    type: str                 # "market" | "limit" | "stop"
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: str = "GTC"
    status: str = "NEW"       # NEW PARTIALLY_FILLED FILLED CANCELED EXPIRED
    filled: Decimal = D0
    filled_quote: Decimal = D0
    fee: Decimal = D0
    locked: Decimal = D0      # what this order still holds locked (base or quote)
    created_ns: int = 0
    updated_ns: int = 0
    triggered: bool = False
    hold_bars: int = 0        # bars to skip before matching (the delayed-fill fault)
    trades: list[Trade] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    """A change of one order: ``kind`` is new, trade, canceled, rejected or expired."""

    seq: int
    kind: str
    order: VenueOrder          # a copy as of the event
    trade: Trade | None = None
    reason: str = ""
    time_ns: int = 0


__all__ = ["D0", "ERROR_CODES", "OPEN_STATUSES", "ExecutionEvent", "Market", "Trade", "VenueError",
           "VenueOrder"]
