"""A simulated venue's state on disk, so a restarted simulator keeps its account.

The JSON file holds the bar position, id counters, the event sequence, balances
and every order with its trades (Decimals as strings). Bars are not stored: a
restarted simulator reloads them from the same source and continues at the
stored cursor. Writes are atomic (temporary file + rename).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradelab.brokers.sim.core import Trade, VenueBook, VenueOrder

_DECIMALS = {"quantity", "price", "stop_price", "filled", "filled_quote", "fee", "locked"}


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in d.items()}


def dump(book: VenueBook) -> dict[str, Any]:
    """Everything a restarted venue needs, as JSON-able values."""
    with book.lock:
        orders = []
        for o in book.orders.values():
            d = _plain(asdict(o))
            d["trades"] = [_plain(asdict(t)) for t in o.trades]
            orders.append(d)
        return {"cursor": book.cursor, "cursor_time": str(book.timeline[book.cursor]),
                "next_order_id": book.next_order_id, "next_trade_id": book.next_trade_id,
                "seq": book.seq, "last_ns": book.last_ns, "free": {a: str(v) for a, v in book.free.items()},
                "locked": {a: str(v) for a, v in book.locked.items()}, "orders": orders}


def restore(book: VenueBook, state: dict[str, Any]) -> None:
    """Load what :func:`dump` produced into ``book``."""
    with book.lock:
        book.cursor = min(int(state["cursor"]), len(book.timeline) - 1)
        book.next_order_id, book.next_trade_id = state["next_order_id"], state["next_trade_id"]
        book.seq, book.last_ns = state["seq"], state.get("last_ns", 0)
        book.free = {a: Decimal(v) for a, v in state["free"].items()}
        book.locked = {a: Decimal(v) for a, v in state["locked"].items()}
        book.orders = {}
        for raw in state["orders"]:
            d = dict(raw)
            trades = [Trade(t["trade_id"], Decimal(t["price"]), Decimal(t["qty"]), Decimal(t["quote_qty"]),
                            Decimal(t["fee"]), t["fee_asset"], t["time_ns"]) for t in d.pop("trades")]
            fields: dict[str, Any] = {k: (Decimal(v) if k in _DECIMALS and v is not None else v)
                                      for k, v in d.items()}
            order = VenueOrder(**fields, trades=trades)
            book.orders[order.venue_id] = order


def save(book: VenueBook, path: str | Path) -> None:
    """Write ``book``'s state to ``path`` atomically (a crash mid-write keeps the old file)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(dump(book)))
    os.replace(tmp, path)


def load(book: VenueBook, path: str | Path) -> bool:
    """Restore ``book`` from ``path``; False when there is no file (a fresh venue)."""
    path = Path(path)
    if not path.exists():
        return False
    restore(book, json.loads(path.read_text()))
    return True


__all__ = ["dump", "load", "restore", "save"]
