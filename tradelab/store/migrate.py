"""Alembic, driven programmatically with the migrations shipped in the package.

No ``alembic.ini`` is needed at run time: :func:`alembic_config` points Alembic
at ``tradelab/store/migrations`` and hands it an open connection. The
``alembic.ini`` next to this file is only for developers running the
``alembic`` command (``alembic -c tradelab/store/alembic.ini revision --autogenerate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from tradelab.store.models import Base

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the packaged migrations.

    Parameters
    ----------
    connection
        Used by ``migrations/env.py`` when given (the usual programmatic path).
    url
        Otherwise ``env.py`` connects to this URL.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        # ConfigParser interpolation would choke on "%" in URL-encoded passwords.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision shipped with this version of tradelab."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run ``alembic upgrade <revision>`` on ``engine`` in one transaction."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
        return
    with engine.connect() as conn:
        # SQLite migrations rebuild a table to change it (copy, drop, rename): with
        # foreign keys enforced, dropping a table that other rows reference fails.
        # The pragma is ignored inside a transaction, so it is switched off on the
        # raw connection before the migration's transaction begins, and the result
        # is checked with foreign_key_check before that transaction commits.
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                command.upgrade(alembic_config(conn), revision)
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration to {revision} left {len(broken)} rows with "
                                       f"dangling foreign keys, e.g. {tuple(broken[0])}; rolled back")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_diff(engine: Engine) -> list[Any]:
    """Differences between the models and the database (``[]`` when in sync).

    The same comparison as ``alembic check``: run it on a database upgraded to
    head to prove the migrations create exactly what the models describe.
    """
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "compare_server_default": True})
        return list(compare_metadata(ctx, Base.metadata))
