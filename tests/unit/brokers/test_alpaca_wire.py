"""alpaca-py's order objects (built from Alpaca JSON, as the client parses it) as OrderReports."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from alpaca.trading.models import Order, TradeUpdate

from tradelab.brokers.alpaca_wire import order_report


def _order(status: str, filled: str = "0", avg: str | None = None, **kw: Any) -> Order:
    body = {"id": "4a100000-0000-0000-0000-000000000007", "client_order_id": "tl-1",
            "created_at": "2014-01-03T05:00:00Z", "updated_at": "2014-01-03T14:30:00.000000001Z",
            "submitted_at": "2014-01-03T05:00:00Z", "symbol": "ORCL", "asset_class": "us_equity",
            "qty": "10", "filled_qty": filled, "filled_avg_price": avg, "order_class": "",
            "type": "market", "side": "buy", "time_in_force": "day", "status": status,
            "extended_hours": False, **kw}
    return Order(**body)


@pytest.mark.parametrize(("status", "filled", "expected"), [
    ("new", "0", "accepted"), ("accepted", "0", "accepted"), ("pending_new", "0", "accepted"),
    ("partially_filled", "4", "partially_filled"), ("done_for_day", "4", "partially_filled"),
    ("pending_cancel", "0", "accepted"), ("filled", "10", "filled"), ("canceled", "4", "cancelled"),
    ("expired", "0", "expired"), ("rejected", "0", "rejected"), ("replaced", "0", "cancelled"),
])
def test_order_status_maps_to_report_status(status: str, filled: str, expected: str) -> None:
    report = order_report(_order(status, filled, "37.65" if filled != "0" else None))
    assert report.status == expected
    assert report.cum_quantity == Decimal(filled) and report.quantity == 10
    assert report.venue_order_id == "4a100000-0000-0000-0000-000000000007"
    assert report.venue_time == datetime(2014, 1, 3, 14, 30, tzinfo=UTC)
    assert report.last_quantity == 0 and report.trade_id == "" and report.fee == 0


def test_a_fill_event_announces_its_execution() -> None:
    update = TradeUpdate(event="partial_fill", execution_id="e7e00000-0000-0000-0000-000000000003",
                         order=_order("partially_filled", "4.5", "37.7"),
                         timestamp="2014-01-03T14:30:00.002Z", position_qty=4.5, price=37.7, qty=1.5)
    r = order_report(update.order, str(update.event), update.timestamp, update.qty, update.price,
                     update.execution_id)
    assert (r.status, r.cum_quantity, r.avg_price) == ("partially_filled", Decimal("4.5"), Decimal("37.7"))
    assert (r.last_quantity, r.last_price) == (Decimal("1.5"), Decimal("37.7"))
    assert r.trade_id == "e7e00000-0000-0000-0000-000000000003"
    assert r.sequence == 1388759400002000000  # the event's time in ns orders the reports
    cancel = order_report(update.order, "canceled", update.timestamp)
    assert cancel.status == "cancelled" and cancel.reason == "canceled" and cancel.trade_id == ""
