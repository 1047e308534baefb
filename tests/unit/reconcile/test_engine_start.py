"""The engine's start against a real (fake) venue: a position mismatch refuses, --adopt accepts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tradelab.app.wiring import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.errors import RunHalted
from tradelab.execution import Execution
from tradelab.store import Store
from tradelab.testing import CountingBroker, FakeVenue


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'start.db'}")
    store.upgrade()
    return store


def _engine(registry, bars: pd.DataFrame, store: Store, venue, adopt: bool):  # type: ignore[no-untyped-def]
    return assemble_engine([(registry.create("sma_cross", fast=3, slow=8), "SPX")],
                           ReplayFeed(bars, "SPX"), Execution(cash=10_000.0), broker=venue,
                           store=store, config=EngineConfig(account="live", adopt=adopt,
                                                            flush_seconds=0.0))


def test_a_venue_position_refuses_the_start_until_adopted(registry, spx: pd.DataFrame,
                                                          store: Store) -> None:
    bars = spx.iloc[:20]
    venue = FakeVenue(cash=10_000)
    venue.set_position("SPX", 3)
    venue.place("by-hand", "SPX", "sell", 1)
    counted = CountingBroker(venue)

    with pytest.raises(RunHalted, match=r"disagrees with the book: SPX: book 0, venue 3"):
        _engine(registry, bars, store, counted, adopt=False).run()
    assert counted.calls["submit"] == counted.calls["cancel"] == 0
    (refused,) = store.reconcile.reconciliations("live")
    assert refused.trigger == "start" and not refused.ok and refused.run_id is not None
    assert [f["kind"] for f in refused.findings] == ["foreign_order", "position_mismatch"]

    # A new run on the account, this time taking the venue's position.
    engine = _engine(registry, bars, Store(store.url), counted, adopt=True)
    engine.run()
    start = store.reconcile.reconciliations("live", limit=None)[-2]
    assert start.trigger == "start" and start.ok and start.adopted
    assert {p.symbol: p.quantity for p in store.positions("live", include_flat=False)}["SPX"] >= 3
    assert venue.reports["by-hand"].is_open   # a foreign order is never touched
    assert counted.calls["cancel"] == 0
    assert Decimal(3) <= engine.portfolio.position("SPX")
