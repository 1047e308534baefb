"""Binance spot JSON shapes, error bodies and request signatures for the simulator.

Pure functions from :mod:`tradelab.brokers.sim.core` objects to what Binance's
spot REST API, WebSocket API and market streams send (field names and string
formatting as Binance documents them and ccxt 4.5.90 parses them), plus the
HMAC-SHA256 check of a signed request.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from decimal import Decimal
from typing import Any

import pandas as pd

from tradelab.brokers.sim.core import ExecutionEvent, Market, VenueBook, VenueError, VenueOrder

#: VenueError code → (HTTP status, Binance code); the message is the VenueError's.
ERRORS: dict[str, tuple[int, int]] = {
    "unknown_symbol": (400, -1121), "lot_size": (400, -1013), "price_filter": (400, -1013),
    "min_notional": (400, -1013), "insufficient_balance": (400, -2010),
    "duplicate_client_id": (400, -2010), "unknown_order": (400, -2013), "bad_request": (400, -1102),
    "order_closed": (400, -2011),
}
TYPES = {"market": "MARKET", "limit": "LIMIT", "stop": "STOP_LOSS"}
INTERVALS = {60: "1m", 180: "3m", 300: "5m", 900: "15m", 1800: "30m", 3600: "1h", 7200: "2h",
             14400: "4h", 21600: "6h", 28800: "8h", 43200: "12h", 86400: "1d", 259200: "3d",
             604800: "1w"}
STABLE = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USD", "DAI")


def error_body(code: int, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg}


def venue_error(exc: VenueError) -> tuple[int, dict[str, Any]]:
    """HTTP status and Binance body for a core refusal."""
    status, code = ERRORS.get(exc.code, (400, -1013))
    msg = exc.message
    if exc.code == "unknown_symbol":
        msg = "Invalid symbol."
    elif exc.code == "unknown_order":
        msg = "Order does not exist."
    return status, error_body(code, msg)


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def split_signature(raw: str) -> tuple[str, str | None]:
    """``raw`` (a query string or form body) without its ``signature`` item, and the signature."""
    kept, signature = [], None
    for part in raw.split("&") if raw else []:
        if part.startswith("signature="):
            signature = part[len("signature="):]
        else:
            kept.append(part)
    return "&".join(kept), signature


def fmt(x: Decimal | float | None, places: int = 8) -> str:
    """Binance's fixed 8-decimal strings."""
    if x is None:
        x = Decimal(0)
    return f"{Decimal(repr(x)) if isinstance(x, float) else x:.{places}f}"


