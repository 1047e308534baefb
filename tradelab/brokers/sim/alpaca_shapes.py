"""The JSON shapes of Alpaca's trading API v2, built from the simulator's book (and the book
of US equities and the exchange calendar they describe).

Field names, enum spellings and number formats follow what ``alpaca-py``'s models
(``alpaca.trading.models``) parse: numbers are strings, times RFC 3339 in UTC,
ids UUIDs. Venue ids of the book (integers) map to UUIDs reversibly, so they
survive a restart of the simulator.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import pandas as pd

from tradelab.brokers.sim.core import ExecutionEvent, Market, Trade, VenueBook, VenueOrder

ACCOUNT_ID = "8f2ec3b6-3c2a-4b7e-9a51-5e1d2c0a7a01"
CURRENCY = "USD"
_STATUS = {"NEW": "new", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled",
           "CANCELED": "canceled", "EXPIRED": "expired", "REJECTED": "rejected"}
_TIF = {"GTC": "gtc", "DAY": "day", "IOC": "ioc", "FOK": "fok"}

#: Alpaca's error bodies: (HTTP status, code, message).
UNAUTHORIZED = (401, 40110000, "request is not authorized")
NOT_FOUND = (404, 40410000, "order not found")
ASSET_NOT_FOUND = (404, 40410000, "asset not found")
POSITION_NOT_FOUND = (404, 40410000, "position does not exist")
DUPLICATE = (422, 40010001, "client_order_id must be unique")
NOT_CANCELABLE = (422, 42210000, "order is not cancelable")
TOO_MANY = (429, 42910000, "too many requests")
SERVER_ERROR = (500, 50010000, "internal server error occurred")


FRACTION_STEP = Decimal("1e-9")


def build_book(bars: dict[str, pd.DataFrame], *, cash: Decimal = Decimal(100_000),
               whole_shares: tuple[str, ...] = (), volume_fraction: float | None = None) -> VenueBook:
    """A book of US equities (quote USD, no fees) over ``bars``."""
    markets = []
    for symbol in bars:
        whole = symbol in whole_shares
        step = Decimal(1) if whole else FRACTION_STEP
        markets.append(Market(symbol, symbol, symbol, CURRENCY, step, Decimal("0.01"), step,
                              Decimal(0), Decimal(0) if whole else Decimal(1)))
    return VenueBook(markets, bars, balances={CURRENCY: Decimal(cash)}, fee_rate=Decimal(0),
                     volume_fraction=volume_fraction)


@lru_cache(maxsize=8)
def _xnys(first: str, last: str) -> Any:
    import exchange_calendars as xcals

    return xcals.get_calendar("XNYS", start=first, end=last)


def exchange_calendar(book: VenueBook) -> Any:
    """The XNYS calendar from a month before the first bar to a year after the last."""
    first = (book.timeline[0] - pd.Timedelta(days=31)).strftime("%Y-%m-%d")
    last = (book.timeline[-1] + pd.Timedelta(days=366)).strftime("%Y-%m-%d")
    return _xnys(first, last)


def order_uuid(venue_id: int) -> str:
    return str(uuid.UUID(int=(0x4A1 << 116) | venue_id))


def venue_id(order_id: str) -> int | None:
    """The book's id of an order UUID (``None`` when it is not one of ours)."""
    try:
        value = uuid.UUID(order_id).int
    except ValueError:
        return None
    return value & ((1 << 64) - 1) if value >> 116 == 0x4A1 else None


def execution_uuid(trade_id: int) -> str:
    return str(uuid.UUID(int=(0xE7E << 116) | trade_id))


