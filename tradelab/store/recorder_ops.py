"""How a :class:`~tradelab.store.recorder.Recorder` flush turns its buffered ops into rows.

Split from the recorder (which buffers events and decides when to commit) because
this is the part that knows the tables: which ops coalesce, which go through the
driver-level writer (:mod:`tradelab.store.bulkwrite`) and which through the
Transaction methods.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def routine(rec: Any, ops: list[tuple[Any, ...]]) -> bool:
    """Whether a flush's ops can all go through the driver-level writer (see below)."""
    # Whether every op has a DriverWriter statement: orders already written (by the
    # write-ahead or an earlier flush) with the usual update fields, their fills,
    # positions and cash. Creations, risk events and kill-switch rows take the
    # Transaction path.
    from tradelab.store.bulkwrite import ORDER_UPDATE_FIELDS

    known = rec._order_ids
    for op in ops:
        kind = op[0]
        if kind == "order":
            if op[1] not in known or (op[4][0] is None and op[3]) \
                    or not ORDER_UPDATE_FIELDS.issuperset(op[3]):
                return False
        elif kind == "fill":
            if op[2] not in known:
                return False
        elif kind not in ("position", "cash", "written"):
            return False
    return True


def write_ops(rec: Any, tx: Any, ops: list[tuple[Any, ...]], new_ids: dict[str, int],
              cur: Any = None, drv: Any = None) -> None:
    """Write a flush's buffered ops for recorder ``rec`` inside ``tx`` (coalesced, see below)."""
    # Coalesced, because only the commit is observable: one UPDATE per order with
    # its final fields (every transition still gets its audit row, all in one
    # executemany), the last position per symbol and the last cash (absolute
    # values, not deltas). Orders first: fills and audit rows reference them.
    if rec.shared:  # lock first, as approvals do: one lock order, no deadlocks
        tx.lock_account(rec.account_id if rec.account_id is not None else rec.account)
    orders: dict[str, list[Any]] = {}   # cid → [creation (at, fields) | None, updates, last at]
    events: list[tuple[str, tuple[Any, ...], datetime]] = []
    positions: dict[str, tuple[Any, ...]] = {}
    cash = None
    rest = []
    for op in ops:
        kind = op[0]
        if kind == "order":
            _, cid, at, fields, event, event_at = op
            entry = orders.get(cid)
            if entry is None:
                entry = orders[cid] = [None, {}, at]
            if event[0] is None and fields:
                entry[0] = (at, fields)  # created, not yet written (never approved)
            else:
                entry[1].update(fields)
                entry[2] = at
            events.append((cid, event, event_at))
        elif kind == "written":
            continue  # committed by the write-ahead (row and `new` audit row)
        elif kind == "position":
            positions[op[1]] = op
        elif kind == "cash":
            cash = op[1]
        else:
            rest.append(op)
    # The common statements go through the DriverWriter (same transaction, same
    # bytes) when there is one; anything unusual through the Transaction methods.
    from tradelab.store.bulkwrite import ORDER_UPDATE_FIELDS

    aid = rec.account_id
    for cid, (creation, updates, last_at) in orders.items():
        # An order restored on resume is not in the id map: looked up once by client id.
        oid = new_ids.get(cid) or rec._order_ids.get(cid)
        if creation is not None:
            oid = tx.upsert_order_id(cid, at=creation[0], **creation[1])
        if drv is not None and oid is not None and ORDER_UPDATE_FIELDS.issuperset(updates):
            if updates:
                drv.update_order(cur, oid, updates, last_at)
        elif updates or oid is None:
            oid = tx.save_order(cid, at=last_at, order_id=oid, **updates)
        new_ids[cid] = oid
    rows = [(new_ids[cid], a, b, at, reason) for cid, (a, b, reason), at in events]
    if drv is not None:
        drv.add_order_events(cur, rows)
    else:
        tx.add_order_events_by_id(rows)
    booked = []
    for op in rest:
        if op[0] == "fill" and op[2] in new_ids:
            if drv is not None:
                drv.add_fill(cur, new_ids[op[2]], *op[1:2], *op[3:])
            elif tx.add_fill_by_id(new_ids[op[2]], *op[1:2], *op[3:]):
                booked.append(op[3:8])
        else:
            apply_op(rec, tx, op)
    if rec.shared:  # onto the stored account (each fill once: duplicates were not inserted)
        from tradelab.store.shared_repo import book_fills

        book_fills(tx, tx._account_id(rec.account), booked)
        return
    for _, symbol, qty, avg, realized in positions.values():
        if drv is not None:
            drv.set_position(cur, aid, symbol, qty, avg, realized)
        else:
            tx.set_position(rec.account, symbol, qty, avg, realized)
    if cash is not None:
        if drv is not None:
            drv.set_cash(cur, aid, cash)
        elif aid is not None:
            tx.set_cash_by_id(aid, cash)
        else:
            tx.set_cash(rec.account, cash)

def apply_op(rec: Any, tx: Any, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "fill":
        tx.add_fill(*op[1:])
    elif kind == "risk":
        _, rule, severity, message, at, strategy = op
        tx.add_risk_event(rec.account, rule, severity, message, at, strategy)
    elif kind == "kill":
        _, engaged, reason, by, at = op
        tx.set_kill_switch(rec.account, engaged, reason, by, at)
    else:  # pragma: no cover - a programming error, not a runtime condition
        raise ValueError(f"unknown op {kind!r}")


__all__ = ["apply_op", "routine", "write_ops"]
