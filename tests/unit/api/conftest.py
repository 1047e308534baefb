"""Fixtures: a real app over a fresh database on each backend (``store_url``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.api.helpers import Harness, build


@pytest.fixture()
def h(store_url: str) -> Iterator[Harness]:
    """The app with seeded trading data and users admin, trader and viewer."""
    harness = build(store_url)
    with harness.client:
        yield harness
    harness.store.close()
