"""What ccxt says, in tradelab's words: order reports, venue rules, URLs.

* :func:`stream_report` maps one order update from ccxt.pro ``watch_orders``. On
  Binance spot the raw ``executionReport`` (``info``) is read directly: cumulative
  quantity ``z``, cumulative quote ``Z`` (average = ``Z / z``), last execution
  ``l``/``L``/``n``/``t``, transaction time ``T``. Other exchanges go through
  ccxt's unified fields.
* :func:`rest_report` maps a ``fetch_order`` answer, optionally with the order's
  trades (``fetch_my_trades``) for its fees and last execution.
* :func:`rules_from_market` reads lot, tick and minimums from a ccxt market. With
  ccxt's ``TICK_SIZE`` precision mode (Binance) ``precision.amount`` *is* the lot
  step and ``precision.price`` the tick; with ``DECIMAL_PLACES`` they are digit
  counts. Binance's filter strings are used when present (exact decimals).
* :func:`override_urls` points a ccxt client at another host (a simulator, a
  proxy) by replacing the scheme and host of every REST (or websocket) URL and
  keeping the paths.

Sequence numbers order one order's reports: venue time in ms × 1000 plus a rank
(new < trade < terminal < a REST snapshot) so reports of the same millisecond
still sort in the venue's order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tradelab.data.ccxt_urls import override_urls
from tradelab.money import ZERO
from tradelab.orders.brokers import OrderReport
from tradelab.orders.rules import VenueRules

_BINANCE_STATUS = {"NEW": "accepted", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled",
                   "CANCELED": "cancelled", "PENDING_CANCEL": "cancelled", "REJECTED": "rejected",
                   "EXPIRED": "expired", "EXPIRED_IN_MATCH": "expired"}
_UNIFIED_STATUS = {"open": "accepted", "closed": "filled", "canceled": "cancelled",
                   "cancelled": "cancelled", "expired": "expired", "rejected": "rejected"}
_RANK = {"NEW": 1, "TRADE": 2, "CANCELED": 3, "EXPIRED": 3, "REJECTED": 3, "TRADE_PREVENTION": 3}
REST_RANK = 9


def dec(x: Any) -> Decimal:
    """An exact Decimal from a venue string or a ccxt float (``None`` → 0)."""
    if x is None or x == "":
        return ZERO
    try:
        return Decimal(x if isinstance(x, str) else repr(float(x)))
    except (InvalidOperation, ValueError):
        return ZERO


def _time(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms or 0) / 1000, tz=UTC)


def _fee_value(cost: Decimal, currency: str | None, price: Decimal, market: dict[str, Any] | None) -> Decimal:
    """A fee in the quote currency (a base-asset fee is valued at the execution price)."""
    if market is not None and currency and currency == market.get("base"):
        return cost * price
    return cost


def stream_report(order: dict[str, Any], market: dict[str, Any] | None = None) -> OrderReport:
    """An :class:`OrderReport` from one ``watch_orders`` update."""
    info = order.get("info") or {}
    if info.get("e") == "executionReport":
        z, quote_z = dec(info.get("z")), dec(info.get("Z"))
        last_q, last_p = dec(info.get("l")), dec(info.get("L"))
        status = _BINANCE_STATUS.get(info.get("X", ""), "accepted")
        trade = int(info.get("t", -1))
        fee = _fee_value(dec(info.get("n")), info.get("N"), last_p, market) if trade >= 0 else ZERO
        ms = int(info.get("T") or info.get("E") or 0)
        return OrderReport(
            client_order_id=str(info.get("c") if info.get("x") != "CANCELED" or not info.get("C")
                                else info.get("C")),
            venue_order_id=str(info.get("i")), status=status,
            symbol=order.get("symbol") or str(info.get("s")), side=str(info.get("S", "")).lower(),
            quantity=dec(info.get("q")), cum_quantity=z,
            avg_price=quote_z / z if z > 0 else ZERO, venue_time=_time(ms),
            last_quantity=last_q if trade >= 0 else ZERO, last_price=last_p if trade >= 0 else ZERO,
            fee=fee, trade_id=str(trade) if trade >= 0 else "",
            sequence=ms * 1000 + _RANK.get(str(info.get("x")), 1),
            reason="" if info.get("r") in (None, "NONE") else str(info.get("r")))
    return rest_report(order, None, market, rank=5)


def rest_report(order: dict[str, Any], trades: list[dict[str, Any]] | None,
                market: dict[str, Any] | None = None, rank: int = REST_RANK) -> OrderReport:
    """An :class:`OrderReport` from a unified ccxt order (``fetch_order``, ``fetch_open_orders``)
    and, when given, the order's trades (for the fees and the last execution)."""
    info = order.get("info") or {}
    filled = dec(order.get("filled"))
    raw_status = info.get("status") or info.get("X")
    status = (_BINANCE_STATUS.get(raw_status) if raw_status else None) or _UNIFIED_STATUS.get(
        str(order.get("status")), "accepted")
    if status == "accepted" and filled > 0:
        status = "partially_filled"
    avg = dec(order.get("average"))
    if avg == 0 and filled > 0:
        cost = dec(info.get("cummulativeQuoteQty") or order.get("cost"))
        avg = cost / filled if cost else ZERO
    cum_fee: Decimal | None = None
    last_q = last_p = fee = ZERO
    trade_id = ""
    if trades:
        ordered = sorted(trades, key=lambda t: (t.get("timestamp") or 0, str(t.get("id"))))
        cum_fee = sum((_fee_value(dec((t.get("fee") or {}).get("cost")), (t.get("fee") or {}).get("currency"),
                                  dec(t.get("price")), market) for t in ordered), ZERO)
        last = ordered[-1]
        last_q, last_p, trade_id = dec(last.get("amount")), dec(last.get("price")), str(last.get("id"))
        fee = _fee_value(dec((last.get("fee") or {}).get("cost")), (last.get("fee") or {}).get("currency"),
                         last_p, market)
    elif order.get("fee") and (order["fee"] or {}).get("cost") is not None:
        cum_fee = dec(order["fee"]["cost"])
    ms = int(order.get("lastUpdateTimestamp") or order.get("lastTradeTimestamp")
             or order.get("timestamp") or 0)
    return OrderReport(
        client_order_id=str(order.get("clientOrderId") or ""), venue_order_id=str(order.get("id") or ""),
        status=status, symbol=str(order.get("symbol")), side=str(order.get("side") or ""),
        quantity=dec(order.get("amount")), cum_quantity=filled, avg_price=avg, venue_time=_time(ms),
        last_quantity=last_q, last_price=last_p, fee=fee, trade_id=trade_id, cum_fee=cum_fee,
        sequence=ms * 1000 + rank)


