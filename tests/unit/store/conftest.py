"""Fixtures for the store tests (``store_url`` comes from the ``tests.pg`` plugin)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradelab.store import Store

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def at(minutes: int) -> datetime:
    """A deterministic UTC timestamp ``minutes`` after T0."""
    return T0 + timedelta(minutes=minutes)



@pytest.fixture()
def account(store: Store) -> str:
    """A ``paper`` account with 100,000 USD."""
    with store.transaction() as tx:
        tx.ensure_account("paper", Decimal("100000"))
    return "paper"
