"""Fixtures: an :class:`AuthService` over a fresh database on each backend."""

from __future__ import annotations

import pytest

from tests.unit.api.helpers import SECRET, T0, auth_settings
from tradelab.auth import AuthService
from tradelab.clock import SimClock
from tradelab.store import Store


@pytest.fixture()
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture()
def auth(store: Store, clock: SimClock) -> AuthService:
    """The service with cheap argon2 and a simulated clock."""
    return AuthService(store, auth_settings(), secret=SECRET, clock=clock)
