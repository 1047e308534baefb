"""``POST /v2/orders`` as Alpaca checks it: the request body read into the book's terms.

Refusals carry Alpaca's HTTP status, code and message (:class:`Refusal`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from tradelab.brokers.sim import alpaca_shapes as shapes
from tradelab.brokers.sim.core import VenueBook

Err = tuple[int, int, str]
BAD_REQUEST: Err = (422, 40010001, "")
NOT_FRACTIONAL_DAY: Err = (422, 42210000, "fractional orders must be DAY orders")
#: The book's refusals (:data:`~tradelab.brokers.sim.core.ERROR_CODES`) as Alpaca answers them.
CODES: dict[str, Err] = {
    "lot_size": (422, 40010001, "qty must be a multiple of the asset's min_trade_increment"),
    "price_filter": (422, 42210000, "sub-penny increment does not fulfill minimum pricing criteria"),
    "min_notional": (403, 40310000, "cost basis must be >= 1"),
    "insufficient_balance": (403, 40310000, "insufficient buying power"),
    "duplicate_client_id": shapes.DUPLICATE, "unknown_order": shapes.NOT_FOUND,
    "order_closed": shapes.NOT_CANCELABLE,
}


class Refusal(Exception):
    """Alpaca refuses the request: ``err`` is (HTTP status, code, default message)."""

    def __init__(self, err: Err, message: str = "") -> None:
        super().__init__(message or err[2])
        self.err, self.message = err, message or err[2]


@dataclass(frozen=True, slots=True)
class OrderArgs:
    """An order request in the book's terms (``quantity`` computed for a notional order)."""

    symbol: str
    side: str
    type: str
    tif: str
    quantity: Decimal
    client_id: str
    limit: Decimal | None = None
    stop: Decimal | None = None
    notional: Decimal | None = None


def _dec(body: dict[str, Any], key: str) -> Decimal | None:
    value = body.get(key)
    return None if value is None else Decimal(str(value))


def read_order(body: dict[str, Any], book: VenueBook) -> OrderArgs:
    """Check an order request as Alpaca does before the book sees it (raising :class:`Refusal`)."""
    symbol, side = str(body.get("symbol") or ""), body.get("side")
    otype, tif = body.get("type") or body.get("order_type"), str(body.get("time_in_force") or "")
    cid = str(body.get("client_order_id") or uuid.uuid4())
    if len(cid) > 128:
        raise Refusal(BAD_REQUEST, "client_order_id must be no more than 128 characters")
    if symbol not in book.markets:
        raise Refusal(BAD_REQUEST, f'asset "{symbol}" not found')
    if side not in ("buy", "sell"):
        raise Refusal(BAD_REQUEST, "side must be buy or sell")
    if otype not in ("market", "limit", "stop"):
        raise Refusal(BAD_REQUEST, f"order type {otype!r} is not supported by the simulator")
    if tif not in ("day", "gtc", "ioc", "fok"):
        raise Refusal(BAD_REQUEST, f"time_in_force {tif!r} is not supported by the simulator")
    m = book.markets[symbol]
    qty, notional = _dec(body, "qty"), _dec(body, "notional")
    if (qty is None) == (notional is None):
        raise Refusal(BAD_REQUEST, "qty or notional is required, not both")
    if notional is not None:
        if otype != "market":
            raise Refusal(BAD_REQUEST, "notional orders are market orders only")
        price = book.last_price(symbol)
        units = (notional / price / m.step).to_integral_value(ROUND_FLOOR) if price else Decimal(0)
        qty = units * m.step
    assert qty is not None
    fractional = qty != qty.to_integral_value()
    if m.step >= 1 and fractional:
        raise Refusal((403, 40310000, f"asset {symbol} is not fractionable"))
    if (fractional or notional is not None) and tif != "day":
        raise Refusal(NOT_FRACTIONAL_DAY)
    if any(o.client_id == cid for o in book.orders.values()):  # unique for good, not only while open
        raise Refusal(shapes.DUPLICATE)
    if side == "sell":
        free, _ = book.balance(m.base)
        if qty > free:  # a cash account: no short sale
            have = f"(requested: {shapes.num(qty)}, available: {shapes.num(free)})"
            raise Refusal((403, 40310000, f"insufficient qty available for order {have}"))
    return OrderArgs(symbol, str(side), str(otype), tif, qty, cid, _dec(body, "limit_price"),
                     _dec(body, "stop_price"), notional)


__all__ = ["CODES", "OrderArgs", "Refusal", "read_order"]
