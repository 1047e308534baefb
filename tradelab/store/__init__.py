"""Persistence for the paper/live engine: SQLAlchemy models, Alembic migrations, the Store.

>>> store = Store("sqlite:////tmp/tradelab.db")   # doctest: +SKIP
>>> store.upgrade()                                # doctest: +SKIP
>>> with store.transaction() as tx:                # doctest: +SKIP
...     tx.ensure_account("paper", Decimal("100000"))

The API speaks primitives only (str, int, Decimal, aware UTC datetime, dict)
and returns frozen records from :mod:`tradelab.store.records`.
"""

from __future__ import annotations

from tradelab.store.errors import (
    OrderConflictError,
    StoreError,
    UnknownAccountError,
    UnknownOrderError,
)
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
from tradelab.store.store import (
    DEFAULT_URL,
    Store,
    create_store_engine,
    mask_url,
    open_store,
    resolve_url,
    store_url,
)
from tradelab.store.tx import Transaction

__all__ = [
    "DEFAULT_URL",
    "AccountRecord",
    "AccountState",
    "EquityPoint",
    "FillRecord",
    "KillSwitchState",
    "OrderConflictError",
    "OrderEventRecord",
    "OrderRecord",
    "PositionRecord",
    "RiskEventRecord",
    "RunRecord",
    "Store",
    "StoreError",
    "Transaction",
    "UnknownAccountError",
    "UnknownOrderError",
    "create_store_engine",
    "mask_url",
    "open_store",
    "resolve_url",
    "store_url",
]
