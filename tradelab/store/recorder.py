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

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tradelab.bus import STAGE_DURABLE, STAGE_RECORD, EventBus
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
from tradelab.store.errors import LeaseLost, failure
from tradelab.store.recorder_ops import routine, write_ops

SIZED_AT_FILL = "sized at fill"  # marker in the order's reason while it waits (see recovery)
Snap = tuple[datetime, Decimal, Decimal, Decimal]  # at, cash, positions value, equity


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
    flush_seconds
        Wall-clock seconds after which the next bar commits anyway (0 = off).
    timer
        Monotonic clock for ``flush_seconds`` (tests inject one).
    account_id
        The account's row id if already known (saves one lookup per commit).
    equity_events
        Record ``EquitySnapshotted`` events from the bus (default); ``False`` when the
        owner calls :meth:`snapshot` itself (the engine).
    replayable_fills
        True when fills come from a simulated venue (re-derived by a replay), so
        a fill does not force a commit at the end of its bar.
    """

    def __init__(self, store: Any, account: str, run_id: int, bus: EventBus,
                 flush_every: int = 50, account_id: int | None = None,
                 replayable_fills: bool = False, equity_events: bool = True,
                 flush_seconds: float = 0.0, timer: Any = time.monotonic,
                 owner: str | None = None, lease_seconds: float = 30.0,
                 wall: Callable[[], datetime] | None = None) -> None:
        self.store, self.account, self.run_id = store, account, run_id
        #: The run's lease holder (see Transaction.acquire_lease); every commit extends
        #: the lease and fails closed when another engine has taken the run over.
        self.owner, self.lease_seconds = owner, float(lease_seconds)
        self._wall = wall or (lambda: datetime.now(UTC))
        self.account_id = account_id
        self.replayable_fills = replayable_fills
        #: Shared account (several engines): fills are booked onto the stored cash and
        #: positions under the account lock instead of writing this engine's values.
        self.shared = False
        self.write_ahead_commits = 0
        #: Called after a routine commit every ``checkpoint_every`` commits (SQLite WAL
        #: checkpoint, see :meth:`tradelab.store.tx.Transaction.defer_wal_checkpoints`).
        self.checkpoint: Any = None
        #: A :class:`tradelab.store.sideconn.SideConnection` for the write-ahead commit.
        self.side: Any = None
        self.checkpoint_every = 20
        self._since_checkpoint = 0
        self.flush_every = max(int(flush_every), 1)
        self.flush_seconds = float(flush_seconds)
        self._timer = timer
        self._last_flush = timer()
        self._ops: list[tuple[Any, ...]] = []       # state rows, in event order
        # Equity snapshots as (at, cash, positions_value, equity), one per bar, written
        # with one executemany per flush. Drawdown and the database form are computed
        # at the flush, not per bar: the drawdown is derivable from the ordered equities
        # and the starting peak, and converting each *distinct* amount once (see
        # bulkwrite.SnapshotBinder) is what makes a per-bar curve cheap to keep.
        self._snaps: list[Snap] = []
        # The bars the engine processed, as it received them (run_bars): they commit with
        # the snapshots and the progress mark, so the stored bars end at last_bar_time.
        self._run_bars: list[Any] = []
        self._bar_writer: Any = None
        #: Write the routine flush's rows at the DBAPI level on SQLite (byte-identical;
        #: see tradelab.store.bulkwrite). False: always the Transaction methods.
        self.use_driver = True
        self._driver: Any = None
        self._order_ids: dict[str, int] = {}        # client id → row id of orders written here
        self._progress: datetime | None = None
        self._bars = 0
        self._dirty_fill = False
        self.commits = 0
        self.snapshots_written = 0
        self.peak = ZERO
        # Steps: what they buffer is what a restart recovers; a failure stops the order.
        # Buffering comes first (a shared account's risk approval writes the buffered
        # order row inside its own transaction); the write-ahead commit after risk.
        for kind, handler in ((OrderEvent, self._on_order), (PositionChanged, self._on_position),
                              (RiskAlert, self._on_risk)):
            bus.step(kind, handler, stage=STAGE_RECORD)
        bus.step(OrderApproved, self._on_approved, stage=STAGE_DURABLE)
        if equity_events:
            bus.step(EquitySnapshotted, self._on_equity, stage=STAGE_RECORD)

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
        if isinstance(ev, OrderFilled | OrderPartiallyFilled) and ev.fill is not None:
            f = ev.fill
            self._ops.append(("fill", f.fill_id, f.client_order_id, f.symbol, f.side, f.quantity,
                              f.price, f.fees, f.at))
            self._dirty_fill = not self.replayable_fills

    def _on_position(self, ev: PositionChanged) -> None:
        self._ops.append(("position", ev.symbol, ev.quantity, ev.avg_price, ev.realized_pnl))
        self._ops.append(("cash", ev.cash))

    def _on_equity(self, ev: EquitySnapshotted) -> None:
        self._snaps.append((ev.at, ev.cash, ev.positions_value, ev.equity))

    def snapshot(self, at: datetime, cash: Decimal, positions_value: Decimal, equity: Decimal) -> None:
        """Buffer one equity snapshot (what an ``EquitySnapshotted`` event records).

        The engine calls this directly, so that it can skip building the event when
        nothing else subscribes to it (a recorder made with ``equity_events=False``).
        """
        self._snaps.append((at, cash, positions_value, equity))

    def record_bar(self, bar: Any) -> None:
        """Buffer one bar as received, ``(symbol, time, open, high, low, close, volume)``.

        Written to ``run_bars`` in the same commit as the bar's snapshot and progress mark.
        """
        self._run_bars.append(bar)

    def _on_risk(self, ev: RiskAlert) -> None:
        self._ops.append(("risk", ev.rule, ev.severity, ev.message, ev.at, ev.strategy))

    def write_kill_switch(self, engaged: bool, reason: str, by: str, at: datetime) -> None:
        """Persist a kill-switch change made by this engine (durable at once)."""
        self._ops.append(("kill", engaged, reason, by, at))
        self.flush()

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        """Close the run record (status, summary, end time) and release its lease."""
        try:
            with self.store.transaction() as tx:
                tx.finish_run(self.run_id, status, summary, finished_at=self._wall())
        except Exception as exc:
            raise failure(f"closing run {self.run_id} failed", exc) from exc

    def close(self) -> None:
        """Leave the database file complete and return the side connection (idempotent)."""
        side, self.side, self.checkpoint = self.side, None, None
        if side is not None:
            try:
                side.checkpoint()
            finally:
                side.close()

    def _creation(self, cid: str) -> int | None:
        # Index of the order's unwritten creation op (None: restored or already written).
        ops = self._ops
        for i in range(len(ops) - 1, -1, -1):  # the creation is among the last ops
            op = ops[i]
            if op[0] == "order" and op[1] == cid and op[4][0] is None and op[3]:
                return i
        return None

    def _written(self, i: int, oid: int) -> None:
        cid = self._ops[i][1]
        self._order_ids[cid] = oid
        self._ops[i] = ("written", cid)  # row and its `new` audit row are committed
        self.write_ahead_commits += 1

    def _lease_until(self) -> datetime:
        return self._wall() + timedelta(seconds=self.lease_seconds)

    def _renew(self, tx: Any) -> None:
        if self.owner is not None and not tx.renew_lease(self.run_id, self.owner, self._lease_until()):
            raise LeaseLost(f"run {self.run_id} is no longer this engine's "
                            "(another engine took its lease over)")

    def _on_approved(self, ev: OrderApproved) -> None:
        """Write-ahead: the order's row is durable before the broker sees it (a step).

        Any failure raises :class:`~tradelab.errors.StoreFailure`: the bus stops the
        order's pipeline there, so it is never sent, and the engine halts the run.
        """
        cid = ev.client_order_id
        i = self._creation(cid)
        if i is None:
            return  # restored from the store or already written: durable
        _, _, at, fields, _, _ = self._ops[i]
        try:
            oid = self.side.insert_order(cid, at, fields, self._lease_until()) \
                if self.side is not None else None
            if oid is None:  # no side connection, or the id exists already: the checked path
                with self.store.transaction() as tx:
                    self._prepare(tx)
                    self._renew(tx)
                    oid = tx.upsert_order_id(cid, at=at, **fields)
                    tx.add_order_events_by_id([(oid, None, fields.get("status") or "new", at, None)])
        except Exception as exc:
            raise failure(f"write-ahead commit of order {cid} failed", exc) from exc
        self._written(i, oid)

    def write_ahead_in(self, tx: Any, client_order_id: str) -> None:
        """Write the order's row inside ``tx`` (a shared-account approval holding the lock).

        The row is both the write-ahead record and the order's reservation against
        the account's limits, so it must commit with the check that approved it.
        """
        i = self._creation(client_order_id)
        if i is None:
            return
        _, cid, at, fields, _, _ = self._ops[i]
        self._prepare(tx)
        oid = tx.upsert_order_id(cid, at=at, **fields)
        tx.add_order_events_by_id([(oid, None, fields.get("status") or "new", at, None)])
        self._written(i, oid)

    # -- commits --------------------------------------------------------------------
    def end_bar(self, at: datetime) -> None:
        """Mark ``at`` fully processed; commit when due (every N bars or after a fill)."""
        self._progress = at
        self._bars += 1
        if (self._dirty_fill or self._bars >= self.flush_every
                or (self.flush_seconds and self._timer() - self._last_flush >= self.flush_seconds)):
            self.flush()

    def flush(self) -> None:
        """Commit everything buffered (rows, snapshots, progress) in one transaction.

        Raises :class:`~tradelab.errors.StoreFailure` when the commit fails; the
        buffer is kept, so a later flush (or a resume from the last commit) loses nothing.
        """
        if not self._ops and not self._snaps and not self._run_bars and self._progress is None:
            return
        try:
            self._flush()
        except Exception as exc:
            raise failure(f"commit of run {self.run_id}'s state failed", exc) from exc

    def _flush(self) -> None:
        ops, snaps, progress, bars = self._ops, self._snaps, self._progress, self._run_bars
        self._since_checkpoint += 1
        if self.checkpoint is not None and self._since_checkpoint >= self.checkpoint_every:
            # Before this commit, not after: the first commit after a checkpoint restarts
            # the WAL, which costs an fsync; that must be this routine commit, never the
            # write-ahead commit of an order.
            self._since_checkpoint = 0
            self.checkpoint()
        new_ids: dict[str, int] = {}
        peak = self.peak
        side = self.side
        if (self.use_driver and side is not None and side.sqlite and self.account_id is not None
                and not self.shared and self._routine(ops)):
            # The usual flush (updates of orders already written, fills, position, cash,
            # snapshots, progress): one BEGIN IMMEDIATE ... COMMIT on the engine's held
            # connection, none of SQLAlchemy's per-transaction machinery (~0.4 ms).
            drv = self._writer(side.dialect)
            with side.transaction() as cur:
                if not side.renew_lease(cur, self._lease_until()):
                    raise LeaseLost(f"run {self.run_id} is no longer this engine's "
                                    "(another engine took its lease over)")
                peak = self._write_all(None, cur, drv, ops, snaps, progress, new_ids)
                self._bars_writer(side.dialect).write_cursor(cur, self.run_id, bars)
        else:
            with self.store.transaction() as tx:
                self._prepare(tx)
                self._renew(tx)
                dialect = tx._conn.dialect
                drv = self._writer(dialect) if self.use_driver and self.account_id is not None \
                    and dialect.name == "sqlite" and not self.shared else None
                cur = drv.cursor(tx) if drv is not None else None
                try:
                    peak = self._write_all(tx, cur, drv, ops, snaps, progress, new_ids)
                    self._bars_writer(dialect).write_connection(tx._conn, self.run_id, bars)
                finally:
                    if cur is not None:
                        cur.close()
        # Only after the commit: ids of rows from a rolled-back transaction do not exist,
        # and a failed flush keeps its snapshots, so the peak must not have moved either.
        self._order_ids.update(new_ids)
        self.peak = peak
        self._ops, self._snaps, self._progress, self._bars, self._dirty_fill = [], [], None, 0, False
        self._run_bars = []
        self._last_flush = self._timer()
        self.commits += 1
        self.snapshots_written += len(snaps)

    def _write_all(self, tx: Any, cur: Any, drv: Any, ops: list[tuple[Any, ...]],
                   snaps: list[Snap], progress: datetime | None, new_ids: dict[str, int]) -> Decimal:
        """Every buffered row, through ``drv``/``cur`` where given, else ``tx``; the new peak."""
        self._write_ops(tx, ops, new_ids, cur, drv)
        peak = self.peak
        if snaps:
            if drv is not None:
                peak = drv.add_snapshots(cur, self.account_id, self.run_id, self.peak, snaps)
            else:
                from tradelab.store.bulkwrite import SnapshotBinder

                binder = SnapshotBinder(tx._conn.dialect)
                aid = self.account_id if self.account_id is not None else tx._account_id(self.account)
                rows, peak = binder.rows(aid, self.run_id, self.peak, snaps)
                tx.add_equity_snapshot_rows(rows)
        if progress is not None:
            if drv is not None:
                drv.set_progress(cur, self.run_id, progress)
            else:
                tx.mark_run_progress(self.run_id, progress)
        return peak

    def _writer(self, dialect: Any) -> Any:
        if self._driver is None:
            from tradelab.store.bulkwrite import DriverWriter

            self._driver = DriverWriter(dialect)
        return self._driver

    def _bars_writer(self, dialect: Any) -> Any:
        if self._bar_writer is None:
            from tradelab.store.bar_sql import BarWriter

            self._bar_writer = BarWriter(dialect)
        return self._bar_writer

    def _routine(self, ops: list[tuple[Any, ...]]) -> bool:
        return routine(self, ops)

    def _prepare(self, tx: Any) -> None:
        if self.account_id is not None:
            tx.known_account(self.account, self.account_id)
        if self.checkpoint is not None:
            tx.defer_wal_checkpoints()  # WAL checkpoints happen in routine flushes, never here

    def _write_ops(self, tx: Any, ops: list[tuple[Any, ...]], new_ids: dict[str, int],
                   cur: Any = None, drv: Any = None) -> None:
        write_ops(self, tx, ops, new_ids, cur, drv)

def peak_from_curve(curve: list[Any]) -> Decimal | None:
    """The highest stored equity of a curve (``None`` when empty); used on resume."""
    return max((p.equity for p in curve), default=None)