def asset_uuid(symbol: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tradelab-sim/asset/{symbol}"))


def ts(ns: int | None) -> str | None:
    """RFC 3339 with nanoseconds and ``Z``, as Alpaca writes times."""
    if ns is None:
        return None
    whole = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{ns % 1_000_000_000:09d}Z"


def num(x: Decimal | None) -> str | None:
    if x is None:
        return None
    text = format(x.normalize(), "f")
    return text


def order_json(o: VenueOrder, notional: Decimal | None = None) -> dict[str, Any]:
    """One order as ``GET /v2/orders/{id}`` answers it."""
    status = _STATUS.get(o.status, o.status.lower())
    avg = o.filled_quote / o.filled if o.filled else None
    final = ts(o.updated_ns)
    return {
        "id": order_uuid(o.venue_id), "client_order_id": o.client_id,
        "created_at": ts(o.created_ns), "updated_at": ts(o.updated_ns), "submitted_at": ts(o.created_ns),
        "filled_at": final if status == "filled" else None,
        "expired_at": final if status == "expired" else None,
        "canceled_at": final if status == "canceled" else None,
        "failed_at": final if status == "rejected" else None,
        "replaced_at": None, "replaced_by": None, "replaces": None,
        "asset_id": asset_uuid(o.symbol), "symbol": o.symbol, "asset_class": "us_equity",
        "notional": num(notional), "qty": num(o.quantity), "filled_qty": num(o.filled),
        "filled_avg_price": num(avg.quantize(Decimal("1e-9")) if avg is not None else None),
        "order_class": "", "order_type": o.type, "type": o.type, "side": o.side,
        "position_intent": "buy_to_open" if o.side == "buy" else "sell_to_close",
        "time_in_force": _TIF.get(o.tif, o.tif.lower()),
        "limit_price": num(o.price), "stop_price": num(o.stop_price), "status": status,
        "extended_hours": False, "legs": None, "trail_percent": None, "trail_price": None,
        "hwm": None, "subtag": None, "source": None, "expires_at": None,
    }


def position_qty(book: VenueBook, symbol: str) -> Decimal:
    free, locked = book.balance(book.market(symbol).base)
    return free + locked


def trade_update(book: VenueBook, event: ExecutionEvent) -> dict[str, Any]:
    """A ``trade_updates`` stream message for one book event."""
    o = event.order
    kind = {"new": "new", "canceled": "canceled", "expired": "expired",
            "rejected": "rejected"}.get(event.kind, "")
    data: dict[str, Any] = {"order": order_json(o), "timestamp": ts(event.time_ns or o.updated_ns)}
    trade: Trade | None = event.trade
    if event.kind == "trade" and trade is not None:
        kind = "fill" if o.status == "FILLED" else "partial_fill"
        data.update(execution_id=execution_uuid(trade.trade_id), price=num(trade.price),
                    qty=num(trade.qty), position_qty=num(position_qty(book, o.symbol)),
                    timestamp=ts(trade.time_ns))
    data["event"] = kind or event.kind
    return {"stream": "trade_updates", "data": data}


def _avg_cost(book: VenueBook, symbol: str) -> Decimal:
    """Average cost of the shares held (buys raise it; sells keep it)."""
    qty = cost = Decimal(0)
    trades = sorted(((t.time_ns, t.trade_id, o.side, t) for o in book.orders.values()
                     if o.symbol == symbol for t in o.trades), key=lambda x: (x[0], x[1]))
    for _, _, side, t in trades:
        if side == "buy":
            qty, cost = qty + t.qty, cost + t.qty * t.price
        elif qty > 0:
            cost -= cost * min(t.qty, qty) / qty
            qty -= min(t.qty, qty)
    return cost / qty if qty else Decimal(0)


def position_json(book: VenueBook, symbol: str) -> dict[str, Any]:
    qty = position_qty(book, symbol)
    price, avg = book.last_price(symbol), _avg_cost(book, symbol)
    value, basis = qty * price, qty * avg
    free, _ = book.balance(book.market(symbol).base)
    return {"asset_id": asset_uuid(symbol), "symbol": symbol, "exchange": "NYSE",
            "asset_class": "us_equity", "asset_marginable": False,
            "avg_entry_price": num(avg.quantize(Decimal("1e-9"))), "qty": num(qty),
            "qty_available": num(free), "side": "long", "market_value": num(value),
            "cost_basis": num(basis.quantize(Decimal("1e-9"))),
            "unrealized_pl": num((value - basis).quantize(Decimal("1e-9"))),
            "unrealized_plpc": "0", "unrealized_intraday_pl": "0",
            "unrealized_intraday_plpc": "0", "current_price": num(price),
            "lastday_price": num(price), "change_today": "0"}


def account_json(book: VenueBook) -> dict[str, Any]:
    free, locked = book.balance(CURRENCY)
    cash = free + locked
    equity = cash + sum((position_qty(book, s) * book.last_price(s) for s in book.markets), Decimal(0))
    return {"id": ACCOUNT_ID, "account_number": "PA3SIMULATOR", "status": "ACTIVE",
            "crypto_status": "INACTIVE", "currency": CURRENCY, "buying_power": num(free),
            "regt_buying_power": num(free), "daytrading_buying_power": "0",
            "non_marginable_buying_power": num(free), "options_buying_power": num(free),
            "cash": num(cash), "accrued_fees": "0", "pending_transfer_in": "0",
            "portfolio_value": num(equity), "equity": num(equity), "last_equity": num(equity),
            "long_market_value": num(equity - cash), "short_market_value": "0",
            "initial_margin": "0", "maintenance_margin": "0", "last_maintenance_margin": "0",
            "sma": "0", "daytrade_count": 0, "multiplier": "1", "pattern_day_trader": False,
            "trading_blocked": False, "transfers_blocked": False, "account_blocked": False,
            "trade_suspended_by_user": False, "shorting_enabled": False,
            "created_at": "2020-01-02T00:00:00Z"}


def asset_json(book: VenueBook, symbol: str) -> dict[str, Any]:
    m = book.market(symbol)
    fractionable = m.step < 1
    return {"id": asset_uuid(m.symbol), "class": "us_equity", "exchange": "NYSE",
            "symbol": m.symbol, "name": m.symbol, "status": "active", "tradable": True,
            "marginable": False, "shortable": False, "easy_to_borrow": False,
            "fractionable": fractionable, "min_order_size": num(m.min_qty),
            "min_trade_increment": num(m.step), "price_increment": num(m.tick),
            "maintenance_margin_requirement": 100, "attributes": ["fractional_eh_enabled"]
            if fractionable else []}


def clock_json(now_ns: int, calendar: Any) -> dict[str, Any]:
    """``GET /v2/clock`` at the book's time on the exchange calendar (XNYS)."""
    now = pd.Timestamp(now_ns, tz=UTC)
    minute = now.floor("min")
    is_open = bool(calendar.is_open_on_minute(minute))
    next_open = calendar.next_open(minute)
    next_close = calendar.next_close(minute)
    eastern = "America/New_York"
    return {"timestamp": now.tz_convert(eastern).isoformat(), "is_open": is_open,
            "next_open": next_open.tz_convert(eastern).isoformat(),
            "next_close": next_close.tz_convert(eastern).isoformat()}


def calendar_json(calendar: Any, start: str | None, end: str | None, now_ns: int) -> list[dict[str, Any]]:
    """``GET /v2/calendar``: sessions between ``start`` and ``end`` (default: around the book's day)."""
    day = pd.Timestamp(now_ns, tz=UTC).tz_localize(None).normalize()
    lo = pd.Timestamp(start) if start else day - pd.Timedelta(days=7)
    hi = pd.Timestamp(end) if end else day + pd.Timedelta(days=7)
    lo, hi = max(lo, calendar.first_session), min(hi, calendar.last_session)
    out = []
    for session in calendar.sessions_in_range(lo, hi):
        o = calendar.session_open(session).tz_convert("America/New_York")
        c = calendar.session_close(session).tz_convert("America/New_York")
        d = session.strftime("%Y-%m-%d")
        out.append({"date": d, "open": o.strftime("%H:%M"), "close": c.strftime("%H:%M"),
                    "session_open": "0400", "session_close": "2000", "settlement_date": d})
    return out


__all__ = [
    "FRACTION_STEP",
    "account_json",
    "asset_json",
    "build_book",
    "calendar_json",
    "clock_json",
    "exchange_calendar",
    "order_json",
    "order_uuid",
    "position_json",
    "trade_update",
    "venue_id",
]
