"""The :class:`Store`: engine setup, migrations, transactions and read queries.

One ``Store`` per process and database URL. SQLite (a file) is the default for
a single machine; PostgreSQL (``postgresql+psycopg://...``) when several engine
processes share accounts.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.pool import StaticPool
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from tradelab.store import migrate
from tradelab.store.errors import describe_failure
from tradelab.store.reads import AccountRef, Reader
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
from tradelab.store.tx import Transaction
from tradelab.store.types import json_dumps

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_MS = 30_000
DEFAULT_URL = "sqlite:///var/tradelab.db"
_BEGIN = "tradelab_sqlite_begin"


def resolve_url(url: str | URL, home: Path | str | None = None) -> URL:
    """Parse ``url``; a relative SQLite file path is made absolute against ``home``."""
    parsed = make_url(url)
    db = parsed.database
    if parsed.get_backend_name() == "sqlite" and db and db != ":memory:" \
            and not db.startswith("file:") and home is not None and not Path(db).is_absolute():
        parsed = parsed.set(database=str(Path(home) / db))
    return parsed


def store_url(settings: Any = None, override: str | URL | None = None) -> URL:
    """The one way a store URL is chosen: ``override`` (``--db``, a job's ``db``) or ``[store] url``.

    A relative SQLite path in ``[store] url`` hangs off the project's ``home``; one given
    on a command line or as a job parameter is relative to the current directory, as
    any path typed there. Without settings the default is ``var/tradelab.db``.
    """
    if override:
        return resolve_url(override, Path.cwd())
    raw: Any = getattr(getattr(settings, "store", None), "url", None) or DEFAULT_URL
    raw = raw.get_secret_value() if hasattr(raw, "get_secret_value") else str(raw)
    return resolve_url(raw, getattr(settings, "home", None))


def open_store(settings: Any = None, override: str | URL | None = None, *,
               upgrade: bool = True) -> Store:
    """The :class:`Store` at :func:`store_url`, its SQLite folder created, migrated to head."""
    url = store_url(settings, override)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    timeout = getattr(getattr(settings, "store", None), "busy_timeout_ms", None) or SQLITE_BUSY_TIMEOUT_MS
    store = Store(url, busy_timeout_ms=timeout)
    if upgrade:
        store.upgrade()
    return store


class _PoolErrors(logging.Filter):
    """SQLAlchemy's pool logs a traceback when it cannot reset a connection whose server is
    gone. The run already stops with one line naming the cause ("connection lost"), so
    those are dropped; any other pool error is kept, as one line without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if describe_failure(exc) == "connection lost":
                return False
            first = str(exc).splitlines()[0] if str(exc) else ""
            record.msg, record.args = f"{record.getMessage()}: {type(exc).__name__}: {first}", None
            record.exc_info = record.exc_text = None
        return True


for _name in ("QueuePool", "NullPool", "StaticPool", "SingletonThreadPool", "AsyncAdaptedQueuePool"):
    logging.getLogger(f"sqlalchemy.pool.impl.{_name}").addFilter(_PoolErrors())
logging.getLogger("sqlalchemy.pool.base").addFilter(_PoolErrors())


def url_password(url: str | URL) -> str | None:
    """The password in ``url`` (``None`` when it has none or is not a URL): to scrub messages."""
    try:
        password = make_url(url).password
    except Exception:
        return None
    return None if password is None else str(password)


def mask_url(url: str | URL) -> str:
    """The URL as text with any password replaced by ``***`` (safe to print or log)."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any,
                       busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    # Take transaction control away from the sqlite3 module (it would BEGIN
    # lazily and DEFERRED); our "begin" listener below decides the mode.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # busy_timeout: writers queue instead of failing with "database is locked";
    # WAL: readers never block the writer; foreign keys are off by default.
    cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    _enter_wal(cur, busy_timeout_ms)
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")  # durable across crashes in WAL mode
    cur.close()


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _enter_wal(cur: Any, busy_timeout_ms: int) -> None:
    # Switching a new file to WAL takes an exclusive lock. When several
    # processes open a new file at once, SQLite answers all but one with
    # "database is locked" at once, without calling the busy handler (waiting
    # could deadlock), so the wait is done here, within the same busy timeout.
    for attempt in Retrying(retry=retry_if_exception(_is_locked),
                            stop=stop_after_delay(busy_timeout_ms / 1000),
                            wait=wait_random_exponential(multiplier=0.005, max=0.25),
                            reraise=True):
        with attempt:
            cur.execute("PRAGMA journal_mode=WAL")


def _sqlite_on_begin(conn: Any) -> None:
    # Write transactions take the write lock up front (BEGIN IMMEDIATE): a
    # deferred transaction that reads then writes would fail with SQLITE_BUSY
    # when another writer got in between, and busy_timeout cannot help there.
    conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(_BEGIN, 'DEFERRED')}")


def create_store_engine(url: str | URL, *, echo: bool = False,
                        busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    """A SQLAlchemy engine configured for the store (pragmas, JSON, pooling).

    SQLite files get WAL, ``foreign_keys=ON`` and a busy timeout on every
    connection, and their parent folder is created. Other backends get
    ``pool_pre_ping`` so a restarted database server does not break the engine.
    ``busy_timeout_ms`` is how long a SQLite writer waits for another one's lock
    before its statement fails ("database is locked").
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "json_serializer": json_dumps}
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database or ""
        if db in ("", ":memory:"):
            # One shared connection, or every checkout would see a new empty DB.
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            if not db.startswith("file:"):
                Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": busy_timeout_ms / 1000,
                                      "check_same_thread": False}
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect",
                     lambda conn, rec: _sqlite_on_connect(conn, rec, busy_timeout_ms))
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