def interval_name(interval_ns: int) -> str:
    return INTERVALS.get(interval_ns // 1_000_000_000, f"{interval_ns // 60_000_000_000}m")


def market_for(unified: str, closes: pd.Series) -> Market:
    """Default rules for a replayed symbol (``BASE/QUOTE``), from its lowest close ``p``:
    tick ``10^(floor(log10 p) - 6)``, lot step the largest power of ten worth at most a
    tenth of the min notional, which is 10 for a stable-coin quote, else 0.0005."""
    base, _, quote = unified.partition("/")
    price = float(closes.min()) if len(closes) else 1.0
    price = price if price > 0 else 1.0
    min_notional = Decimal(10) if quote in STABLE else Decimal("0.0005")
    tick = Decimal(1).scaleb(max(math.floor(math.log10(price)) - 6, -8))
    step = Decimal(1).scaleb(max(min(math.floor(math.log10(float(min_notional) / 10 / price)), 0), -8))
    return Market(base + quote, unified, base, quote, step, tick, step, Decimal(9_000_000),
                  min_notional)


def build_book(bars: dict[str, pd.DataFrame], *, markets: list[Market] | None = None,
               balances: dict[str, Decimal | float | str] | None = None,
               fee_rate: Decimal | float | str = "0.001", volume_fraction: float | None = None,
               start: int = 0) -> VenueBook:
    """A :class:`VenueBook` for ``bars`` keyed by unified symbol (``BTC/USDT``).

    Markets default to :func:`~tradelab.brokers.sim.binance_wire.market_for`; balances
    to 100,000 of every quote asset.
    """
    given = {m.unified: m for m in markets or []}
    mkts = [given.get(u) or market_for(u, f["close"]) for u, f in bars.items()]
    if balances is None:
        balances = {m.quote: 100_000 for m in mkts}
    return VenueBook(mkts, {m.symbol: bars[m.unified] for m in mkts},
                     balances={a: Decimal(str(v)) for a, v in balances.items()},
                     fee_rate=Decimal(str(fee_rate)), volume_fraction=volume_fraction, start=start)


def symbol_info(m: Market) -> dict[str, Any]:
    """One ``exchangeInfo.symbols`` entry (filters PRICE_FILTER, LOT_SIZE, NOTIONAL)."""
    return {
        "symbol": m.symbol, "status": "TRADING", "baseAsset": m.base, "baseAssetPrecision": 8,
        "quoteAsset": m.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET", "STOP_LOSS"], "icebergAllowed": False,
        "ocoAllowed": False, "otoAllowed": False, "quoteOrderQtyMarketAllowed": False,
        "allowTrailingStop": False, "cancelReplaceAllowed": False, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False, "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER", "allowedSelfTradePreventionModes": ["NONE"],
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": fmt(m.tick), "maxPrice": "1000000.00000000",
             "tickSize": fmt(m.tick)},
            {"filterType": "LOT_SIZE", "minQty": fmt(m.min_qty), "maxQty": fmt(m.max_qty),
             "stepSize": fmt(m.step)},
            {"filterType": "NOTIONAL", "minNotional": fmt(m.min_notional), "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        ],
    }


def exchange_info(book: VenueBook, server_ms: int) -> dict[str, Any]:
    return {"timezone": "UTC", "serverTime": server_ms,
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                            "limit": 6000},
                           {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                            "limit": 100}],
            "exchangeFilters": [], "symbols": [symbol_info(m) for m in book.markets.values()]}


def order_json(o: VenueOrder, *, fills: bool = False) -> dict[str, Any]:
    """An order as ``GET /api/v3/order`` (and ``openOrders``/``allOrders``) answers it."""
    out: dict[str, Any] = {
        "symbol": o.symbol, "orderId": o.venue_id, "orderListId": -1, "clientOrderId": o.client_id,
        "price": fmt(o.price), "origQty": fmt(o.quantity), "executedQty": fmt(o.filled),
        "cummulativeQuoteQty": fmt(o.filled_quote), "status": o.status, "timeInForce": o.tif,
        "type": TYPES[o.type], "side": o.side.upper(), "stopPrice": fmt(o.stop_price),
        "icebergQty": fmt(0), "time": o.created_ns // 1_000_000, "updateTime": o.updated_ns // 1_000_000,
        "isWorking": o.type != "stop" or o.triggered, "workingTime": o.created_ns // 1_000_000,
        "origQuoteOrderQty": fmt(0), "selfTradePreventionMode": "NONE",
    }
    if fills:
        out["transactTime"] = out.pop("time")
        out["fills"] = [{"price": fmt(t.price), "qty": fmt(t.qty), "commission": fmt(t.fee),
                         "commissionAsset": t.fee_asset, "tradeId": t.trade_id} for t in o.trades]
    return out


def trade_json(o: VenueOrder, t: Any) -> dict[str, Any]:
    """One ``GET /api/v3/myTrades`` entry."""
    return {"symbol": o.symbol, "id": t.trade_id, "orderId": o.venue_id, "orderListId": -1,
            "price": fmt(t.price), "qty": fmt(t.qty), "quoteQty": fmt(t.quote_qty),
            "commission": fmt(t.fee), "commissionAsset": t.fee_asset, "time": t.time_ns // 1_000_000,
            "isBuyer": o.side == "buy", "isMaker": o.type == "limit", "isBestMatch": True}


