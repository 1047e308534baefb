"""Runs remember their execution options: cash, fees, fixed_fees, slippage, size,
size_type, fill, fractional, borrow_fee (the fields of :class:`tradelab.execution.Execution`).

``--resume`` and ``parity --run`` take them from the run instead of the command
line and ``[research]`` (a conflicting flag is refused), so a resumed run charges
the fees it started with. Runs started before this revision keep NULL: their
options are unknown, and the command line's apply as before.

One JSON column rather than nine typed ones, because it is exact and follows
``Execution``:

* floats round-trip bit for bit: the store writes them with Python's ``json``
  (the shortest ``repr`` that reads back as the same double), SQLite keeps the
  text, PostgreSQL's ``json`` type (not ``jsonb``) keeps it verbatim; a fee
  stored as ``0.001`` is read back as ``0.001``, not ``0.0010000000000000002``;
* the object is ``Execution``'s own fields, read back with ``Execution(**row)``:
  a run is resumed with the very convention it was started with, and a field
  added to ``Execution`` later is missing from older rows, which then take its
  default (the behaviour those runs had) without another migration.

Nothing queries these values in SQL (the run is the unit that is looked up), so
typed columns would buy no index or constraint that is used.

Revision ID: 0010_run_execution_options
Revises: 0009_run_trade_options
Create Date: 2026-12-04 08:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_run_execution_options"
down_revision: str | None = "0009_run_trade_options"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("execution", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("execution")
