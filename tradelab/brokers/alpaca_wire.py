"""alpaca-py's objects as tradelab's: order reports, a request timeout, a stream that says when it listens.

Helpers of :mod:`tradelab.brokers.alpaca_broker`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.stream import TradingStream

from tradelab.money import ZERO
from tradelab.orders.brokers import OrderReport

#: Alpaca order status → report status (the rest are open: accepted / partially filled).
_FINAL = {"filled": "filled", "canceled": "cancelled", "expired": "expired",
          "rejected": "rejected", "replaced": "cancelled"}
#: Stream event → report status (other events take the order's own status).
_EVENTS = {"new": "accepted", "accepted": "accepted", "pending_new": "accepted",
           "partial_fill": "partially_filled", "fill": "filled", "canceled": "cancelled",
           "expired": "expired", "rejected": "rejected"}

def dec(value: Any) -> Decimal:
    """An Alpaca number (str, float or None) as a Decimal; floats via ``str`` (no binary tail)."""
    if value is None or value == "":
        return ZERO
    return Decimal(str(value))


def ns(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000


def _status(order: AlpacaOrder) -> str:
    raw = str(getattr(order.status, "value", order.status))
    if raw in _FINAL:
        return _FINAL[raw]
    return "partially_filled" if dec(order.filled_qty) > 0 else "accepted"


def order_report(order: AlpacaOrder, event: str = "", at: datetime | None = None,
                 last_qty: Any = None, last_price: Any = None, execution_id: Any = None
                 ) -> OrderReport:
    """One Alpaca order (from a query, or a ``trade_updates`` event) as an ``OrderReport``.

    Cumulative quantity and average price are the order's ``filled_qty`` and
    ``filled_avg_price``; the last execution is the event's ``qty``/``price`` with
    its ``execution_id`` as trade id (fill events only). Equities carry no fee here
    (Alpaca charges regulatory fees separately). ``sequence`` is the event time in ns.
    """
    status = _EVENTS.get(event) or _status(order)
    if status == "accepted" and dec(order.filled_qty) > 0:
        status = "partially_filled"
    when = at or order.updated_at
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    filled_event = event in ("fill", "partial_fill")
    side = str(getattr(order.side, "value", order.side or ""))
    return OrderReport(
        client_order_id=order.client_order_id, venue_order_id=str(order.id), status=status,
        symbol=order.symbol or "", side=side, quantity=dec(order.qty),
        cum_quantity=dec(order.filled_qty), avg_price=dec(order.filled_avg_price),
        venue_time=when.astimezone(UTC),
        last_quantity=dec(last_qty) if filled_event else ZERO,
        last_price=dec(last_price) if filled_event else ZERO,
        trade_id=str(execution_id) if filled_event and execution_id else "",
        cum_fee=ZERO, sequence=ns(when), reason=event if status in ("cancelled", "expired") else "")


class TimeoutAdapter(requests.adapters.HTTPAdapter):
    """alpaca-py sends requests without a timeout; this mounts one on its session."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


class ListeningStream(TradingStream):
    """``TradingStream`` that says when it (re)connected, so missed reports are caught up."""

    def __init__(self, *args: Any, on_connect: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_connect = on_connect
        # reconnect sooner than alpaca-py's 1 s floor; the same jittered exponential rule
        self._reconnect_min_backoff, self._reconnect_max_backoff = 0.2, 10.0

    async def _start_ws(self) -> None:
        await super()._start_ws()
        # "connected" means listening: wait for Alpaca's ack of the listen request, so an
        # order sent after wait_connected() cannot beat the subscription
        assert self._ws is not None
        raw = await asyncio.wait_for(self._ws.recv(), 10)
        msg = json.loads(raw)
        if msg.get("stream") != "listening":
            await self._dispatch(msg)
        self._on_connect()


__all__ = ["ListeningStream", "TimeoutAdapter", "dec", "order_report"]
