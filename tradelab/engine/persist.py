"""Writes engine events to the store, batched into transactions.

What must be durable when (this is what recovery relies on):

* **Before an order leaves** (``OrderApproved``, before the broker sees it)
  the order's row is committed in state ``new``, in a transaction of its own
  (one INSERT). A crash after that point finds the order in the store; the
  restart restores it as an open order, re-sends it under the same client id
  (the broker dedupes) and, when the replay regenerates it, recognises it.
* **After a fill** from a venue that is not simulated, the bar's rows are
  committed at the end of that bar: such fills are facts from outside the
  process and cannot be replayed. A :class:`PaperBroker` fill is a pure
  function of committed state and bars, so it is re-derived exactly by the
  replay after a crash and may wait for the next routine commit
  (``replayable_fills=True``).
* **Otherwise** everything (order updates, fills, positions, cash, risk
  events, equity snapshots in one executemany statement, and the progress
  mark = last fully processed bar) is committed every ``flush_every`` bars and
  at shutdown, in one transaction: a consistent cut.

Why the write-ahead commit holds only the new order row, and why snapshots
may be batched: a restart resumes from the committed progress mark and
replays every later bar, which regenerates every row of those bars (fills,
cash, positions, snapshots: they are derivable) identically. The one thing a
replay cannot regenerate is "this order may already be at the broker", which
is exactly the write-ahead row. What must never happen is a row committed
*ahead of* the progress mark that the replay would then produce a second time
differently: a new order row is safe (the replay finds it among the restored
open orders and does not create it again), a fill or snapshot is not, so
those only ever travel together with the progress mark.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from tradelab.bus import EventBus
from tradelab.events import (
    EquitySnapshotted,
    OrderApproved,
    OrderEvent,
    OrderFilled,
    OrderPartiallyFilled,
    PositionChanged,
    RiskAlert,
)
from tradelab.money import MONEY_CONTEXT, ZERO

SIZED_AT_FILL = "sized at fill"  # marker in the order's reason while it waits (see recovery)


class Recorder:
    """Buffers store writes and commits them in one transaction per flush.

    Parameters
    ----------
    store
        A :class:`tradelab.store.Store`.
    account, run_id
        Where rows belong.
    bus
        The engine's bus; the recorder subscribes to order, position, equity and
        risk events.
    flush_every
        Bars between routine commits (1 = every bar).
    account_id
        The account's row id if already known (saves one lookup per commit).
    replayable_fills
        True when fills come from a simulated venue (re-derived by a replay), so
        a fill does not force a commit at the end of its bar.
    """

    def __init__(self, store: Any, account: str, run_id: int, bus: EventBus,
                 flush_every: int = 50, account_id: int | None = None,
                 replayable_fills: bool = False) -> None:
        self.store, self.account, self.run_id = store, account, run_id
        self.account_id = account_id
        self.replayable_fills = replayable_fills
        self.write_ahead_commits = 0
        #: Called after a routine commit every ``checkpoint_every`` commits (SQLite WAL
        #: checkpoint, see :meth:`tradelab.store.tx.Transaction.defer_wal_checkpoints`).
        self.checkpoint: Any = None
        #: A :class:`tradelab.engine.sideconn.SideConnection` for the write-ahead commit.
        self.side: Any = None
        self.checkpoint_every = 20
        self._since_checkpoint = 0
        self.flush_every = max(int(flush_every), 1)
        self._ops: list[tuple[Any, ...]] = []       # state rows, in event order
        self._snaps: list[dict[str, Any]] = []      # equity snapshots (one executemany per flush)
        self._order_ids: dict[str, int] = {}        # client id → row id of orders written here
        self._progress: datetime | None = None
        self._bars = 0
        self._dirty_fill = False
        self.commits = 0
        self.snapshots_written = 0
        self.peak = ZERO
        for kind, handler in ((OrderEvent, self._on_order), (PositionChanged, self._on_position),
                              (EquitySnapshotted, self._on_equity), (RiskAlert, self._on_risk),
                              (OrderApproved, self._on_approved)):
            bus.subscribe(kind, handler)

    @property
    def pending_snapshots(self) -> int:
        """Snapshots buffered and not yet committed."""
        return len(self._snaps)

    # -- events ---------------------------------------------------------------------
    def _on_order(self, ev: OrderEvent) -> None:
        o = ev.order
        fields: dict[str, Any] = {"status": ev.to_state}
        if ev.from_state is None:  # creation
            fields.update(account=self.account, run_id=self.run_id, symbol=o.symbol, side=o.side,
                          type=o.order_type, quantity=o.quantity if o.quantity is not None else o.estimate,
                          limit_price=o.limit_price, stop_price=o.stop_price,
                          time_in_force=o.time_in_force,
                          reason=SIZED_AT_FILL if o.quantity is None else "")
        else:
            fields.update(filled_quantity=o.filled_quantity, broker_order_id=o.broker_order_id or None)
            if o.quantity is not None:
                fields["quantity"] = o.quantity
            if o.filled_quantity:
                fields["avg_fill_price"] = o.avg_fill_price
            if ev.reason:
                fields["reason"] = ev.reason
            elif o.state.value in ("filled", "cancelled", "expired"):
                fields["reason"] = ""
        at = ev.at if ev.from_state is not None else o.created_at
        self._ops.append(("order", ev.client_order_id, at, fields,
                          (ev.from_state, ev.to_state, ev.reason or None), ev.at))
        if isinstance(ev, OrderFilled | OrderPartiallyFilled):
            f = ev.fill
            self._ops.append(("fill", f.fill_id, f.client_order_id, f.symbol, f.side, f.quantity,
                              f.price, f.fees, f.at))
            self._dirty_fill = not self.replayable_fills

    def _on_position(self, ev: PositionChanged) -> None:
        self._ops.append(("position", ev.symbol, ev.quantity, ev.avg_price, ev.realized_pnl))
        self._ops.append(("cash", ev.cash))

    def _on_equity(self, ev: EquitySnapshotted) -> None:
        equity = ev.equity
        if equity > self.peak:
            self.peak = equity
        peak = self.peak
        dd = MONEY_CONTEXT.divide(peak - equity, peak) if peak > 0 else ZERO
        self._snaps.append({"account": self.account, "at": ev.at, "cash": ev.cash,
                            "positions_value": ev.positions_value, "equity": equity,
                            "drawdown": dd, "run_id": self.run_id})

    def _on_risk(self, ev: RiskAlert) -> None:
        self._ops.append(("risk", ev.rule, ev.severity, ev.message, ev.at, ev.strategy))

    def write_kill_switch(self, engaged: bool, reason: str, by: str, at: datetime) -> None:
        """Persist a kill-switch change made by this engine (durable at once)."""
        self._ops.append(("kill", engaged, reason, by, at))
        self.flush()

    def _on_approved(self, ev: OrderApproved) -> None:
        """Write-ahead: the order's row is durable before the broker sees it."""
        cid = ev.client_order_id
        ops = self._ops
        for i in range(len(ops) - 1, -1, -1):  # the creation is among the last ops
            op = ops[i]
            if op[0] == "order" and op[1] == cid and op[4][0] is None and op[3]:
                break
        else:
            return  # restored from the store or already written: durable
        _, _, at, fields, event, event_at = op
        oid = self.side.insert_order(cid, at, fields) if self.side is not None else None
        if oid is None:  # no side connection, or the id exists already: the checked path
            with self.store.transaction() as tx:
                self._prepare(tx)
                oid = tx.upsert_order_id(cid, at=at, **fields)
        self._order_ids[cid] = oid
        ops[i] = ("order", cid, at, {}, event, event_at)  # the audit row goes with the next flush
        self.write_ahead_commits += 1

    # -- commits --------------------------------------------------------------------
    def end_bar(self, at: datetime) -> None:
        """Mark ``at`` fully processed; commit when due (every N bars or after a fill)."""
        self._progress = at
        self._bars += 1
        if self._dirty_fill or self._bars >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Commit everything buffered (rows, snapshots, progress) in one transaction."""
        if not self._ops and not self._snaps and self._progress is None:
            return
        ops, snaps, progress = self._ops, self._snaps, self._progress
        self._since_checkpoint += 1
        if self.checkpoint is not None and self._since_checkpoint >= self.checkpoint_every:
            # Before this commit, not after: the first commit after a checkpoint restarts
            # the WAL, which costs an fsync; that must be this routine commit, never the
            # write-ahead commit of an order.
            self._since_checkpoint = 0
            self.checkpoint()
        new_ids: dict[str, int] = {}
        with self.store.transaction() as tx:
            self._prepare(tx)
            self._write_ops(tx, ops, new_ids)
            if snaps:
                tx.add_equity_snapshots(snaps)
            if progress is not None:
                tx.set_run_progress(self.run_id, progress)
        # Only after the commit: ids of rows from a rolled-back transaction do not exist.
        self._order_ids.update(new_ids)
        self._ops, self._snaps, self._progress, self._bars, self._dirty_fill = [], [], None, 0, False
        self.commits += 1
        self.snapshots_written += len(snaps)

    def _prepare(self, tx: Any) -> None:
        if self.account_id is not None:
            tx.known_account(self.account, self.account_id)
        if self.checkpoint is not None:
            tx.defer_wal_checkpoints()  # WAL checkpoints happen in routine flushes, never here

    def _write_ops(self, tx: Any, ops: list[tuple[Any, ...]], new_ids: dict[str, int]) -> None:
        # Coalesced, because only the commit is observable: one UPDATE per order with
        # its final fields (every transition still gets its audit row, all in one
        # executemany), the last position per symbol and the last cash (absolute
        # values, not deltas). Orders first: fills and audit rows reference them.
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
            elif kind == "position":
                positions[op[1]] = op
            elif kind == "cash":
                cash = op[1]
            else:
                rest.append(op)
        for cid, (creation, updates, last_at) in orders.items():
            # An order restored on resume is not in the id map: looked up once by client id.
            oid = new_ids.get(cid) or self._order_ids.get(cid)
            if creation is not None:
                oid = tx.upsert_order_id(cid, at=creation[0], **creation[1])
            if updates or oid is None:
                oid = tx.save_order(cid, at=last_at, order_id=oid, **updates)
            new_ids[cid] = oid
        tx.add_order_events_by_id([(new_ids[cid], a, b, at, reason)
                                   for cid, (a, b, reason), at in events])
        for op in rest:
            if op[0] == "fill" and op[2] in new_ids:
                tx.add_fill_by_id(new_ids[op[2]], *op[1:2], *op[3:])
            else:
                self._apply(tx, op)
        for _, symbol, qty, avg, realized in positions.values():
            tx.set_position(self.account, symbol, qty, avg, realized)
        if cash is not None:
            tx.set_cash(self.account, cash)

    def _apply(self, tx: Any, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "fill":
            tx.add_fill(*op[1:])
        elif kind == "risk":
            _, rule, severity, message, at, strategy = op
            tx.add_risk_event(self.account, rule, severity, message, at, strategy)
        elif kind == "kill":
            _, engaged, reason, by, at = op
            tx.set_kill_switch(self.account, engaged, reason, by, at)
        else:  # pragma: no cover - a programming error, not a runtime condition
            raise ValueError(f"unknown op {kind!r}")


def peak_from_curve(curve: list[Any]) -> Decimal | None:
    """The highest stored equity of a curve (``None`` when empty); used on resume."""
    return max((p.equity for p in curve), default=None)