class Store:
    """Persistence for the paper/live engine, over SQLite or PostgreSQL.

    Parameters
    ----------
    url
        A SQLAlchemy URL, e.g. ``sqlite:////abs/path/tradelab.db`` or
        ``postgresql+psycopg://user:pw@host/db``.
    echo
        Log every SQL statement (debugging).
    busy_timeout_ms
        SQLite: how long a write waits for another writer's lock before it fails
        (``[store] busy_timeout_ms``); the engine then halts the run (fail closed).

    Notes
    -----
    Writes go through :meth:`transaction` (a unit of work); reads are
    methods of the store (each in its own short transaction) and are also
    available on the transaction object to read one's own writes. Results are
    frozen dataclasses from :mod:`tradelab.store.records`. Call
    :meth:`upgrade` once at start-up to create or migrate the schema.
    """

    def __init__(self, url: str | URL, *, echo: bool = False,
                 busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
        self.url = make_url(url)
        self.engine = create_store_engine(self.url, echo=echo, busy_timeout_ms=busy_timeout_ms)
        self._write = self.engine.execution_options(**{_BEGIN: "IMMEDIATE"})

    def __repr__(self) -> str:
        return f"Store({mask_url(self.url)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release all pooled connections."""
        self.engine.dispose()

    # -- schema ----------------------------------------------------------
    def upgrade(self, revision: str = "head") -> None:
        """Create or migrate the schema (``alembic upgrade head``); safe to call concurrently."""
        migrate.upgrade(self._write, revision)

    def current_revision(self) -> str | None:
        """The schema revision of the database (``None`` if never upgraded)."""
        return migrate.current_revision(self.engine)

    @staticmethod
    def head_revision() -> str:
        """The newest schema revision this code ships."""
        return migrate.head_revision()

    @property
    def quality(self) -> Any:
        """Data-quality outcomes (:class:`tradelab.store.quality_repo.QualityRepo`)."""
        from tradelab.store.quality_repo import QualityRepo

        return QualityRepo(self)

    @property
    def closes(self) -> Any:
        """Operators' requests to close one position (:class:`tradelab.store.close_repo.CloseRepo`)."""
        from tradelab.store.close_repo import CloseRepo

        return CloseRepo(self)

    @property
    def reconcile(self) -> Any:
        """Reconciliations with venues (:class:`tradelab.store.reconcile_repo.ReconcileRepo`)."""
        from tradelab.store.reconcile_repo import ReconcileRepo

        return ReconcileRepo(self)

    # -- unit of work ----------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A unit of work: commits when the block ends, rolls back on any exception.

        Do not nest transactions of one store (on SQLite the inner one would
        wait for the outer's write lock).
        """
        with self._write.begin() as conn:
            yield Transaction(conn)

    def _read(self, fn: Callable[[Reader], T]) -> T:
        with self.engine.connect() as conn:
            return fn(Reader(conn))

    # -- reads -----------------------------------------------------------
    def get_account(self, account: AccountRef) -> AccountRecord | None:
        """The account by name or id, or ``None``."""
        return self._read(lambda r: r.get_account(account))

    def account_names(self) -> list[str]:
        """Every account's name, sorted."""
        return self._read(lambda r: r.account_names())

    def get_order(self, client_order_id: str) -> OrderRecord | None:
        """The order with this client order id, or ``None``."""
        return self._read(lambda r: r.get_order(client_order_id))

    def open_orders(self, account: AccountRef) -> list[OrderRecord]:
        """Orders still working (new, submitted, partially filled), oldest first."""
        return self._read(lambda r: r.open_orders(account))

    def orders(self, account: AccountRef, run_id: int | None = None) -> list[OrderRecord]:
        """All orders of an account, optionally of one run, oldest first."""
        return self._read(lambda r: r.orders(account, run_id))

    def order_events(self, client_order_id: str) -> list[OrderEventRecord]:
        """The state transitions of one order, in recording order."""
        return self._read(lambda r: r.order_events(client_order_id))

    def fills(self, account: AccountRef, run_id: int | None = None) -> list[FillRecord]:
        """Fills of an account's orders, optionally of one run, in time order."""
        return self._read(lambda r: r.fills(account, run_id))

    def positions(self, account: AccountRef, *, include_flat: bool = True) -> list[PositionRecord]:
        """Positions by symbol (flat ones included unless ``include_flat=False``)."""
        return self._read(lambda r: r.positions(account, include_flat=include_flat))

    def equity_curve(self, account: AccountRef, run_id: int | None = None) -> list[EquityPoint]:
        """Equity snapshots in time order, optionally of one run."""
        return self._read(lambda r: r.equity_curve(account, run_id))

    def risk_events(self, account: AccountRef) -> list[RiskEventRecord]:
        """Risk events in time order."""
        return self._read(lambda r: r.risk_events(account))

    def kill_switch(self, account: AccountRef) -> KillSwitchState:
        """The account's kill-switch state."""
        return self._read(lambda r: r.kill_switch(account))

    def get_run(self, run_id: int) -> RunRecord | None:
        """One run by id, or ``None``."""
        return self._read(lambda r: r.get_run(run_id))

    def runs(self, account: AccountRef | None = None) -> list[RunRecord]:
        """Runs of one account (or all), oldest first."""
        return self._read(lambda r: r.runs(account))

    def account_state(self, account: AccountRef) -> AccountState:
        """Cash, positions, open orders, kill switch and last run, read consistently.

        On PostgreSQL the queries run in one REPEATABLE READ transaction, so
        they all see the same snapshot even while other engines write.
        """
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            return Reader(conn).account_state(account)
