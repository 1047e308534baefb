"""Alembic environment for the tradelab store (used by Store.upgrade and the CLI)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from tradelab.store.models import Base

config = context.config
# Any 64-bit number unique to this application: serializes concurrent upgrades.
_PG_LOCK_KEY = 0x7472_6164_656C_6162 >> 1


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Several engine processes may start at once and all call upgrade();
        # the transaction-scoped advisory lock makes them take turns. (SQLite
        # store connections begin with BEGIN IMMEDIATE, which does the same.)
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from tradelab.store.store import create_store_engine

    # `alembic -x url=...` beats the ini file's sqlalchemy.url.
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: set sqlalchemy.url or pass a connection")
    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
