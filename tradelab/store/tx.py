"""The unit of work: :class:`Transaction` holds the write methods of the store.

Everything done through one ``Transaction`` commits together or not at all,
which is what makes a fill's effects atomic::

    with store.transaction() as tx:
        if tx.add_fill(fill_id, coid, "SPY", "buy", qty, price, fees, at):
            tx.set_cash("paper", new_cash)
            tx.set_position("paper", "SPY", new_qty, new_avg, realized)
            tx.upsert_order(coid, at=at, status="filled", filled_quantity=qty)

Timestamps are always passed in (``at``, ``started_at``...): the store never
reads a clock, so replays with a simulated clock persist simulated times.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tradelab.store import models as m
from tradelab.store.equity_sql import EQUITY_COLUMNS, IDENTITY, equity_bind_processors, equity_driver_sql
from tradelab.store.errors import LeaseHeldError, OrderConflictError, StoreError, UnknownOrderError
from tradelab.store.reads import EQ, KS, OE, RE, A, AccountRef, F, O, P, R, Reader, check_choice
from tradelab.store.records import AccountRecord, OrderRecord, execution_column, trade_columns
from tradelab.store.types import to_amount, to_utc

log = logging.getLogger(__name__)

ORDER_FIELDS = frozenset({
    "account", "run_id", "broker_order_id", "symbol", "side", "type", "quantity",
    "limit_price", "stop_price", "status", "filled_quantity", "avg_fill_price", "reason",
    "time_in_force", "expires_at",
})
_REQUIRED_ON_CREATE = ("account", "symbol", "side", "type", "quantity")
# Reusing a client id for another account/instrument/direction is a bug upstream
# (an id collision), never an amendment: refuse it instead of corrupting history.
_IMMUTABLE = ("account_id", "symbol", "side")
_CHOICES: Mapping[str, tuple[str, ...]] = {
    "side": m.SIDES, "type": m.ORDER_TYPES, "status": m.ORDER_STATUSES,
    "time_in_force": m.TIME_IN_FORCE,
}


class Transaction(Reader):
    """Write (and read) methods inside one database transaction.

    Obtain one from :meth:`Store.transaction`; do not keep it after the
    ``with`` block. Reads inside the block see this transaction's own writes.
    """

    def _insert(self, table: Table) -> Any:
        # ON CONFLICT DO NOTHING / DO UPDATE exist on both backends but are
        # spelled through dialect-specific insert constructs.
        if self._conn.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # -- accounts --------------------------------------------------------
    def ensure_account(self, name: str, initial_cash: Decimal, currency: str = "USD") -> int:
        """Create the account if missing and return its id (idempotent, race-safe).

        An existing account keeps its cash: ``initial_cash`` only seeds a new one.

        Raises
        ------
        StoreError
            If the account exists with a different currency.
        """
        cash = to_amount(initial_cash)
        self._conn.execute(self._insert(A).values(
            name=name, currency=currency, initial_cash=cash, cash=cash,
        ).on_conflict_do_nothing(index_elements=["name"]))
        row = self._conn.execute(select(A.c.id, A.c.currency).where(A.c.name == name)).one()
        if row.currency != currency:
            raise StoreError(f"account {name!r} exists with currency {row.currency}, not {currency}")
        self._account_ids[name] = row.id
        return int(row.id)

    def lock_account(self, account: AccountRef) -> AccountRecord:
        """Lock the account until this transaction ends and return its fresh state.

        Call it first in any read-check-write on account-wide state (cash, risk
        limits, kill switch) shared by several engine processes. PostgreSQL:
        ``SELECT ... FOR UPDATE`` on the account row, so other lockers wait.
        SQLite: store transactions already start with ``BEGIN IMMEDIATE`` (one
        writer at a time for the whole file), so this only re-reads the row.
        """
        q = select(A).where(A.c.id == self._account_id(account))
        if self._conn.dialect.name != "sqlite":
            q = q.with_for_update()
        return AccountRecord(**self._conn.execute(q).one()._mapping)

    def set_cash(self, account: AccountRef, cash: Decimal) -> None:
        """Set the account's cash balance."""
        self._conn.execute(update(A).where(A.c.id == self._account_id(account))
                           .values(cash=to_amount(cash)))

    def set_cash_by_id(self, account_id: int, cash: Decimal) -> None:
        """:meth:`set_cash` for a caller holding the account's row id, on a prebuilt statement."""
        self._conn.execute(_UPDATE_CASH, {"aid": account_id, "cash": to_amount(cash)})

    # -- runs ------------------------------------------------------------
    def start_run(self, account: AccountRef, strategy: str, *, symbol: str, source: str,
                  mode: str, started_at: datetime, params: Mapping[str, Any] | None = None,
                  trade: Mapping[str, Any] | None = None,
                  execution: Mapping[str, Any] | None = None) -> int:
        """Record a new run in status ``running`` and return its id.

        ``trade``: the options it trades with (``direction``, ``sl``, ``tp``, ``trail``,
        ``time_stop``; see :meth:`tradelab.store.records.RunRecord.trade`); ``execution``:
        its :class:`~tradelab.execution.Execution` as a mapping (``RunRecord.execution``).
        """
        options = {**trade_columns(trade), "execution": execution_column(execution)}
        result = self._conn.execute(insert(R).values(
            account_id=self._account_id(account), strategy=strategy, params=dict(params or {}),
            source=source, symbol=symbol, mode=check_choice("mode", mode, m.RUN_MODES),
            status="running", started_at=to_utc(started_at), **options,
        ))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, Any] | None = None,
                   *, finished_at: datetime) -> None:
        """Close a run with a final ``status`` (not ``running``) and an optional summary."""
        check_choice("status", status, [s for s in m.RUN_STATUSES if s != "running"])
        self._update_run(run_id, status=status, finished_at=to_utc(finished_at),
                         summary=dict(summary) if summary is not None else None,
                         owner=None, lease_expires_at=None)

    def acquire_lease(self, run_id: int, owner: str, now: datetime, until: datetime,
                      dead_owner: str | None = None) -> None:
        """Make ``owner`` the run's only engine until ``until`` (status back to ``running``).

        Refused with :class:`LeaseHeldError` while another owner's lease has not expired;
        an expired lease is taken over, and so is ``dead_owner``'s (the caller has seen
        that process is gone). The row is locked for the check.
        """
        stmt = select(R.c.owner, R.c.lease_expires_at, R.c.status).where(R.c.id == run_id)
        if self._conn.dialect.name != "sqlite":  # SQLite: the transaction began IMMEDIATE
            stmt = stmt.with_for_update()
        row = self._conn.execute(stmt).first()
        if row is None:
            raise StoreError(f"unknown run id {run_id!r}")
        now_utc = to_utc(now)
        if row.owner and row.owner not in (owner, dead_owner) and row.lease_expires_at is not None \
                and row.lease_expires_at > now_utc:
            raise LeaseHeldError(row.owner,
                f"run {run_id} is being run by another engine ({row.owner}, lease until "
                f"{row.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC); stop it first, or wait for its "
                "lease to expire if it died")
        self._update_run(run_id, owner=owner, lease_expires_at=to_utc(until), status="running",
                         finished_at=None)

    def renew_lease(self, run_id: int, owner: str, until: datetime) -> bool:
        """Extend ``owner``'s lease; False when the run is no longer ``owner``'s."""
        return bool(self._conn.execute(
            _RENEW_LEASE, {"rid": run_id, "p_owner": owner, "p_until": to_utc(until)}).rowcount == 1)

    def set_run_progress(self, run_id: int, last_bar_time: datetime) -> None:
        """Remember the last bar the run fully processed (where a restart resumes)."""
        self._update_run(run_id, last_bar_time=to_utc(last_bar_time))

    def mark_run_progress(self, run_id: int, last_bar_time: datetime) -> None:
        """:meth:`set_run_progress` on a prebuilt statement (the engine calls it every flush).

        Same row and values; building a new ``update()`` per call cost ~0.2 ms of
        statement construction and cache-key generation.
        """
        if self._conn.execute(_UPDATE_RUN_PROGRESS, {"rid": run_id, "t": to_utc(last_bar_time)}
                              ).rowcount != 1:
            raise StoreError(f"unknown run id {run_id!r}")

    def _update_run(self, run_id: int, **values: Any) -> None:
        if self._conn.execute(update(R).where(R.c.id == run_id).values(**values)).rowcount != 1:
            raise StoreError(f"unknown run id {run_id!r}")

    # -- orders ----------------------------------------------------------
    def upsert_order(self, client_order_id: str, *, at: datetime, **fields: Any) -> OrderRecord:
        """Create or update an order by client order id (idempotent) and return it.

        Parameters
        ----------
        client_order_id
            The idempotency key.
        at
            Sets ``updated_at`` (and ``created_at`` when the order is new).
        **fields
            Any of ``account, run_id, broker_order_id, symbol, side, type,
            quantity, limit_price, stop_price, status, filled_quantity,
            avg_fill_price, reason, time_in_force, expires_at``. A new order
            needs ``account, symbol, side, type, quantity``; defaults are
            ``status="new"``, ``filled_quantity=0``, ``time_in_force="gtc"``.

        Raises
        ------
        OrderConflictError
            If the id exists for another account, symbol or side.
        ValueError
            For unknown field names or values outside the allowed choices.
        """
        values = self._order_values(fields)
        at = to_utc(at)
        if self._existing_order(client_order_id, values) is None:
            missing = [f for f in _REQUIRED_ON_CREATE
                       if (f if f != "account" else "account_id") not in values]
            if missing:
                raise ValueError(f"new order {client_order_id!r} needs {', '.join(missing)}")
            row = {"status": "new", "filled_quantity": Decimal(0), "time_in_force": "gtc",
                   **values, "client_order_id": client_order_id, "created_at": at, "updated_at": at}
            inserted = self._conn.execute(self._insert(O).values(**row).on_conflict_do_nothing(
                index_elements=["client_order_id"]).returning(O.c.id)).first()
            # Lost a race with another process creating the same id: update instead.
            if inserted is None:
                self._existing_order(client_order_id, values)
                self._update_order(client_order_id, values, at)
        else:
            self._update_order(client_order_id, values, at)
        record = self.get_order(client_order_id)
        assert record is not None
        return record

    def _existing_order(self, client_order_id: str, values: Mapping[str, Any]) -> int | None:
        q = select(O.c.id, *(O.c[c] for c in _IMMUTABLE)).where(O.c.client_order_id == client_order_id)
        if self._conn.dialect.name != "sqlite":
            q = q.with_for_update()  # two processes updating one order serialize here
        row = self._conn.execute(q).one_or_none()
        if row is None:
            return None
        for col in _IMMUTABLE:
            if col in values and values[col] != row._mapping[col]:
                raise OrderConflictError(
                    f"client order id {client_order_id!r} already used with {col}="
                    f"{row._mapping[col]!r}, not {values[col]!r}")
        return int(row.id)

    def _update_order(self, client_order_id: str, values: Mapping[str, Any], at: datetime) -> None:
        self._conn.execute(update(O).where(O.c.client_order_id == client_order_id)
                           .values(**values, updated_at=at))

    def _order_id(self, client_order_id: str) -> tuple[int, str, str]:
        row = self._conn.execute(select(O.c.id, O.c.symbol, O.c.side)
                                 .where(O.c.client_order_id == client_order_id)).one_or_none()
        if row is None:
            raise UnknownOrderError(f"unknown client order id {client_order_id!r}")
        return int(row.id), row.symbol, row.side

    def add_order_event(self, client_order_id: str, from_state: str | None, to_state: str,
                        at: datetime, reason: str | None = None) -> None:
        """Append one state transition to the order's audit trail."""
        if from_state is not None:
            from_state = check_choice("from_state", from_state, m.ORDER_STATUSES)
        to_state = check_choice("to_state", to_state, m.ORDER_STATUSES)
        order_id, _, _ = self._order_id(client_order_id)
        self._conn.execute(insert(OE).values(order_id=order_id, from_state=from_state,
                                             to_state=to_state, at=to_utc(at), reason=reason))

    def add_fill(self, fill_id: str, client_order_id: str, symbol: str, side: str,
                 quantity: Decimal, price: Decimal, fees: Decimal, at: datetime) -> bool:
        """Record a fill once. Returns ``False`` (and logs a warning) for a duplicate id.

        The caller applies the fill's effects only when this returns ``True``,
        in the same transaction; a replayed or re-delivered fill is then never
        applied twice, even by two processes at once (the unique ``fill_id``
        makes the second insert wait for, then yield to, the first).

        Raises
        ------
        UnknownOrderError
            If the order was never stored.
        StoreError
            If ``symbol`` or ``side`` differ from the order's.
        """
        side = check_choice("side", side, m.SIDES)
        order_id, order_symbol, order_side = self._order_id(client_order_id)
        if (symbol, side) != (order_symbol, order_side):
            raise StoreError(f"fill {fill_id!r} is {side} {symbol} but order {client_order_id!r} "
                             f"is {order_side} {order_symbol}")
        inserted = self._conn.execute(self._insert(F).values(
            fill_id=fill_id, order_id=order_id, symbol=symbol, side=side,
            quantity=to_amount(quantity), price=to_amount(price), fees=to_amount(fees),
            at=to_utc(at),
        ).on_conflict_do_nothing(index_elements=["fill_id"]).returning(F.c.id)).first()
        # RETURNING, not rowcount: with DO NOTHING it is the one signal that
        # means the same on every driver (psycopg reports rowcount -1 here).
        if inserted is None:
            log.warning("duplicate fill ignored", extra={"fill_id": fill_id,
                                                          "client_order_id": client_order_id})
            return False
        return True

    def add_fill_by_id(self, order_id: int, fill_id: str, symbol: str, side: str,
                       quantity: Decimal, price: Decimal, fees: Decimal, at: datetime) -> bool:
        """:meth:`add_fill` for a caller that holds the order's row id (no lookup, no cross-check).

        The caller vouches that ``symbol`` and ``side`` are the order's (the engine
        books fills of its own orders). Returns ``False`` for a duplicate ``fill_id``.
        """
        name = self._conn.dialect.name
        stmt = _INSERT_FILL.get(name)
        if stmt is None:
            stmt = _INSERT_FILL[name] = self._insert(F).on_conflict_do_nothing(
                index_elements=["fill_id"]).returning(F.c.id)
        inserted = self._conn.execute(stmt, {
            "fill_id": fill_id, "order_id": order_id, "symbol": symbol,
            "side": check_choice("side", side, m.SIDES), "quantity": quantity, "price": price,
            "fees": fees, "at": to_utc(at)}).first()
        if inserted is None:
            log.warning("duplicate fill ignored", extra={"fill_id": fill_id, "order_id": order_id})
            return False
        return True

    # -- portfolio -------------------------------------------------------
    def set_position(self, account: AccountRef, symbol: str, quantity: Decimal,
                     avg_price: Decimal, realized_pnl: Decimal) -> None:
        """Insert or replace the position of ``account`` in ``symbol``."""
        name = self._conn.dialect.name
        stmt = _UPSERT_POSITION.get(name)
        if stmt is None:  # built once per dialect: constructing an upsert costs ~1 ms
            ins = self._insert(P)
            stmt = _UPSERT_POSITION[name] = ins.on_conflict_do_update(
                index_elements=["account_id", "symbol"],
                set_={c: ins.excluded[c] for c in ("quantity", "avg_price", "realized_pnl")})
        self._conn.execute(stmt, {
            "account_id": self._account_id(account), "symbol": symbol,
            "quantity": to_amount(quantity), "avg_price": to_amount(avg_price),
            "realized_pnl": to_amount(realized_pnl)})

    def add_equity_snapshot(self, account: AccountRef, at: datetime, cash: Decimal,
                            positions_value: Decimal, equity: Decimal, drawdown: Decimal,
                            run_id: int | None = None) -> None:
        """Append a mark-to-market equity snapshot."""
        self._conn.execute(insert(EQ).values(
            account_id=self._account_id(account), run_id=run_id, at=to_utc(at),
            cash=to_amount(cash), positions_value=to_amount(positions_value),
            equity=to_amount(equity), drawdown=to_amount(drawdown)))

    def add_equity_snapshots(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Append many snapshots (mappings of :meth:`add_equity_snapshot`'s arguments) at once.

        One executemany statement; returns the number of rows. The engine buffers a
        snapshot per bar and writes them in batches.
        """
        if not rows:
            return 0
        params = [{"account_id": self._account_id(r["account"]), "run_id": r.get("run_id"),
                   "at": to_utc(r["at"]), "cash": r["cash"], "positions_value": r["positions_value"],
                   "equity": r["equity"], "drawdown": r["drawdown"]} for r in rows]
        self._conn.execute(_INSERT_EQ, params)  # Amount columns quantize (to_amount) on bind
        return len(params)

    def add_equity_snapshot_rows(self, rows: Sequence[Sequence[Any]]) -> int:
        """:meth:`add_equity_snapshots` for rows already in database form (the engine's path).

        Each row holds :data:`EQUITY_COLUMNS` converted by :func:`equity_bind_processors`,
        i.e. by the columns' own bind processors, so the stored bytes are exactly those
        of :meth:`add_equity_snapshots`. It skips SQLAlchemy's per-row parameter
        processing (~15 µs a row), which let the caller convert each distinct amount
        once (an equity curve repeats cash, zero and drawdown values bar after bar).
        """
        if not rows:
            return 0
        sql, order = equity_driver_sql(self._conn.dialect)
        if order is None:  # named parameters (e.g. psycopg)
            params: list[Any] = [dict(zip(EQUITY_COLUMNS, r, strict=True)) for r in rows]
        else:
            params = [tuple(r[i] for i in order) for r in rows] if order != IDENTITY else list(rows)
        self._conn.exec_driver_sql(sql, params)
        return len(params)

    def save_order(self, client_order_id: str, *, at: datetime, order_id: int | None = None,
                   **fields: Any) -> int:
        """:meth:`upsert_order` without the read-back; returns the row id.

        With ``order_id`` (a row id returned earlier, vouched for by the caller) the
        order is updated without looking it up. Fields as for :meth:`upsert_order`.
        """
        if order_id is None:
            return self.upsert_order_id(client_order_id, at=at, **fields)
        values = self._order_values(fields)
        if values:
            self._conn.execute(_UPDATE_ORDER_BY_ID, {"oid": order_id, **values, "updated_at": to_utc(at)})
        return order_id

    def add_order_events_by_id(self, rows: Sequence[tuple[int, str | None, str, datetime, str | None]]
                               ) -> int:
        """Append many audit rows ``(order_id, from_state, to_state, at, reason)`` in one statement.

        ``order_id`` is the row id returned by :meth:`save_order` or
        :meth:`upsert_order_id`; states are validated as in :meth:`add_order_event`.
        """
        if not rows:
            return 0
        params = [{"order_id": oid,
                   "from_state": None if a is None else check_choice("from_state", a, m.ORDER_STATUSES),
                   "to_state": check_choice("to_state", b, m.ORDER_STATUSES), "at": to_utc(at),
                   "reason": reason} for oid, a, b, at, reason in rows]
        self._conn.execute(_INSERT_OE, params)
        return len(params)

    def upsert_order_id(self, client_order_id: str, *, at: datetime, **fields: Any) -> int:
        """:meth:`upsert_order` returning the row id instead of reading the order back."""
        values = self._order_values(fields)
        at = to_utc(at)
        creating = all((f if f != "account" else "account_id") in values for f in _REQUIRED_ON_CREATE)
        if creating:
            # Insert first (one statement for the common case, a brand-new id); a
            # conflict falls through to the checked update below, as in upsert_order.
            row = {"status": "new", "filled_quantity": Decimal(0), "time_in_force": "gtc",
                   "limit_price": None, "stop_price": None, "run_id": None,
                   "broker_order_id": None, "reason": None, "expires_at": None, "avg_fill_price": None,
                   **values, "client_order_id": client_order_id, "created_at": at, "updated_at": at}
            inserted = self._conn.execute(self._insert_order_stmt(), row).first()
            if inserted is not None:
                return int(inserted[0])
        existing = self._existing_order(client_order_id, values)
        if existing is None:
            missing = [f for f in _REQUIRED_ON_CREATE
                       if (f if f != "account" else "account_id") not in values]
            raise ValueError(f"new order {client_order_id!r} needs {', '.join(missing)}")
        self._update_order(client_order_id, values, at)
        return existing

    def _insert_order_stmt(self) -> Any:
        name = self._conn.dialect.name
        stmt = _INSERT_ORDER.get(name)
        if stmt is None:
            stmt = _INSERT_ORDER[name] = self._insert(O).on_conflict_do_nothing(
                index_elements=["client_order_id"]).returning(O.c.id)
        return stmt

    def _order_values(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(fields) - ORDER_FIELDS)
        if unknown:
            raise ValueError(f"unknown order field(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(sorted(ORDER_FIELDS))}")
        values = dict(fields)
        for name, allowed in _CHOICES.items():
            if name in values:
                values[name] = check_choice(name, values[name], allowed)
        if "account" in values:
            values["account_id"] = self._account_id(values.pop("account"))
        if values.get("expires_at") is not None:
            values["expires_at"] = to_utc(values["expires_at"])
        return values

    def defer_wal_checkpoints(self) -> bool:
        """SQLite: keep this connection's commits from checkpointing the WAL.

        By default the commit that grows the WAL past 1,000 pages copies it into
        the database and fsyncs (several ms). A latency-sensitive writer (the
        engine's write-ahead commit before an order leaves) calls this in its
        transactions and checkpoints at moments of its choosing instead
        (``PRAGMA wal_checkpoint(PASSIVE)``). The setting stays with the pooled
        connection. Returns whether it applied (False on other backends).
        """
        if self._conn.dialect.name != "sqlite":
            return False
        self._conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        return True

    # -- risk ------------------------------------------------------------
    def add_risk_event(self, account: AccountRef, rule: str, severity: str, message: str,
                       at: datetime, strategy: str | None = None) -> None:
        """Append a risk alert or breach (severity: info, warning, error, critical)."""
        self._conn.execute(insert(RE).values(
            account_id=self._account_id(account), strategy=strategy, rule=rule,
            severity=check_choice("severity", severity, m.SEVERITIES), message=message,
            at=to_utc(at)))

    def set_kill_switch(self, account: AccountRef, engaged: bool, reason: str | None,
                        by: str | None, at: datetime) -> None:
        """Engage or reset the account's kill switch (who, why, when)."""
        values = {"engaged": bool(engaged), "reason": reason, "changed_by": by, "at": to_utc(at)}
        self._conn.execute(self._insert(KS).values(
            account_id=self._account_id(account), **values,
        ).on_conflict_do_update(index_elements=["account_id"], set_=values))


# Prebuilt statements for the batched/hot-path writers (compiled once, cached by SQLAlchemy).
_INSERT_EQ = insert(EQ)
_INSERT_OE = insert(OE)
_UPDATE_CASH = update(A).where(A.c.id == bindparam("aid")).values(cash=bindparam("cash"))
_RENEW_LEASE = update(R).where(R.c.id == bindparam("rid"), R.c.owner == bindparam("p_owner")).values(
    lease_expires_at=bindparam("p_until"))
_UPDATE_RUN_PROGRESS = update(R).where(R.c.id == bindparam("rid")).values(last_bar_time=bindparam("t"))
_UPDATE_ORDER_BY_ID = update(O).where(O.c.id == bindparam("oid"))
_INSERT_ORDER: dict[str, Any] = {}
_INSERT_FILL: dict[str, Any] = {}
_UPSERT_POSITION: dict[str, Any] = {}  # per dialect: INSERT ... ON CONFLICT DO NOTHING RETURNING id

__all__ = ["EQUITY_COLUMNS", "ORDER_FIELDS", "Transaction", "equity_bind_processors"]
