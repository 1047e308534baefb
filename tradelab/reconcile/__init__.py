"""Reconciliation with a venue: the venue is the truth, and reconciliation never sends an order.

* :class:`Reconciler` (the running engine): books what the venue did that the
  book missed, reports venue orders it does not hold, compares positions and
  cash, and adopts the venue's state only when the operator asks.
* :func:`reconcile_store` (no engine running, ``tradelab broker reconcile``): the
  same comparison of the *store* with the venue, report only.
* :func:`store_writer`: stores each outcome (``reconciliations``).

Outcomes are :class:`Reconciliation` objects holding :class:`Finding` objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradelab._lazy import lazy_exports

if TYPE_CHECKING:  # the real names, for the type checker; at run time they load on first use
    from tradelab.reconcile.model import KINDS, Finding, Reconciliation, is_ours, quote_asset_of
    from tradelab.reconcile.offline import reconcile_store, store_writer
    from tradelab.reconcile.reconciler import ADOPTED, Reconciler

_EXPORTS = {
    "KINDS": "model", "Finding": "model", "Reconciliation": "model", "is_ours": "model",
    "quote_asset_of": "model",
    "reconcile_store": "offline", "store_writer": "offline",
    "ADOPTED": "reconciler", "Reconciler": "reconciler",
}
__all__ = ["ADOPTED", "KINDS", "Finding", "Reconciler", "Reconciliation", "is_ours", "quote_asset_of",
           "reconcile_store", "store_writer"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