def execution_report(ev: ExecutionEvent) -> dict[str, Any]:
    """The user-data stream's ``executionReport`` for one core event."""
    o, t = ev.order, ev.trade
    x = {"new": "NEW", "trade": "TRADE", "canceled": "CANCELED", "expired": "EXPIRED",
         "rejected": "REJECTED"}[ev.kind]
    ms = ev.time_ns // 1_000_000
    return {
        "e": "executionReport", "E": ms, "s": o.symbol, "c": o.client_id, "S": o.side.upper(),
        "o": TYPES[o.type], "f": o.tif, "q": fmt(o.quantity), "p": fmt(o.price), "P": fmt(o.stop_price),
        "F": fmt(0), "g": -1, "C": o.client_id if ev.kind == "canceled" else "", "x": x, "X": o.status,
        "r": "NONE", "i": o.venue_id, "l": fmt(t.qty if t else 0), "z": fmt(o.filled),
        "L": fmt(t.price if t else 0), "n": fmt(t.fee if t else 0), "N": t.fee_asset if t else None,
        "T": ms, "t": t.trade_id if t else -1, "v": 0, "I": ev.seq, "w": o.is_open, "m": False,
        "M": False, "O": o.created_ns // 1_000_000, "Z": fmt(o.filled_quote),
        "Y": fmt(t.quote_qty if t else 0), "Q": fmt(0), "W": o.created_ns // 1_000_000,
        "V": "NONE",
    }


def account_position(book: VenueBook, assets: list[str], ms: int) -> dict[str, Any]:
    """``outboundAccountPosition`` for the assets an event touched."""
    rows = []
    for a in assets:
        free, locked = book.balance(a)
        rows.append({"a": a, "f": fmt(free), "l": fmt(locked)})
    return {"e": "outboundAccountPosition", "E": ms, "u": ms, "B": rows}


def account(book: VenueBook, ms: int) -> dict[str, Any]:
    """``GET /api/v3/account``."""
    balances = []
    for a in book.assets():
        free, locked = book.balance(a)
        balances.append({"asset": a, "free": fmt(free), "locked": fmt(locked)})
    return {"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": ms,
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 1}


def kline_row(t: pd.Timestamp, bar: pd.Series, interval_ns: int, forming: bool = False) -> list[Any]:
    """One ``GET /api/v3/klines`` row; a forming bar shows its open only."""
    start = int(pd.Timestamp(t).value) // 1_000_000
    o = float(bar["open"])
    h, low, c, v = (o, o, o, 0.0) if forming else (float(bar["high"]), float(bar["low"]),
                                                     float(bar["close"]), float(bar["volume"]))
    return [start, fmt(o), fmt(h), fmt(low), fmt(c), fmt(v), start + interval_ns // 1_000_000 - 1,
            fmt(v * c), 1 if v else 0, fmt(v / 2), fmt(v * c / 2), "0"]


def kline_event(symbol: str, row: list[Any], interval: str, closed: bool) -> dict[str, Any]:
    """A ``<symbol>@kline_<interval>`` stream event built from a kline row."""
    return {"e": "kline", "E": row[6] + 1 if closed else row[0], "s": symbol,
            "k": {"t": row[0], "T": row[6], "s": symbol, "i": interval, "f": 0, "L": 0, "o": row[1],
                  "c": row[4], "h": row[2], "l": row[3], "v": row[5], "n": row[8], "x": closed,
                  "q": row[7], "V": row[9], "Q": row[10], "B": "0"}}


def coins(book: VenueBook) -> list[dict[str, Any]]:
    """``GET /sapi/v1/capital/config/getall`` (what ccxt's ``fetch_currencies`` reads)."""
    assets = sorted({m.base for m in book.markets.values()} | {m.quote for m in book.markets.values()})
    return [{"coin": a, "name": a, "depositAllEnable": False, "withdrawAllEnable": False,
             "free": "0", "locked": "0", "freeze": "0", "withdrawing": "0", "ipoing": "0",
             "ipoable": "0", "storage": "0", "isLegalMoney": False, "trading": True,
             "networkList": []} for a in assets]


__all__ = [
    "ERRORS",
    "account",
    "account_position",
    "build_book",
    "coins",
    "error_body",
    "exchange_info",
    "execution_report",
    "interval_name",
    "kline_event",
    "kline_row",
    "market_for",
    "order_json",
    "sign",
    "split_signature",
    "symbol_info",
    "trade_json",
    "venue_error",
]