def _filters(market: dict[str, Any]) -> dict[str, dict[str, Any]]:
    info = market.get("info") or {}
    return {str(f.get("filterType")): f for f in info.get("filters") or [] if isinstance(f, dict)}


def rules_from_market(symbol: str, market: dict[str, Any], precision_mode: int,
                      shortable: bool = False) -> VenueRules:
    """:class:`VenueRules` of one ccxt market (see the module docstring)."""
    from ccxt.base.decimal_to_precision import TICK_SIZE

    prec, limits = market.get("precision") or {}, market.get("limits") or {}

    def grid(p: Any) -> Decimal:
        if p is None:
            return ZERO
        if precision_mode == TICK_SIZE:
            return dec(p)
        return Decimal(1).scaleb(-int(p))

    step, tick = grid(prec.get("amount")), grid(prec.get("price"))
    amount = limits.get("amount") or {}
    min_qty, max_qty = dec(amount.get("min")), dec(amount.get("max"))
    min_notional = dec((limits.get("cost") or {}).get("min"))
    f = _filters(market)
    if "LOT_SIZE" in f:
        step, min_qty, max_qty = (dec(f["LOT_SIZE"].get(k)) for k in ("stepSize", "minQty", "maxQty"))
    if "PRICE_FILTER" in f:
        tick = dec(f["PRICE_FILTER"].get("tickSize"))
    for name in ("NOTIONAL", "MIN_NOTIONAL"):
        if name in f:
            min_notional = dec(f[name].get("minNotional"))
            break
    return VenueRules(symbol=symbol, step=step, tick=tick, min_quantity=min_qty, max_quantity=max_qty,
                      min_notional=min_notional, shortable=shortable)


def loopback_urls(exchange_id: str, rest_url: str,
                  ws_url: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(urls, ws_urls)`` of ``exchange_id`` moved to ``rest_url`` / ``ws_url``, in the form
    :class:`~tradelab.feeds.ccxt_feed.CcxtFeed` takes (``urls["api"]`` without ``ws``, and
    ``urls["api"]["ws"]``): how a feed takes its bars from the venue simulator."""
    import ccxt
    import ccxt.pro

    api = getattr(ccxt, exchange_id)().urls["api"]
    rest = {k: override_urls(v, rest_url) for k, v in api.items() if k != "ws"}
    ws: dict[str, Any] = {}
    if ws_url is not None:
        ws = override_urls(getattr(ccxt.pro, exchange_id)().urls["api"]["ws"], ws_url)
    return rest, ws


__all__ = ["dec", "loopback_urls", "override_urls", "rest_report", "rules_from_market", "stream_report"]
