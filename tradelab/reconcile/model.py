"""What a reconciliation found, and the comparisons shared by the engine and the store checks.

The venue is the truth. A :class:`Reconciliation` is the outcome of one
comparison of a book (the running engine's, or the store's) with a venue; its
:class:`Finding` objects name each difference. Kinds:

``missed_fill``
    The venue filled more of an order than the book knew (booked by the engine).
``order_state``
    The venue's state of an order differs from the book's (caught up by the engine).
``pending_resolved``
    An order whose submit answer was lost: the venue's answer says what became of it.
``not_at_venue``
    An order the book holds open that the venue has never seen (a ``pending`` or
    ``new`` one is sent again by the order manager, never by reconciliation).
``unknown_ours``
    A venue order with one of our client ids that the book does not hold
    (adopted into the book only when asked).
``foreign_order``
    A venue order placed by someone else (by hand, another program): reported, never touched.
``position_mismatch``
    The book's position differs from the venue's: the engine refuses to start
    unless the venue's quantity is adopted.
``foreign_position``
    A venue position in a symbol this engine does not trade (reported only).
``balance_mismatch``
    The book's cash differs from the venue's quote-asset balance (informational:
    an exchange account may hold more than this engine trades).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

#: Every finding kind, in the order a report lists them.
KINDS = ("missed_fill", "order_state", "pending_resolved", "not_at_venue", "unknown_ours",
         "foreign_order", "position_mismatch", "foreign_position", "balance_mismatch")
#: Kinds that say something about this engine's book; the others describe the venue
#: account around it and are not re-announced while they stay the same.
INFORMATIONAL = frozenset({"foreign_order", "foreign_position", "balance_mismatch"})
#: Prefix of the client order ids this engine makes (tradelab.orders.model.client_order_id).
OUR_PREFIX = "tl-"


def amount(value: Any) -> str:
    """A quantity or amount as text without the store's trailing zeros (``5``, ``0.013``)."""
    d = Decimal(value)
    return "0" if d == 0 else format(d.normalize(), "f")


def is_ours(client_order_id: str | None) -> bool:
    """Whether a venue order carries one of our client ids."""
    return bool(client_order_id) and str(client_order_id).startswith(OUR_PREFIX)


