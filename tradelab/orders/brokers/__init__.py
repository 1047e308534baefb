"""What venues report back to the OrderManager, and the errors they raise.

Two shapes of report exist:

* :class:`BrokerUpdate`, what a *simulated* venue (the paper broker) reports: one
  fill, reject, cancel or expiry at a time, with the fill already priced.
* :class:`OrderReport`, what a *real* venue says about one order, from its stream
  or from a query: the venue's ids, the order's status, the cumulative filled
  quantity and average price, and the last execution. The OrderManager books fills
  from the cumulative quantity (:meth:`tradelab.orders.manager.OrderManager.apply_report`),
  so a report that arrives twice, late or out of order changes nothing, and a
  missed one is caught up by the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradelab.errors import TradelabError
from tradelab.money import ZERO
from tradelab.orders.model import Fill

#: Statuses an :class:`OrderReport` may carry.
REPORT_STATUSES = ("accepted", "partially_filled", "filled", "cancelled", "rejected", "expired")


class TransientBrokerError(TradelabError):
    """A retryable failure (connection, timeout, 5xx, 429). The order may or may not have arrived."""


class BrokerRejectedError(TradelabError):
    """The venue refused the order for good (its definitive answer; ``code`` is the venue's)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class VenueRuleDenied(TradelabError):
    """An order that cannot satisfy the venue's lot, tick or minimum rules (never sent)."""


@dataclass(frozen=True, slots=True)
class BrokerUpdate:
    """Something a simulated venue did to an order: ``kind`` is fill, reject, cancel or expire."""

    kind: str
    client_order_id: str
    fill: Fill | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What a venue says about one order (a stream event or the answer to a query).

    Attributes
    ----------
    client_order_id, venue_order_id
        Our id and the venue's.
    status
        One of :data:`REPORT_STATUSES`.
    symbol, side
        As the order was placed (our symbol spelling).
    quantity
        The quantity ordered.
    cum_quantity, avg_price
        Filled so far, and the average price of what filled (0 when nothing did).
    last_quantity, last_price, fee, trade_id
        The execution this report announces (0 / "" when it announces none); ``fee``
        is that execution's fee in the account currency.
    cum_fee
        Fees of the whole order so far when the venue says (``None``: unknown).
    venue_time
        The venue's timestamp of the event (UTC).
    sequence
        Orders one order's reports as the venue made them (a venue update id or a
        timestamp in ns); higher is later.
    reason
        The venue's words for a reject, cancel or expiry.
    """

    client_order_id: str
    venue_order_id: str
    status: str
    symbol: str
    side: str
    quantity: Decimal
    cum_quantity: Decimal
    avg_price: Decimal
    venue_time: datetime
    last_quantity: Decimal = ZERO
    last_price: Decimal = ZERO
    fee: Decimal = ZERO
    trade_id: str = ""
    cum_fee: Decimal | None = None
    sequence: int = 0
    reason: str = ""

    @property
    def is_open(self) -> bool:
        return self.status in ("accepted", "partially_filled")


@dataclass(frozen=True, slots=True)
class VenueBalance:
    """One asset at the venue: ``free`` to trade, ``locked`` in open orders."""

    asset: str
    free: Decimal
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


__all__ = ["REPORT_STATUSES", "BrokerRejectedError", "BrokerUpdate", "OrderReport",
           "TransientBrokerError", "VenueBalance", "VenueRuleDenied"]
