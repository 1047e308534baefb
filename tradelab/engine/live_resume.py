"""Resuming a portfolio run at a real venue: its panel and its decision in progress, from
the durable rows (``App.portfolio_engine(broker=..., resume=RUN)``, ``tradelab live
PORTFOLIO --resume RUN``).

The start is a single-symbol live resume's (:mod:`tradelab.app.recovery`): the book and
the open orders come back from the store, the venue is reconciled before the first time
stamp (fills that happened while the engine was down are booked; reconciliation never
sends orders) and the feed continues after the run's last processed time stamp. What is
the portfolio's own:

* **The panel** is rebuilt from the bars the run applied (its ``run_bars``, time stamp
  by time stamp), not from the feed's history: a venue's history starts earlier than the
  run did, and the rebalance schedule counts the run's own time stamps
  (:mod:`tradelab.engine.rebalancer`), so only the run's bars give its decisions again.
* **The decisions** are a deterministic function of the bars: replaying the panel gives
  each decision's time stamp, targets and prices (that time stamp's closes) again.
* **The decision in progress** is told from the orders written ahead (every order's row
  is durable before it leaves), whose client ids are a function of (run, strategy,
  symbol, decision time stamp, side) (:func:`~tradelab.orders.model.client_order_id`).
  The last decision with a stored order is the one that was working:

  - its sells stored but none of its buys: it comes back with those sells; its buys
    leave once every sell is final (the reconciliation or the venue desk's news says
    so), sized on the cash then, under the ids they would have had;
  - a buy stored too: its buy phase ran; it comes back done, or waiting for its buys'
    final reports (which the desk and the reconciliation provide). A crash *between*
    two buys of one phase (inside one step) loses the buys after it: the phase is not
    re-run, because a new buy sized on the book of then could name a symbol the phase
    did not buy. The next decision trades the difference.

  The last decision after it (none stored) was waiting (one decision at a time, a newer
  one replaces a waiting one) or started with nothing to trade; it comes back waiting.
  Re-running a decision that traded nothing is harmless: nothing changed the book
  since, so the same targets at the same prices again size nothing.
* **Never twice**: an order id already written by the run is never written or sent
  again (:attr:`PortfolioEngine.written
  <tradelab.engine.portfolio_loop.PortfolioEngine.written>`): an open one is in the
  restored book (sent again only if it was never acknowledged, which the venue
  dedupes), a final one is skipped. This also covers a crash inside a time stamp's step
  (the step is replayed: its decision's orders already written are not repeated).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradelab.engine.live_rebalance import Decision
from tradelab.interfaces import Bar


@dataclass(frozen=True)
class StoredRun:
    """What a resumed portfolio run at a real venue reads from the store.

    Attributes
    ----------
    bars
        The bars the run applied (``run_bars`` rows: ``symbol, at, open, high, low,
        close, volume``), in time order.
    orders
        The run's order rows (anything with ``client_order_id``).
    """

    bars: Sequence[dict[str, Any]]
    orders: Sequence[Any]


@dataclass(frozen=True)
class Decided:
    """A decision found again on the rebuilt panel."""

    at: datetime
    targets: dict[str, Decimal]
    prices: dict[str, Decimal]
    tradable: set[str]

    def decision(self, sells: list[str] | None = None, buys: list[str] | None = None) -> Decision:
        """As a :class:`~tradelab.engine.live_rebalance.Decision` with these order ids."""
        return Decision(self.at, self.targets, self.prices, set(self.tradable),
                        list(sells or []), buys)


def stamps(rows: Sequence[dict[str, Any]], symbols: Sequence[str]) -> list[list[Bar]]:
    """``run_bars`` rows as the run's time stamps: lists of bars in universe order."""
    rank = {s: i for i, s in enumerate(symbols)}
    out: dict[datetime, list[Bar]] = {}
    for r in rows:
        if r["symbol"] in rank:
            out.setdefault(r["at"], []).append(Bar(r["symbol"], r["at"], r["open"], r["high"],
                                                   r["low"], r["close"], r["volume"]))
    return [sorted(out[t], key=lambda b: rank[b[0]]) for t in sorted(out)]


def replay_panel(rebalancer: Any, batches: Sequence[list[Bar]]) -> list[Decided]:
    """Add each time stamp to ``rebalancer``'s panel; the decisions it takes on the way,
    at each one's closes (what a live step sizes a decision at)."""
    decided = []
    for bars in batches:
        t = bars[0][1]
        rebalancer.add(t, bars)
        targets = rebalancer.targets()  # every time stamp: "change" compares with the last
        if targets is not None:
            prices, tradable = rebalancer.row(False)
            decided.append(Decided(t, targets, prices, tradable))
    return decided


def in_progress(decided: Sequence[Decided], written: set[str], symbols: Sequence[str],
                cid: Callable[[str, datetime, str], str]) -> tuple[Decision | None, Decision | None]:
    """The working and the waiting decision at the crash (module docstring's rule).

    Parameters
    ----------
    decided
        The decisions of the rebuilt panel, in time order.
    written
        The client ids of the run's stored orders.
    symbols
        The universe.
    cid
        ``(symbol, decision time, side) -> client order id`` of the run.
    """
    last = None
    ids: dict[str, list[str]] = {}
    for k in range(len(decided) - 1, -1, -1):
        at = decided[k].at
        ids = {side: [c for s in symbols if (c := cid(s, at, side)) in written]
               for side in ("sell", "buy")}
        if ids["sell"] or ids["buy"]:
            last = k
            break
    working = None if last is None else \
        decided[last].decision(ids["sell"], ids["buy"] or None)
    later = decided[last + 1:] if last is not None else decided
    waiting = later[-1].decision() if later else None
    return working, waiting


__all__ = ["Decided", "StoredRun", "in_progress", "replay_panel", "stamps"]
