"""Writes engine events to the store, batched into transactions.

What must be durable when (this is what recovery relies on):

* **Before an order leaves** (``OrderApproved``, before the broker sees it)
  everything buffered is committed, including the order row in state ``new``.
  A crash after that point finds the order in the store; the restart
  regenerates the same client id and reconciles instead of sending it twice.
* **After a fill** the bar's rows are committed at the end of that bar.
* **Otherwise** snapshots and the run's progress are committed every
  ``flush_every`` bars in one transaction (not one per row). Bars processed
  after the last commit are simply replayed on restart: replaying from a
  committed state is deterministic, so nothing recoverable is lost.

Every commit is a consistent cut (cash, positions, orders, progress together).
"""

from __future__ import annotations

from collections.abc import Callable
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
from tradelab.money import ZERO

SIZED_AT_FILL = "sized at fill"  # marker in the order's reason while it waits (see recovery)


class Recorder:
    """Buffers store writes and commits them in one transaction per flush.

    Parameters
    ----------
    store
        A :class:`tradelab.store.Store`.
    account, run_id
        Where rows belong.
    flush_every
        Bars between routine commits (1 = every bar).
    """

    def __init__(self, store: Any, account: str, run_id: int, bus: EventBus,
                 flush_every: int = 50) -> None:
        self.store, self.account, self.run_id = store, account, run_id
        self.flush_every = max(int(flush_every), 1)
        self._ops: list[tuple[Callable[..., Any], tuple, dict]] = []
        self._progress: datetime | None = None
        self._bars = 0
        self._dirty_fill = False
        self.commits = 0
        self.peak = ZERO
        for kind, handler in ((OrderEvent, self._on_order), (PositionChanged, self._on_position),
                              (EquitySnapshotted, self._on_equity), (RiskAlert, self._on_risk),
                              (OrderApproved, self._on_approved)):
            bus.subscribe(kind, handler)

    def _add(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._ops.append((fn, args, kwargs))

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
        self._add(_upsert_order, ev.client_order_id, at, fields)
        self._add(_order_event, ev.client_order_id, ev.from_state, ev.to_state, ev.at, ev.reason or None)
        if isinstance(ev, OrderFilled | OrderPartiallyFilled):
            f = ev.fill
            self._add(_fill, f.fill_id, f.client_order_id, f.symbol, f.side, f.quantity, f.price, f.fees,
                      f.at)
            self._dirty_fill = True

    def _on_position(self, ev: PositionChanged) -> None:
        self._add(_position, self.account, ev.symbol, ev.quantity, ev.avg_price, ev.realized_pnl)
        self._add(_cash, self.account, ev.cash)

    def _on_equity(self, ev: EquitySnapshotted) -> None:
        self.peak = max(self.peak, ev.equity)
        dd = (self.peak - ev.equity) / self.peak if self.peak > 0 else ZERO
        self._add(_equity, self.account, ev.at, ev.cash, ev.positions_value, ev.equity, dd, self.run_id)

    def _on_risk(self, ev: RiskAlert) -> None:
        self._add(_risk, self.account, ev.rule, ev.severity, ev.message, ev.at, ev.strategy)

    def write_kill_switch(self, engaged: bool, reason: str, by: str, at: datetime) -> None:
        """Persist a kill-switch change made by this engine (durable at once)."""
        self._add(_kill, self.account, engaged, reason, by, at)
        self.flush()

    def _on_approved(self, ev: OrderApproved) -> None:
        self.flush()  # write-ahead: the order is durable before the broker sees it

    # -- commits --------------------------------------------------------------------
    def end_bar(self, at: datetime) -> None:
        """Mark ``at`` fully processed; commit when due (every N bars or after a fill)."""
        self._progress = at
        self._bars += 1
        if self._dirty_fill or self._bars >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Commit everything buffered (and the progress) in one transaction."""
        if not self._ops and self._progress is None:
            return
        ops, progress = self._ops, self._progress
        with self.store.transaction() as tx:
            for fn, args, kwargs in ops:
                fn(tx, *args, **kwargs)
            if progress is not None:
                tx.set_run_progress(self.run_id, progress)
        self._ops, self._progress, self._bars, self._dirty_fill = [], None, 0, False
        self.commits += 1


def _upsert_order(tx: Any, cid: str, at: datetime, fields: dict) -> None:
    tx.upsert_order(cid, at=at, **fields)


def _order_event(tx: Any, cid: str, a: str | None, b: str, at: datetime, reason: str | None) -> None:
    tx.add_order_event(cid, a, b, at, reason)


def _fill(tx: Any, *args: Any) -> None:
    tx.add_fill(*args)


def _position(tx: Any, account: str, symbol: str, qty: Decimal, avg: Decimal, realized: Decimal) -> None:
    tx.set_position(account, symbol, qty, avg, realized)


def _cash(tx: Any, account: str, cash: Decimal) -> None:
    tx.set_cash(account, cash)


def _equity(tx: Any, account: str, at: datetime, cash: Decimal, pv: Decimal, eq: Decimal, dd: Decimal,
            run_id: int) -> None:
    tx.add_equity_snapshot(account, at, cash, pv, eq, dd, run_id=run_id)


def _risk(tx: Any, account: str, rule: str, severity: str, message: str, at: datetime,
          strategy: str | None) -> None:
    tx.add_risk_event(account, rule, severity, message, at, strategy)


def _kill(tx: Any, account: str, engaged: bool, reason: str, by: str, at: datetime) -> None:
    tx.set_kill_switch(account, engaged, reason, by, at)
