"""Reconciliations are stored and read back; the store can be checked against a venue offline."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.unit.reconcile.conftest import T0, Book
from tradelab.execution import Execution
from tradelab.orders.brokers.paper import PaperBroker
from tradelab.reconcile import reconcile_store, store_writer
from tradelab.store import Store
from tradelab.store.errors import UnknownAccountError
from tradelab.testing import CountingBroker, FakeVenue


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'rec.db'}")
    store.upgrade()
    with store.transaction() as tx:
        tx.ensure_account("acc", Decimal(10_000))
    return store


def test_each_run_is_stored_and_read_back_newest_first(book: Book, venue: FakeVenue, store: Store) -> None:
    venue.place("manual", "SPX", "buy", 1)
    rec = book.reconciler()
    rec.record = store_writer(store, "acc")
    rec.run("start")
    venue.set_position("SPX", 2)
    rec.clock.advance(T0 + timedelta(minutes=1))
    rec.run("periodic")

    rows = store.reconcile.reconciliations("acc", limit=10)
    assert [(r.trigger, r.ok) for r in rows] == [("periodic", False), ("start", True)]
    latest = rows[0]
    assert latest.account == "acc" and latest.venue == "fake" and latest.run_id is None
    assert latest.at == T0 + timedelta(minutes=1) and latest.booked_fills == 0 and not latest.adopted
    kinds = [f["kind"] for f in latest.findings]
    assert kinds == ["foreign_order", "position_mismatch"]
    assert latest.findings[1] == {"kind": "position_mismatch", "symbol": "SPX", "client_order_id": None,
                                  "store": "0", "venue": "2", "detail": "SPX: book 0, venue 2"}
    assert [r.trigger for r in store.reconcile.reconciliations("acc", limit=1)] == ["periodic"]
    assert store.reconcile.reconciliations("nobody") == []


def test_recording_for_an_unknown_account_or_trigger_fails(store: Store) -> None:
    with pytest.raises(UnknownAccountError):
        store.reconcile.record_reconciliation("nobody", venue="v", trigger="manual", at=T0, ok=True)
    with pytest.raises(ValueError, match="trigger"):
        store.reconcile.record_reconciliation("acc", venue="v", trigger="hourly", at=T0, ok=True)


def _store_with_book(store: Store) -> None:
    with store.transaction() as tx:
        tx.set_position("acc", "SPX", Decimal(5), Decimal(100), Decimal(0))
        tx.upsert_order("tl-open", at=T0, account="acc", symbol="SPX", side="buy", type="limit",
                        quantity=Decimal(2), limit_price=Decimal(90), status="submitted")
        tx.upsert_order("tl-lost", at=T0, account="acc", symbol="SPX", side="buy", type="market",
                        quantity=Decimal(1), status="pending")


def test_the_store_is_compared_with_the_venue_without_booking_or_sending(store: Store) -> None:
    _store_with_book(store)
    venue = FakeVenue(cash=10_000)
    venue.place("tl-open", "SPX", "buy", 2)
    venue.fill("tl-open", 1, 90)             # the engine was away
    venue.set_position("SPX", 6)
    venue.cash = Decimal(10_000)
    venue.place("hand", "SPX", "sell", 1)
    counted = CountingBroker(venue)

    outcome = reconcile_store(counted, store, "acc", quote_asset="USD")
    assert outcome.trigger == "manual" and outcome.booked_fills == 0 and not outcome.adopted
    assert [f.kind for f in outcome.findings] == ["missed_fill", "order_state", "not_at_venue",
                                                  "foreign_order"]
    assert outcome.ok   # store 5 + the 1 the engine books at start = the venue's 6
    assert counted.calls["submit"] == counted.calls["cancel"] == 0
    assert store.get_order("tl-open").filled_quantity == 0  # report only: nothing booked

    venue.set_position("SPX", 7)
    off = reconcile_store(venue, store, "acc", quote_asset="USD")
    assert not off.ok
    assert off.of_kind("position_mismatch")[0].detail == (
        "SPX: store 5 (+1 in fills not booked yet), venue 7")


def test_a_store_position_the_venue_does_not_hold_is_a_mismatch(store: Store) -> None:
    _store_with_book(store)
    paper = PaperBroker(Execution(cash=10_000.0))    # a fresh simulated venue holds nothing
    outcome = reconcile_store(paper, store, "acc", quote_asset="cash")
    assert not outcome.ok
    mismatch = outcome.of_kind("position_mismatch")[0]
    assert (mismatch.symbol, mismatch.store, mismatch.venue) == ("SPX", "5", "0")
    assert [f.kind for f in outcome.findings if f.kind == "not_at_venue"] == ["not_at_venue"] * 2
    written = store_writer(store, "acc")(outcome)
    assert store.reconcile.reconciliations("acc")[0].id == written


def test_an_unknown_account_compares_as_empty(store: Store) -> None:
    venue = FakeVenue(cash=0)
    venue.set_position("SPX", 1)
    outcome = reconcile_store(venue, store, "nobody")
    assert not outcome.ok and [f.kind for f in outcome.findings] == ["position_mismatch"]


def test_what_reconciliation_books_and_adopts_reaches_the_store_through_the_recorder(
        store: Store) -> None:
    """The engine's recorder writes the booked fill, the adopted order and position, and
    the alert, as it writes any other transition (no SQL in reconciliation)."""
    from tests.unit.reconcile.conftest import make_book
    from tradelab.events import RiskAlert
    from tradelab.store.recorder import Recorder

    with store.transaction() as tx:
        run_id = tx.start_run("acc", "s", symbol="SPX", source="test", mode="live", started_at=T0)
    venue = FakeVenue(cash=10_000)
    book = make_book(venue, cash=10_000)
    recorder = Recorder(store, "acc", run_id, book.bus, flush_every=1, equity_events=False)
    book.order("tl-mine", qty=2)
    book.orders.submit("tl-mine")
    venue.fill("tl-mine", 2, 100)
    venue.place("tl-other", "QQQ", "buy", 3, cum_quantity=1, avg_price=50)
    venue.set_position("QQQ", 1)
    venue.set_position("IWM", 4)
    venue.cash = Decimal(10_000) - 200 - 50
    rec = book.reconciler()
    rec.record = store_writer(store, "acc", run_id)

    outcome = rec.run("start", adopt=True)
    recorder.flush()
    assert outcome.ok and outcome.adopted and outcome.booked_fills == 2
    orders = {o.client_order_id: o for o in store.orders("acc")}
    assert orders["tl-mine"].status == "filled" and orders["tl-mine"].filled_quantity == 2
    assert orders["tl-other"].status == "partially_filled" and orders["tl-other"].filled_quantity == 1
    assert {p.symbol: p.quantity for p in store.positions("acc", include_flat=False)} == {
        "SPX": 2, "QQQ": 1, "IWM": 4}
    assert [f.fill_id for f in store.fills("acc")].count("t-tl-mine-1") == 1
    assert store.get_account("acc").cash == 9_750            # = the venue's: no balance finding
    assert "balance_mismatch" not in [f.kind for f in outcome.findings]
    assert [e.rule for e in store.risk_events("acc")] == ["reconciliation"]
    (row,) = store.reconcile.reconciliations("acc")
    assert row.run_id == run_id and row.adopted and row.booked_fills == 2
    assert any(isinstance(e, RiskAlert) for e in book.events)
