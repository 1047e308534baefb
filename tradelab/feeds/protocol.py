"""The JSON wire protocol shared by the replay server and :class:`WebsocketFeed`.

Client → server (text frames)::

    {"op": "subscribe", "symbols": ["SPX"], "since": "1999-03-01T00:00:00+00:00" | null,
     "ticks": false}

Server → client (text frames, one JSON object each)::

    {"type": "hello", "server": "tradelab-replay", "version": 1, "mode": "replay" | "live"}
    {"type": "bar", "symbol": "SPX", "time": "<ISO 8601 with offset>",
     "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0}
    {"type": "tick", "symbol": "SPX", "time": "...", "price": 1.0, "size": 1.0}
    {"type": "heartbeat"}
    {"type": "end", "last": {"SPX": "<time of the stream's last bar>"}}

Every bar is checked by :func:`parse_message`; a bad message raises
:class:`Rejected` whose ``reason`` is one of :data:`REASONS` (the counter key a
feed reports). The OHLC sanity rules are the ones
:func:`tradelab.data.validate.validate_bars` applies to historical bars.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from tradelab.interfaces import Bar

VERSION = 1
# Why a message was rejected; the first six are about the message's form, the rest
# are the bar-contract kinds of tradelab.data.validate (same names).
REASONS: tuple[str, ...] = (
    "not_json", "not_object", "unknown_type", "missing_field", "bad_type", "bad_time",
    "nan", "non_positive", "negative_volume", "high_low", "open_close_range",
)
_PRICES = ("open", "high", "low", "close")
_FIELDS = ("symbol", "time", *_PRICES, "volume")
_KNOWN = frozenset({"bar", "tick", "heartbeat", "hello", "end"})


class Rejected(ValueError):
    """A message that breaks the protocol; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def iso(t: Any) -> str:
    """A time stamp as ISO 8601 with its UTC offset (what ``time`` fields carry)."""
    return t.isoformat()


def parse_time(value: Any) -> datetime:
    """An ISO 8601 string with an offset → an aware UTC ``datetime``.

    Raises
    ------
    Rejected
        ``bad_time``: not a string, unparsable, or naive (a live feed must say its zone).
    """
    if not isinstance(value, str):
        raise Rejected("bad_time", f"time is {type(value).__name__}")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected("bad_time", repr(value)) from None
    if t.tzinfo is None:
        raise Rejected("bad_time", f"{value!r} has no UTC offset")
    return t.astimezone(UTC)


def encode_bar(symbol: str, time: Any, o: float, h: float, low: float, c: float,
               v: float) -> str:
    """A bar message (floats round-trip exactly through ``json``)."""
    return json.dumps({"type": "bar", "symbol": symbol, "time": iso(time), "open": o,
                       "high": h, "low": low, "close": c, "volume": v})


def encode_tick(symbol: str, time: Any, price: float, size: float) -> str:
    """A tick message."""
    return json.dumps({"type": "tick", "symbol": symbol, "time": iso(time), "price": price,
                       "size": size})


def _number(msg: dict[str, Any], key: str) -> float:
    value = msg[key]
    # bool is an int subclass; a true/false price is a type error, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected("bad_type", f"{key} is {type(value).__name__}")
    return float(value)


def check_bar(o: float, h: float, low: float, c: float, v: float) -> None:
    """The bar-contract value rules (as in :mod:`tradelab.data.validate`).

    Raises
    ------
    Rejected
        ``nan``, ``non_positive``, ``negative_volume``, ``high_low`` or
        ``open_close_range`` (checked in that order).
    """
    if not all(math.isfinite(x) for x in (o, h, low, c, v)):
        raise Rejected("nan")
    if min(o, h, low, c) <= 0:
        raise Rejected("non_positive")
    if v < 0:
        raise Rejected("negative_volume")
    if h < low:
        raise Rejected("high_low", f"high {h} < low {low}")
    if not (low <= o <= h and low <= c <= h):
        raise Rejected("open_close_range")


def parse_message(raw: str | bytes) -> tuple[str, Any]:
    """Decode and check one server message.

    Returns
    -------
    tuple
        ``("bar", Bar)``, ``("tick", (symbol, time, price, size))``, or
        ``(type, dict)`` for ``hello``, ``heartbeat`` and ``end``.

    Raises
    ------
    Rejected
        The message is malformed; ``reason`` says how.
    """
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Rejected("not_json") from None
    if not isinstance(msg, dict):
        raise Rejected("not_object")
    kind = msg.get("type")
    if kind not in _KNOWN:
        raise Rejected("unknown_type", repr(kind))
    if kind == "bar":
        missing = [f for f in _FIELDS if f not in msg]
        if missing:
            raise Rejected("missing_field", ", ".join(missing))
        if not isinstance(msg["symbol"], str) or not msg["symbol"]:
            raise Rejected("bad_type", "symbol")
        o, h, low, c, v = (_number(msg, k) for k in (*_PRICES, "volume"))
        t = parse_time(msg["time"])
        check_bar(o, h, low, c, v)
        return "bar", Bar(msg["symbol"], t, o, h, low, c, v)
    if kind == "tick":
        missing = [f for f in ("symbol", "time", "price", "size") if f not in msg]
        if missing:
            raise Rejected("missing_field", ", ".join(missing))
        price, size = _number(msg, "price"), _number(msg, "size")
        if not (math.isfinite(price) and math.isfinite(size)):
            raise Rejected("nan")
        if price <= 0:
            raise Rejected("non_positive")
        if size < 0:
            raise Rejected("negative_volume")
        return "tick", (str(msg["symbol"]), parse_time(msg["time"]), price, size)
    if kind == "end":
        last = msg.get("last")
        if not isinstance(last, dict):
            raise Rejected("missing_field", "last")
        return "end", {str(s): parse_time(t) for s, t in last.items()}
    return kind, msg


def subscribe_message(symbols: list[str], since: datetime | None, ticks: bool = False) -> str:
    """The client's subscribe request."""
    return json.dumps({"op": "subscribe", "symbols": symbols,
                       "since": None if since is None else iso(since), "ticks": ticks})