@dataclass(frozen=True, slots=True)
class Finding:
    """One difference between a book and the venue.

    Attributes
    ----------
    kind
        One of :data:`KINDS`.
    symbol, client_order_id
        What it is about (``None`` when not about a symbol or an order).
    store, venue
        What the book and the venue say, as text (a quantity, a state), or ``None``.
    detail
        One sentence for an operator; a finding the reconciliation acted on says
        what it did (``booked ...``, ``adopted ...``).
    """

    kind: str
    symbol: str | None = None
    client_order_id: str | None = None
    store: str | None = None
    venue: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain strings (what the store's JSON column holds)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Finding:
        return cls(str(row.get("kind") or ""), row.get("symbol"), row.get("client_order_id"),
                   row.get("store"), row.get("venue"), str(row.get("detail") or ""))


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The outcome of one reconciliation with a venue.

    Attributes
    ----------
    at
        When it ran (the caller's clock).
    venue
        The venue's name (``broker.name``).
    trigger
        ``start``, ``periodic`` or ``manual``.
    findings
        What differed (see the module doc for the kinds).
    booked_fills
        Fills the engine booked from venue reports during this run (0 for a store check).
    adopted
        Whether the venue's state was taken into the book (an order or a position).
    ok
        False when the book and the venue still disagree on a position.
    """

    at: datetime
    venue: str
    trigger: str
    findings: tuple[Finding, ...] = ()
    booked_fills: int = 0
    adopted: bool = False
    ok: bool = True

    def of_kind(self, kind: str) -> tuple[Finding, ...]:
        """The findings of one kind."""
        return tuple(f for f in self.findings if f.kind == kind)

    def summary(self) -> str:
        """One line: agreement or not, and the count of each kind found."""
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.kind] = counts.get(f.kind, 0) + 1
        found = ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: KINDS.index(kv[0])
                                                        if kv[0] in KINDS else len(KINDS)))
        head = "in agreement" if self.ok else "MISMATCH"
        extra = [f"{self.booked_fills} fill(s) booked"] if self.booked_fills else []
        if self.adopted:
            extra.append("venue state adopted")
        return "; ".join([f"{self.venue} ({self.trigger}): {head}", found or "nothing found", *extra])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO text)."""
        return {"at": self.at.isoformat(), "venue": self.venue, "trigger": self.trigger,
                "ok": self.ok, "adopted": self.adopted, "booked_fills": self.booked_fills,
                "findings": [f.to_dict() for f in self.findings]}


# -- comparisons shared by the engine's reconciler and the store check -----------------
def compare_positions(book: Mapping[str, Decimal], venue: Mapping[str, Decimal],
                      symbols: Collection[str] | None = None, *, side: str = "book") -> list[Finding]:
    """Per symbol, the book's signed quantity against the venue's (exact Decimal).

    ``symbols`` are the symbols this engine trades: a venue position outside them
    (and outside the book) is a ``foreign_position``, reported only. ``None``
    compares every symbol either side holds. ``side`` names the book in the
    details (``book`` for the engine's, ``store`` for the store's).
    """
    out: list[Finding] = []
    zero = Decimal(0)
    for sym in sorted(set(book) | set(venue)):
        mine, theirs = book.get(sym, zero), venue.get(sym, zero)
        if mine == theirs:
            continue
        if symbols is not None and sym not in symbols and not mine:
            out.append(Finding("foreign_position", sym, None, amount(mine), amount(theirs),
                               f"the venue holds {amount(theirs)} {sym}, a symbol this engine "
                               "does not trade"))
            continue
        out.append(Finding("position_mismatch", sym, None, amount(mine), amount(theirs),
                           f"{sym}: {side} {amount(mine)}, venue {amount(theirs)}"))
    return out


def compare_cash(cash: Decimal | None, balances: Mapping[str, Any],
                 quote_asset: str | None, *, side: str = "book") -> list[Finding]:
    """The book's cash against the venue's ``quote_asset`` balance (free + locked).

    Informational: an exchange account may hold more than this engine trades. No
    finding when ``quote_asset`` or ``cash`` is ``None`` (nothing to compare).
    """
    if quote_asset is None or cash is None:
        return []
    bal = balances.get(quote_asset)
    if bal is None:
        return [Finding("balance_mismatch", quote_asset, None, amount(cash), None,
                        f"the venue reports no {quote_asset} balance")]
    total = getattr(bal, "total", bal)
    if Decimal(total) == cash:
        return []
    return [Finding("balance_mismatch", quote_asset, None, amount(cash), amount(total),
                    f"{quote_asset}: {side} cash {amount(cash)}, venue balance {amount(total)}")]


def classify_venue_order(report: Any) -> Finding:
    """A venue open order the book does not hold: ours (by client id) or someone else's."""
    cid = report.client_order_id or None
    what = (f"{report.side} {amount(report.quantity)} {report.symbol} ({report.status}, "
            f"filled {amount(report.cum_quantity)}, venue id {report.venue_order_id})")
    if is_ours(cid):
        return Finding("unknown_ours", report.symbol, cid, None, report.status,
                       f"our client id, not in the book: {what}")
    return Finding("foreign_order", report.symbol, cid, None, report.status,
                   f"not ours, left alone: {what}")


def quote_asset_of(broker: Any, balances: Mapping[str, Any], default: str | None = None) -> str | None:
    """The venue asset the book's cash is compared with.

    The broker's own ``quote_asset`` (or ``quote``) when it declares one, else the
    only asset the venue reports (an Alpaca account, the paper broker's ``cash``),
    else ``default`` (``[live] quote``).
    """
    for attr in ("quote_asset", "quote"):
        value = getattr(broker, attr, None)
        if isinstance(value, str) and value:
            return value
    if len(balances) == 1:
        return next(iter(balances))
    return default


def alert_key(f: Finding) -> tuple[Any, ...]:
    """What makes a finding news: informational ones by what they are about, the
    others also by the values seen (a mismatch that changes is news again)."""
    if f.kind in INFORMATIONAL:
        return (f.kind, f.symbol, f.client_order_id)
    return (f.kind, f.symbol, f.client_order_id, f.store, f.venue)


__all__ = ["INFORMATIONAL", "KINDS", "OUR_PREFIX", "Finding", "Reconciliation", "alert_key", "amount",
           "classify_venue_order", "compare_cash", "compare_positions", "is_ours", "quote_asset_of"]
