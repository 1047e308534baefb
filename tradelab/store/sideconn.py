"""The engine's side connection: the few store statements that sit on the bar → order path.

Two statements run between a bar's arrival and the order reaching the broker:
the kill-switch read (another process may have halted the account) and the
write-ahead commit of the order row. Through :meth:`Store.transaction` each
costs 0.2–0.3 ms of SQLAlchemy machinery (pool checkout, events, statement
cache, reset on return) around a few microseconds of SQL. Here both run on one
DBAPI connection held for the engine's lifetime, with the SQL compiled once by
SQLAlchemy for the store's dialect and every value converted by the column
types' own bind processors, so the rows are byte-for-byte what
:class:`~tradelab.store.tx.Transaction` would write. Anything unusual (an id
conflict) falls back to the regular transaction API.

On SQLite this connection also takes WAL checkpoints (see
:meth:`~tradelab.store.tx.Transaction.defer_wal_checkpoints`): the engine
schedules them in routine flushes so that no order commit pays for one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import bindparam, select

from tradelab.errors import StoreFailure
from tradelab.store import models as m
from tradelab.store.errors import LeaseLost, describe_failure
from tradelab.store.reads import KS, OE, O, R, check_choice

_ORDER_COLUMNS = ("client_order_id", "account_id", "run_id", "symbol", "side", "type", "quantity",
                  "limit_price", "stop_price", "status", "filled_quantity", "time_in_force", "reason",
                  "created_at", "updated_at")


class _Prepared:
    """One statement compiled for a dialect, with the bind processors of its parameters."""

    def __init__(self, stmt: Any, dialect: Any, types: Mapping[str, Any]) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        self.names = list(compiled.positiontup or ()) if self.positional else list(types)
        # The dialect-level type's processor, as SQLAlchemy's own execution uses: a
        # TypeDecorator's unadapted bind_processor() runs its generic impl (Amount as
        # a float, UTCDateTime as a naive datetime the driver formats its own way).
        self.procs = {n: types[n].dialect_impl(dialect).bind_processor(dialect) for n in types}

    def params(self, values: Mapping[str, Any]) -> Any:
        procs = self.procs
        converted = {n: (procs[n](v) if procs[n] is not None and v is not None else v)
                     for n, v in values.items()}
        return tuple(converted[n] for n in self.names) if self.positional else converted


class SideConnection:
    """A DBAPI connection of ``store`` for the engine's latency-critical statements.

    Parameters
    ----------
    store
        A :class:`tradelab.store.Store`.
    account_id
        The engine's account (row id).
    run_id, owner
        The run and its lease holder: every write-ahead commit first extends the lease
        and fails when the run is no longer ``owner``'s (another engine took it over).
    """

    def __init__(self, store: Any, account_id: int, run_id: int | None = None,
                 owner: str | None = None) -> None:
        from sqlalchemy.dialects import postgresql, sqlite

        engine = store.engine
        dialect = self.dialect = engine.dialect
        self.sqlite = dialect.name == "sqlite"
        self.account_id = account_id
        ks = select(KS.c.engaged, KS.c.reason, KS.c.changed_by).where(
            KS.c.account_id == bindparam("aid"))
        self._ks = _Prepared(ks, dialect, {"aid": KS.c.account_id.type})
        ins = (sqlite.insert(O) if self.sqlite else postgresql.insert(O)).values(
            {c: bindparam(c) for c in _ORDER_COLUMNS}).on_conflict_do_nothing(
            index_elements=["client_order_id"]).returning(O.c.id)
        self._ins = _Prepared(ins, dialect, {c: O.c[c].type for c in _ORDER_COLUMNS})
        oe_cols = ("order_id", "from_state", "to_state", "at", "reason")
        self._oe = _Prepared(OE.insert().values({c: bindparam(c) for c in oe_cols}), dialect,
                             {c: OE.c[c].type for c in oe_cols})
        self.run_id, self.owner = run_id, owner
        lease = R.update().where(R.c.id == bindparam("rid"), R.c.owner == bindparam("p_owner")).values(
            lease_expires_at=bindparam("p_until"))
        self._lease = _Prepared(lease, dialect, {"rid": R.c.id.type, "p_owner": R.c.owner.type,
                                                 "p_until": R.c.lease_expires_at.type})
        self._conn = engine.raw_connection()
        if self.sqlite:  # this connection never checkpoints inside a commit either
            self._conn.cursor().execute("PRAGMA wal_autocheckpoint=0").close()

    # -- kill switch ----------------------------------------------------------------
    def kill_switch(self) -> tuple[bool, str, str]:
        """``(engaged, reason, by)`` as committed now (each read is its own transaction)."""
        try:
            cur = self._conn.cursor()
            try:
                cur.execute(self._ks.sql, self._ks.params({"aid": self.account_id}))
                row = cur.fetchone()
            finally:
                cur.close()
            if not self.sqlite:
                self._conn.rollback()  # end the read transaction: the next read sees new commits
        except Exception as exc:  # no order may leave on a switch that could not be read
            raise StoreFailure(f"reading the kill switch failed: {describe_failure(exc)}",
                               describe_failure(exc)) from exc
        if row is None:
            return False, "", ""
        return bool(row[0]), row[1] or "", row[2] or ""

    # -- write-ahead ----------------------------------------------------------------
    def insert_order(self, client_order_id: str, at: Any, fields: Mapping[str, Any],
                     lease_until: Any = None) -> int | None:
        """Commit a new order row (state ``new``) and its ``new`` audit row; the order's id.

        ``None`` if the id already exists (nothing written). ``fields`` are the
        creation fields the engine's recorder produces (``account`` is this
        connection's account). With ``lease_until`` the run's lease is extended in the
        same transaction, and :class:`LeaseLost` is raised (nothing written) when the
        run is no longer this engine's. On ``None`` the caller uses
        :meth:`Transaction.upsert_order_id`, which checks and updates.
        """
        values = {c: fields.get(c) for c in _ORDER_COLUMNS}
        values.update(client_order_id=client_order_id, account_id=self.account_id,
                      side=check_choice("side", fields["side"], m.SIDES),
                      type=check_choice("type", fields["type"], m.ORDER_TYPES),
                      status=check_choice("status", fields.get("status") or "new", m.ORDER_STATUSES),
                      time_in_force=check_choice("time_in_force", fields.get("time_in_force") or "gtc",
                                                 m.TIME_IN_FORCE),
                      filled_quantity=fields.get("filled_quantity") or 0, created_at=at,
                      updated_at=at)
        params = self._ins.params(values)
        conn = self._conn
        cur = conn.cursor()
        row = None
        try:
            if self.sqlite:
                cur.execute("BEGIN IMMEDIATE")
            if lease_until is not None and self.owner is not None:
                cur.execute(self._lease.sql, self._lease.params(
                    {"rid": self.run_id, "p_owner": self.owner, "p_until": lease_until}))
                if cur.rowcount != 1:
                    raise LeaseLost(f"run {self.run_id} is no longer this engine's "
                                    "(another engine took its lease over)")
            cur.execute(self._ins.sql, params)
            row = cur.fetchone()
            if row is not None:  # the audit trail's first row commits with the order
                cur.execute(self._oe.sql, self._oe.params(
                    {"order_id": int(row[0]), "from_state": None, "to_state": values["status"],
                     "at": at, "reason": None}))
            if self.sqlite:
                cur.execute("COMMIT")
            else:
                conn.commit()
        except BaseException:
            if self.sqlite:
                if conn.in_transaction:
                    cur.execute("ROLLBACK")
            else:
                conn.rollback()
            raise
        finally:
            cur.close()
        return int(row[0]) if row is not None else None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """SQLite: ``BEGIN IMMEDIATE`` ... ``COMMIT`` on this connection, yielding a cursor.

        For the recorder's routine flushes (see :mod:`tradelab.store.bulkwrite`);
        rolled back if the block raises.
        """
        if not self.sqlite:
            raise RuntimeError("SideConnection.transaction is SQLite-only")
        conn = self._conn
        cur = conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                cur.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    def renew_lease(self, cur: Any, until: Any) -> bool:
        """Extend the run's lease inside the transaction of ``cur``; False if it is not ours."""
        if self.owner is None:
            return True
        cur.execute(self._lease.sql, self._lease.params(
            {"rid": self.run_id, "p_owner": self.owner, "p_until": until}))
        return bool(cur.rowcount == 1)

    # -- maintenance ----------------------------------------------------------------
    def checkpoint(self) -> None:
        """SQLite: copy the WAL into the database now (PASSIVE: never waits for readers)."""
        if self.sqlite:
            self._conn.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").close()

    def close(self) -> None:
        """Return the connection to the pool."""
        self._conn.close()
