"""The store against the venue with no engine running (``tradelab broker reconcile``).

:func:`reconcile_store` reads what the store holds for an account (open
orders, positions, cash) and compares it with the venue, producing the same
:class:`~tradelab.reconcile.model.Reconciliation` as the engine's reconciler,
with trigger ``manual``. It is a report: it books nothing, changes no row and
sends nothing; the engine books what the venue did at its next start.
:func:`store_writer` is the store-backed ``record`` callable both use.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tradelab.interfaces import Broker, Clock
from tradelab.reconcile.model import (
    Finding,
    Reconciliation,
    amount,
    classify_venue_order,
    compare_cash,
    compare_positions,
)

#: How a venue's report status reads as the store's order status.
_AS_STORED = {"accepted": "submitted"}


def reconcile_store(broker: Broker, store: Any, account: str, *, venue: str | None = None,
                    quote_asset: str | None = None, symbols: Collection[str] | None = None,
                    clock: Clock | None = None, trigger: str = "manual") -> Reconciliation:
    """Compare the store's view of ``account`` with the venue (report only).

    Parameters
    ----------
    broker
        The venue; only ``query``, ``open_orders``, ``positions`` and ``balances`` are called.
    store
        A :class:`tradelab.store.Store` (``account_state``, ``get_order``).
    account
        The account's name; one the store does not know compares as empty.
    venue, quote_asset, symbols
        As for :class:`~tradelab.reconcile.Reconciler`.
    clock
        Stamps the outcome (default: the wall clock, UTC).
    trigger
        Stored with the outcome (``manual`` for a command).

    Returns
    -------
    Reconciliation
        ``booked_fills`` 0 and ``adopted`` False always; ``ok`` False when a position differs.
    """
    from tradelab.store.errors import UnknownAccountError

    at = clock.now() if clock is not None else datetime.now(UTC)
    try:
        state = store.account_state(account)
    except UnknownAccountError:
        state = None
    open_orders = list(state.open_orders) if state is not None else []
    book = {p.symbol: Decimal(p.quantity) for p in (state.positions if state is not None else ())
            if p.quantity}
    cash = Decimal(state.account.cash) if state is not None else None
    findings: list[Finding] = []
    asked: set[str] = set()
    unbooked: dict[str, Decimal] = {}   # what the engine will book at start, by symbol
    for rec in open_orders:
        asked.add(rec.client_order_id)
        report = broker.query(rec.client_order_id)
        findings += _order_findings(rec, report)
        if report is not None and report.cum_quantity > Decimal(rec.filled_quantity or 0):
            delta = report.cum_quantity - Decimal(rec.filled_quantity or 0)
            unbooked[rec.symbol] = unbooked.get(rec.symbol, Decimal(0)) + (
                delta if rec.side == "buy" else -delta)
    for report in broker.open_orders():
        cid = report.client_order_id
        if cid in asked:
            continue
        known = store.get_order(cid) if cid else None
        if known is not None and known.account == account:
            findings.append(Finding("order_state", report.symbol, cid, known.status, report.status,
                                    f"the store holds it as {known.status}; the venue still works it"))
        else:
            findings.append(classify_venue_order(report))
    # Positions as the engine will hold them once it has booked the missed fills: a
    # difference those explain is no reason to refuse the start.
    projected = {sym: book.get(sym, Decimal(0)) + unbooked.get(sym, Decimal(0))
                 for sym in set(book) | set(unbooked)}
    positions = [_with_unbooked(f, book, unbooked)
                 for f in compare_positions(projected, broker.positions(), symbols, side="store")]
    findings += positions
    findings += compare_cash(cash, broker.balances(), quote_asset, side="store")
    ok = not any(f.kind == "position_mismatch" for f in positions)
    return Reconciliation(at, venue or str(getattr(broker, "name", "venue")), trigger,
                          tuple(findings), 0, False, ok)


def _with_unbooked(f: Finding, book: dict[str, Decimal], unbooked: dict[str, Decimal]) -> Finding:
    """A position finding stated against the store's quantity, naming fills not booked yet."""
    sym = str(f.symbol)
    if not unbooked.get(sym):
        return f
    stored = book.get(sym, Decimal(0))
    more = unbooked[sym]
    return Finding(f.kind, sym, None, amount(stored), f.venue,
                   f"{sym}: store {amount(stored)} ({'+' if more > 0 else ''}{amount(more)} in fills "
                   f"not booked yet), venue {f.venue}")


def _order_findings(rec: Any, report: Any) -> list[Finding]:
    """One stored open order against the venue's answer about it."""
    cid, sym, status = rec.client_order_id, rec.symbol, rec.status
    if report is None:
        why = ("its submit answer was lost and the venue never saw it: the engine sends it again "
               "at start" if status in ("pending", "new") else
               f"the store holds it as {status}; the venue has no order with this id")
        return [Finding("not_at_venue", sym, cid, status, None, why)]
    out: list[Finding] = []
    filled = Decimal(rec.filled_quantity or 0)
    if report.cum_quantity > filled:
        out.append(Finding("missed_fill", sym, cid, amount(filled), amount(report.cum_quantity),
                           f"the venue filled {amount(report.cum_quantity)} (avg "
                           f"{amount(report.avg_price)}), the store {amount(filled)}: not booked yet "
                           "(the engine books it at start)"))
    venue_status = _AS_STORED.get(report.status, report.status)
    if status == "pending":
        out.append(Finding("pending_resolved", sym, cid, status, report.status,
                           f"submit answer was lost; the venue has it as {report.status}"))
    elif venue_status != status and not (status == "new" and venue_status == "submitted"):
        out.append(Finding("order_state", sym, cid, status, report.status,
                           f"the store holds it as {status}, the venue as {report.status}"))
    elif status == "new":
        out.append(Finding("order_state", sym, cid, status, report.status,
                           "the store never recorded its acknowledgement; the venue has it"))
    return out


def store_writer(store: Any, account: str, run_id: int | None = None
                 ) -> Callable[[Reconciliation], int]:
    """A ``record`` callable storing each reconciliation of ``account`` (returns the row id).

    Parameters
    ----------
    store
        A :class:`tradelab.store.Store`.
    account
        The account's name (it must exist in the store).
    run_id
        The engine run reconciling, or ``None`` (a command).
    """
    def write(outcome: Reconciliation) -> int:
        return int(store.reconcile.record_reconciliation(
            account, venue=outcome.venue, trigger=outcome.trigger, at=outcome.at, ok=outcome.ok,
            adopted=outcome.adopted, booked_fills=outcome.booked_fills,
            findings=[f.to_dict() for f in outcome.findings], run_id=run_id))

    return write


__all__ = ["reconcile_store", "store_writer"]
