"""Read queries shared by :class:`~tradelab.store.store.Store` and its transactions.

Every query runs on one SQLAlchemy Core connection and turns rows into the
frozen records of :mod:`tradelab.store.records` at once, so nothing lazy or
session-bound ever leaves this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, select

from tradelab.store import models as m
from tradelab.store.errors import UnknownAccountError
from tradelab.store.records import (
    AccountRecord,
    AccountState,
    EquityPoint,
    FillRecord,
    KillSwitchState,
    OrderEventRecord,
    OrderRecord,
    PositionRecord,
    RiskEventRecord,
    RunRecord,
)

AccountRef = str | int
"""An account by name (``str``) or by the id ``ensure_account`` returned (``int``)."""

A = cast(Table, m.Account.__table__)
R = cast(Table, m.Run.__table__)
O = cast(Table, m.Order.__table__)  # noqa: E741
OE = cast(Table, m.OrderEvent.__table__)
F = cast(Table, m.Fill.__table__)
P = cast(Table, m.Position.__table__)
EQ = cast(Table, m.EquitySnapshot.__table__)
RE = cast(Table, m.RiskEvent.__table__)
KS = cast(Table, m.KillSwitch.__table__)

_ORDER_COLUMNS = [c for c in O.c if c.name not in ("id", "account_id")]
_RUN_COLUMNS = [c for c in R.c if c.name != "account_id"]


def _order(row: Any) -> OrderRecord:
    d = dict(row._mapping)
    return OrderRecord(**d)


def _run(row: Any) -> RunRecord:
    d = dict(row._mapping)
    d["params"] = d["params"] or {}
    # A run whose engine stopped renewing its lease (killed, or its database went away)
    # is no longer running: say so rather than show `running` forever.
    if d["status"] == "running" and d.get("lease_expires_at") is not None \
            and d["lease_expires_at"] < datetime.now(UTC):
        d["status"] = "interrupted"
    return RunRecord(**d)


class Reader:
    """Read-only queries over one connection (mixed into transactions)."""

    _conn: Connection

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._account_ids: dict[AccountRef, int] = {}

    # -- helpers ---------------------------------------------------------
    def known_account(self, name: str, account_id: int) -> None:
        """Seed the name → id cache with an id resolved earlier (saves a lookup per transaction).

        Only for ids obtained from :meth:`~tradelab.store.tx.Transaction.ensure_account`
        or :meth:`get_account`; accounts are never renamed or deleted.
        """
        self._account_ids[name] = account_id
        self._account_ids[account_id] = account_id

    def _account_id(self, account: AccountRef) -> int:
        cached = self._account_ids.get(account)
        if cached is not None:
            return cached
        col = A.c.id if isinstance(account, int) else A.c.name
        found = self._conn.execute(select(A.c.id).where(col == account)).scalar_one_or_none()
        if found is None:
            raise UnknownAccountError(f"unknown account {account!r}; call ensure_account() first")
        self._account_ids[account] = found
        return found

    def _orders_query(self) -> Select[Any]:
        return select(*_ORDER_COLUMNS, A.c.name.label("account")).join(A, A.c.id == O.c.account_id)

    def _runs_query(self) -> Select[Any]:
        return select(*_RUN_COLUMNS, A.c.name.label("account")).join(A, A.c.id == R.c.account_id)

    # -- accounts --------------------------------------------------------
    def get_account(self, account: AccountRef) -> AccountRecord | None:
        """The account by name or id, or ``None`` if it does not exist."""
        col = A.c.id if isinstance(account, int) else A.c.name
        row = self._conn.execute(select(A).where(col == account)).one_or_none()
        return AccountRecord(**row._mapping) if row is not None else None

    def account_names(self) -> list[str]:
        """Every account's name, sorted."""
        return list(self._conn.execute(select(A.c.name).order_by(A.c.name)).scalars())

    # -- orders ----------------------------------------------------------
    def get_order(self, client_order_id: str) -> OrderRecord | None:
        """The order with this client order id, or ``None``."""
        row = self._conn.execute(
            self._orders_query().where(O.c.client_order_id == client_order_id)).one_or_none()
        return _order(row) if row is not None else None

    def orders(self, account: AccountRef, run_id: int | None = None) -> list[OrderRecord]:
        """All orders of an account (optionally one run), oldest first."""
        q = self._orders_query().where(O.c.account_id == self._account_id(account))
        if run_id is not None:
            q = q.where(O.c.run_id == run_id)
        return [_order(r) for r in self._conn.execute(q.order_by(O.c.created_at, O.c.id))]

    def open_orders(self, account: AccountRef) -> list[OrderRecord]:
        """Orders in ``new``, ``submitted`` or ``partially_filled`` state, oldest first."""
        q = self._orders_query().where(O.c.account_id == self._account_id(account),
                                       O.c.status.in_(m.OPEN_ORDER_STATUSES))
        return [_order(r) for r in self._conn.execute(q.order_by(O.c.created_at, O.c.id))]

    def order_events(self, client_order_id: str) -> list[OrderEventRecord]:
        """State transitions of one order in the order they were recorded."""
        q = (select(O.c.client_order_id, OE.c.from_state, OE.c.to_state, OE.c.at, OE.c.reason)
             .join(O, O.c.id == OE.c.order_id)
             .where(O.c.client_order_id == client_order_id).order_by(OE.c.id))
        return [OrderEventRecord(**r._mapping) for r in self._conn.execute(q)]

    def fills(self, account: AccountRef, run_id: int | None = None) -> list[FillRecord]:
        """Fills of an account's orders (optionally one run's), in execution order."""
        q = (select(F.c.fill_id, O.c.client_order_id, F.c.symbol, F.c.side, F.c.quantity,
                    F.c.price, F.c.fees, F.c.at)
             .join(O, O.c.id == F.c.order_id)
             .where(O.c.account_id == self._account_id(account)))
        if run_id is not None:
            q = q.where(O.c.run_id == run_id)
        return [FillRecord(**r._mapping) for r in self._conn.execute(q.order_by(F.c.at, F.c.id))]

    # -- portfolio -------------------------------------------------------
    def positions(self, account: AccountRef, *, include_flat: bool = True) -> list[PositionRecord]:
        """Positions by symbol; flat ones (quantity 0) are kept for their realized P&L."""
        q = (select(P.c.symbol, P.c.quantity, P.c.avg_price, P.c.realized_pnl)
             .where(P.c.account_id == self._account_id(account)).order_by(P.c.symbol))
        out = [PositionRecord(**r._mapping) for r in self._conn.execute(q)]
        return out if include_flat else [p for p in out if p.quantity != 0]

    def equity_curve(self, account: AccountRef, run_id: int | None = None) -> list[EquityPoint]:
        """Equity snapshots in time order."""
        q = (select(EQ.c.at, EQ.c.run_id, EQ.c.cash, EQ.c.positions_value, EQ.c.equity,
                    EQ.c.drawdown)
             .where(EQ.c.account_id == self._account_id(account)))
        if run_id is not None:
            q = q.where(EQ.c.run_id == run_id)
        return [EquityPoint(**r._mapping) for r in self._conn.execute(q.order_by(EQ.c.at, EQ.c.id))]

    # -- risk ------------------------------------------------------------
    def risk_events(self, account: AccountRef) -> list[RiskEventRecord]:
        """Risk events of an account in time order."""
        q = (select(RE.c.strategy, RE.c.rule, RE.c.severity, RE.c.message, RE.c.at)
             .where(RE.c.account_id == self._account_id(account)).order_by(RE.c.at, RE.c.id))
        return [RiskEventRecord(**r._mapping) for r in self._conn.execute(q)]

    def kill_switch(self, account: AccountRef) -> KillSwitchState:
        """Kill-switch state (disengaged with ``at=None`` if never set)."""
        row = self._conn.execute(
            select(KS.c.engaged, KS.c.reason, KS.c.changed_by.label("by"), KS.c.at)
            .where(KS.c.account_id == self._account_id(account))).one_or_none()
        return KillSwitchState(**row._mapping) if row is not None else KillSwitchState()

    # -- runs ------------------------------------------------------------
    def get_run(self, run_id: int) -> RunRecord | None:
        """One run by id, or ``None``."""
        row = self._conn.execute(self._runs_query().where(R.c.id == run_id)).one_or_none()
        return _run(row) if row is not None else None

    def runs(self, account: AccountRef | None = None) -> list[RunRecord]:
        """Runs (of one account, or all), oldest first."""
        q = self._runs_query()
        if account is not None:
            q = q.where(R.c.account_id == self._account_id(account))
        return [_run(r) for r in self._conn.execute(q.order_by(R.c.started_at, R.c.id))]

    def account_state(self, account: AccountRef) -> AccountState:
        """Everything needed to resume trading after a crash (see :class:`AccountState`).

        Raises
        ------
        UnknownAccountError
            If the account does not exist.
        """
        record = self.get_account(account)
        if record is None:
            raise UnknownAccountError(f"unknown account {account!r}; call ensure_account() first")
        last_run_row = self._conn.execute(
            self._runs_query().where(R.c.account_id == record.id)
            .order_by(R.c.started_at.desc(), R.c.id.desc()).limit(1)).one_or_none()
        last_eq = self._conn.execute(
            select(EQ.c.at, EQ.c.run_id, EQ.c.cash, EQ.c.positions_value, EQ.c.equity,
                   EQ.c.drawdown)
            .where(EQ.c.account_id == record.id)
            .order_by(EQ.c.at.desc(), EQ.c.id.desc()).limit(1)).one_or_none()
        return AccountState(
            account=record,
            positions=tuple(self.positions(record.id)),
            open_orders=tuple(self.open_orders(record.id)),
            kill_switch=self.kill_switch(record.id),
            last_run=_run(last_run_row) if last_run_row is not None else None,
            last_equity=EquityPoint(**last_eq._mapping) if last_eq is not None else None,
        )


