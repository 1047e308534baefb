"""The engine's reconciliation: the venue is the truth, and nothing is ever sent by it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.unit.reconcile.conftest import T0, Book, make_book
from tradelab.events import PositionChanged, RiskAlert
from tradelab.execution import Execution
from tradelab.orders.brokers.paper import PaperBroker
from tradelab.orders.model import OrderState
from tradelab.reconcile import ADOPTED, Reconciliation
from tradelab.testing import FakeVenue


def _kinds(outcome: Reconciliation) -> list[str]:
    return [f.kind for f in outcome.findings]


def test_a_missed_fill_is_booked_once(book: Book, venue: FakeVenue) -> None:
    order = book.order("tl-1", qty=2)
    assert book.orders.submit("tl-1")
    venue.fill("tl-1", 1, 100, fee="0.5")       # the stream report never arrived
    rec = book.reconciler()

    first = rec.run("start")
    assert _kinds(first) == ["missed_fill", "order_state"]
    assert first.booked_fills == 1 and first.ok
    assert order.state is OrderState.PARTIALLY_FILLED and order.filled_quantity == 1
    assert book.portfolio.position("SPX") == 1 and book.portfolio.cash == Decimal("9899.5")

    second = rec.run("periodic")  # nothing new at the venue: nothing booked again
    assert second.booked_fills == 0 and second.findings == () and second.ok
    assert book.portfolio.position("SPX") == 1 and len(order.fills) == 1

    venue.fill("tl-1", 1, 102)
    third = rec.run("periodic")
    assert third.booked_fills == 1 and order.state is OrderState.FILLED
    assert book.portfolio.position("SPX") == venue.positions()["SPX"] == 2
    assert [r.trigger for r in book.records] == ["start", "periodic", "periodic"]


def test_the_paper_broker_s_fills_the_book_missed_are_booked_by_query() -> None:
    paper = PaperBroker(Execution(fees=0.0, cash=1_000.0))
    book = make_book(paper, cash=1_000)
    book.order("tl-p", qty=3)
    assert book.orders.submit("tl-p")
    paper.on_bar("SPX", T0 + timedelta(days=1), 10, 11, 9, 10, 1e6, "open")  # updates dropped
    outcome = book.reconciler(quote_asset="cash").run("start")
    assert outcome.booked_fills == 1 and outcome.ok
    assert book.orders.orders["tl-p"].state is OrderState.FILLED
    assert book.portfolio.position("SPX") == paper.positions()["SPX"] == 3
    assert book.portfolio.cash == paper.cash == Decimal(970)
    assert "balance_mismatch" not in _kinds(outcome)
    assert book.venue.calls["submit"] == 1 and book.venue.calls["cancel"] == 0  # the engine's only


def test_a_pending_order_is_resolved_by_the_venue_s_answer(book: Book, venue: FakeVenue) -> None:
    order = book.order("tl-2", qty=2)
    order.transition(OrderState.PENDING, T0, "answer lost")
    venue.submit(order)                     # the venue did get it, and filled it
    venue.fill("tl-2", 2, 50)
    outcome = book.reconciler().run("start")
    assert _kinds(outcome) == ["missed_fill", "pending_resolved"]
    assert outcome.of_kind("pending_resolved")[0].venue == "filled"
    assert order.state is OrderState.FILLED and book.portfolio.position("SPX") == 2
    assert outcome.ok


def test_a_pending_order_the_venue_never_saw_is_left_to_the_order_manager(book: Book) -> None:
    order = book.order("tl-3")
    order.transition(OrderState.PENDING, T0, "answer lost")
    outcome = book.reconciler().run("start")
    assert _kinds(outcome) == ["not_at_venue"]
    assert order.state is OrderState.PENDING      # reconciliation does not send it
    assert book.venue.calls["submit"] == 0
    book.orders.resubmit_pending()               # the order manager does, under the same id
    assert order.state is OrderState.SUBMITTED and book.venue.calls["submit"] == 1


def test_a_venue_order_not_ours_is_reported_and_left_alone(book: Book, venue: FakeVenue) -> None:
    venue.place("web-778", "SPX", "sell", 4)
    outcome = book.reconciler().run("start", adopt=True)
    (found,) = outcome.findings
    assert found.kind == "foreign_order" and found.client_order_id == "web-778"
    assert "web-778" not in book.orders.orders and not outcome.adopted
    assert venue.reports["web-778"].is_open and outcome.ok


def test_a_venue_order_of_ours_is_adopted_only_when_asked(book: Book, venue: FakeVenue) -> None:
    venue.place("tl-lost", "SPX", "buy", 5, cum_quantity=2, avg_price=10)
    venue.set_position("SPX", 2)
    venue.cash -= 20
    rec = book.reconciler()

    plain = rec.run("start")
    assert _kinds(plain) == ["unknown_ours", "position_mismatch", "balance_mismatch"]
    assert not plain.ok
    assert "tl-lost" not in book.orders.orders and book.portfolio.position("SPX") == 0

    adopted = rec.run("start", adopt=True)
    assert _kinds(adopted) == ["unknown_ours"] and adopted.ok and adopted.adopted
    assert "adopted" in adopted.findings[0].detail and adopted.booked_fills == 1
    order = book.orders.orders["tl-lost"]
    assert order.strategy == ADOPTED and order.state is OrderState.PARTIALLY_FILLED
    assert order.filled_quantity == 2 and book.portfolio.position("SPX") == 2
    # It entered the book as the venue's order: risk never saw a request to approve.
    assert not book.of_type("OrderRequested") and not book.of_type("OrderApproved")
    created = book.of_type("OrderSubmitted")[-1]
    assert created.from_state is None and created.client_order_id == "tl-lost"


def test_a_position_mismatch_fails_until_the_venue_s_state_is_adopted(book: Book, venue: FakeVenue) -> None:
    book.portfolio.apply_fill("SPX", "buy", Decimal(2), Decimal(100), Decimal(0))
    book.portfolio.mark("SPX", Decimal(110))
    venue.set_position("SPX", 3)
    venue.set_position("QQQ", -1)
    rec = book.reconciler()

    refused = rec.run("start")
    assert not refused.ok and _kinds(refused) == ["position_mismatch", "position_mismatch",
                                                  "balance_mismatch"]
    spx = next(f for f in refused.findings if f.symbol == "SPX")
    assert (spx.store, spx.venue) == ("2", "3") and spx.detail == "SPX: book 2, venue 3"

    accepted = rec.run("start", adopt=True)
    assert accepted.ok and accepted.adopted
    assert {s: p.quantity for s, p in book.portfolio.positions.items() if p.quantity} == venue.positions()
    assert book.portfolio.positions["SPX"].avg_price == 100  # same side: average kept
    assert book.portfolio.positions["QQQ"].avg_price == 0    # new, no mark known
    changed = {e.symbol: e.quantity for e in book.of_type("PositionChanged")
               if isinstance(e, PositionChanged)}
    assert changed == {"SPX": 3, "QQQ": -1}                  # what the store's recorder writes
    assert rec.run("periodic").ok


def test_a_flipped_position_takes_the_last_mark_as_basis(book: Book, venue: FakeVenue) -> None:
    book.portfolio.apply_fill("SPX", "buy", Decimal(2), Decimal(100), Decimal(0))
    book.portfolio.mark("SPX", Decimal(90))
    venue.set_position("SPX", -1)
    outcome = book.reconciler().run("start", adopt=True)
    pos = book.portfolio.positions["SPX"]
    assert outcome.ok and pos.quantity == -1 and pos.avg_price == 90
    assert "basis 90 (last mark)" in outcome.of_kind("position_mismatch")[0].detail


def test_positions_in_symbols_not_traded_are_reported_not_mismatched(book: Book, venue: FakeVenue) -> None:
    venue.set_position("BNB", "0.013")
    outcome = book.reconciler(symbols={"SPX"}).run("start")
    assert outcome.ok and _kinds(outcome) == ["foreign_position"]


def test_cash_differences_are_informational(book: Book, venue: FakeVenue) -> None:
    venue.cash = Decimal(25_000)
    outcome = book.reconciler().run("periodic")
    (found,) = outcome.findings
    assert found.kind == "balance_mismatch" and (found.store, found.venue) == ("10000", "25000")
    assert outcome.ok


def test_reconciliation_never_submits_or_cancels(book: Book, venue: FakeVenue) -> None:
    """Every kind of finding at once, with and without adoption."""
    book.portfolio.apply_fill("QQQ", "buy", Decimal(1), Decimal(10), Decimal(0))
    book.order("tl-a")
    book.orders.submit("tl-a")
    venue.fill("tl-a", 1, 100)
    pending = book.order("tl-b")
    pending.transition(OrderState.PENDING, T0, "answer lost")
    gone = book.order("tl-c")
    gone.transition(OrderState.PENDING, T0, "answer lost")
    venue.submit(pending)
    venue.cancel("tl-b")
    venue.place("tl-x", "SPX", "sell", 1)
    venue.place("manual", "SPX", "buy", 1)
    venue.set_position("IWM", 7)
    book.venue.calls.clear()
    rec = book.reconciler()
    kinds = set(_kinds(rec.run("start"))) | set(_kinds(rec.run("start", adopt=True)))
    assert kinds >= {"missed_fill", "pending_resolved", "not_at_venue", "unknown_ours",
                     "foreign_order", "position_mismatch", "balance_mismatch"}
    assert book.venue.calls["submit"] == 0 and book.venue.calls["cancel"] == 0
    assert book.venue.calls["query"] > 0 and book.venue.calls["open_orders"] == 2


def test_findings_are_announced_once_as_a_risk_alert(book: Book, venue: FakeVenue) -> None:
    venue.place("manual", "SPX", "buy", 1)
    rec = book.reconciler()
    rec.run("start")
    rec.run("periodic")                          # the same foreign order: not news
    venue.set_position("SPX", 1)
    rec.run("periodic")                          # a mismatch is
    alerts = [e for e in book.events if isinstance(e, RiskAlert)]
    assert [a.severity for a in alerts] == ["warning", "critical"]
    assert all(a.rule == "reconciliation" and a.account == "acc" for a in alerts)
    assert "SPX: book 0, venue 1" in alerts[1].message
    assert book.notified == alerts
    assert len(book.records) == 3


def test_a_venue_that_does_not_answer_raises_and_stores_nothing(book: Book, venue: FakeVenue) -> None:
    from tradelab.orders.brokers import TransientBrokerError

    def down() -> dict:
        raise TransientBrokerError("503")

    venue.positions = down  # type: ignore[method-assign]
    rec = book.reconciler()
    try:
        rec.run("start")
    except TransientBrokerError:
        pass
    else:  # pragma: no cover
        raise AssertionError("expected the venue's error")
    assert book.records == [] and not rec.history


def test_a_fill_landing_during_the_run_is_no_mismatch(book: Book, venue: FakeVenue) -> None:
    """The venue fills between the order queries and the position read: asked again."""
    book.order("tl-race", qty=1)
    book.orders.submit("tl-race")
    real_positions = venue.positions
    raced: list[bool] = []

    def positions() -> dict:
        if not raced:
            raced.append(True)
            venue.fill("tl-race", 1, 100)
        return real_positions()

    venue.positions = positions  # type: ignore[method-assign]
    outcome = book.reconciler().run("periodic")
    assert outcome.ok and outcome.booked_fills == 1 and book.portfolio.position("SPX") == 1
    assert _kinds(outcome) == ["missed_fill", "order_state"]


def test_a_position_the_venue_closed_is_adopted_flat(book: Book, venue: FakeVenue) -> None:
    book.portfolio.apply_fill("SPX", "buy", Decimal(2), Decimal(100), Decimal(0))
    venue.cash = Decimal(9_800)
    outcome = book.reconciler().run("start", adopt=True)
    assert outcome.ok and book.portfolio.position("SPX") == 0
    assert outcome.findings[0].detail == "adopted the venue's 0 SPX (book had 2; now flat)"