def check_choice(name: str, value: str, allowed: Sequence[str]) -> str:
    """``value`` as a plain ``str`` if it is one of ``allowed``, else a ValueError.

    ``StrEnum`` members are accepted and reduced to their value: database
    drivers differ in how they adapt enums (by name or by value).
    """
    if isinstance(value, Enum):
        value = value.value
    if value not in allowed:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(allowed)}")
    return value


def change_marker(store: Any) -> tuple[Any, ...]:
    """A value that changes whenever anything a live view shows changes.

    One round trip: new fills, order transitions, equity snapshots, risk events,
    kill-switch changes, strategy flags, engine runs and job runs (started or
    finished), accounts, reconciliations with a venue, data-quality outcomes.
    """
    from sqlalchemy import func

    from tradelab.store.auth_models import StrategyFlag
    from tradelab.store.jobs_models import JobRun
    from tradelab.store.quality_models import DataQualityEvent

    sf, jr = cast(Table, StrategyFlag.__table__), cast(Table, JobRun.__table__)
    rc = cast(Table, m.Reconciliation.__table__)
    dq = cast(Table, DataQualityEvent.__table__)

    def mx(col: Any) -> Any:
        return select(func.max(col)).scalar_subquery()

    def count(col: Any) -> Any:
        return select(func.count(col)).scalar_subquery()

    q = select(mx(F.c.id), mx(OE.c.id), mx(O.c.id), mx(EQ.c.id), mx(RE.c.id),
               mx(KS.c.at), count(KS.c.account_id), mx(sf.c.at), mx(R.c.id),
               count(R.c.finished_at), mx(jr.c.id), count(jr.c.finished_at), mx(A.c.id),
               mx(rc.c.id), mx(dq.c.id))
    with store.engine.connect() as conn:
        return tuple(conn.execute(q).one())
