"""A portfolio decision worked at a real venue: the sells first, the buys on what they left.

At a simulated venue (the paper broker) :class:`~tradelab.engine.portfolio_loop.PortfolioEngine`
sizes a decision at the prices its orders fill at, research's convention, because the
paper broker fills them in the same step. At a real venue
(``broker.simulated`` is False, e.g. :class:`~tradelab.brokers.ccxt_broker.CcxtBroker`)
the fill prices are unknown when the orders leave, so a decision is worked like this:

* **Sized at the decision's prices**: the closes of the time stamp it was decided on,
  whatever ``Execution.fill`` says (the orders leave on the decision's step and fill at
  the venue's next prices). Quantities are on the venue's lot grid: the engine's
  :class:`~tradelab.engine.rebalancer.Rebalancer` gets the venue's rules (lot step,
  minimum quantity and notional) as its ``lots``, so an order under a minimum is not sent.
* **Sells first**: the reducing orders (sells) leave on the decision's step. The buys
  wait, across later steps, until every sell is final at the venue (filled, cancelled,
  rejected or expired), as the venue desk's news brings it
  (:meth:`~tradelab.engine.venue.VenueDesk.news`: the order stream, or the venue asked
  when a report is late). Then they are sized on the book's cash and positions of that
  moment — the sells' real proceeds, after fees — at the same decision prices, and sent.
  A decision without sells sends its buys at once.
* **One decision at a time**: a decision taken while the previous one is still working
  waits (a newer one replaces a waiting one) and starts when the previous one is done,
  i.e. when its buys are final too.
* Every order goes through the normal pipeline (risk → write-ahead order row → broker),
  so its row is durable before it leaves; reconciliation never sends orders. A sell that
  did not fill (cancelled, partly filled) is not sent again by the buy phase: only its
  buys are; the next decision sells again. The kill switch drops the decision working
  (its orders at the venue are cancelled by the engine's halt).
* **Resumed** after a crash (:mod:`tradelab.engine.live_resume`): the decision working
  and the one waiting come back from the stored orders and the rebuilt panel
  (:meth:`VenueRebalance.restore`); a restored waiting decision with none working
  starts on the first step, after the start's reconciliation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from tradelab.orders.rules import VenueRules

log = structlog.get_logger("tradelab.engine")

#: What a live portfolio run's summary says about its sizing.
SIZING = ("decision closes: a real venue's fill prices are unknown when its orders leave, "
          "so orders are sized at the closes of the time stamp decided on; sells first, "
          "buys on the cash held once the sells are final")


@dataclass
class Decision:
    """One decision: its targets, the prices it is sized at and its orders' client ids."""

    decided: datetime
    targets: dict[str, Decimal]
    prices: dict[str, Decimal]
    tradable: set[str]
    sells: list[str] = field(default_factory=list)
    #: ``None`` until the buys are sent (after every sell is final).
    buys: list[str] | None = None


def venue_lots(broker: Any, symbols: Sequence[str]) -> dict[str, VenueRules]:
    """Each symbol's lot grid at ``broker``'s venue (its rules), for the rebalancer's ``lots``.

    Raises
    ------
    ValueError
        A symbol the venue does not list (named).
    """
    out = {}
    for s in symbols:
        rules = broker.rules(s)
        if rules is None:
            raise ValueError(f"symbol = {s!r}: not listed at the venue {broker.name}")
        out[s] = rules
    return out


class VenueRebalance:
    """The decisions of a :class:`~tradelab.engine.portfolio_loop.PortfolioEngine` at a
    real venue (module docstring).

    Parameters
    ----------
    engine
        The engine: its ``rebalancer``, ``orders``, ``kill_switch``, ``intents(...)``
        (the decision's orders on the book now) and ``submit(intent, decided, prices)``
        (one order through the pipeline; its client order id).
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        #: The decision being worked, and the one waiting for it to finish.
        self.working: Decision | None = None
        self.waiting: Decision | None = None
        #: Decisions whose sells and buys are all final.
        self.done = 0

    def decide(self, at: datetime, targets: dict[str, Decimal]) -> None:
        """A decision on time stamp ``at`` (the rebalancer's last), sized at its closes."""
        prices, tradable = self.engine.rebalancer.row(False)
        decision = Decision(at, targets, prices, tradable)
        if self.working is None:
            self._start(decision)
        else:
            if self.waiting is not None:
                log.info("portfolio_decision_replaced", decided=self.waiting.decided.isoformat(),
                         by=at.isoformat())
            self.waiting = decision

    def progress(self) -> None:
        """After the venue's news: the buys once the sells are final; the next decision
        once the buys are final too."""
        if self.engine.kill_switch.engaged:
            self.working = self.waiting = None
            return
        if self.working is None and self.waiting is not None:  # restored after a crash
            restored, self.waiting = self.waiting, None
            self._start(restored)
            return
        while self.working is not None:
            work = self.working
            if work.buys is None:
                if not self._final(work.sells):
                    return
                work.buys = self._send(work, "buy")
            if not self._final(work.buys):
                return
            self.done += 1
            self.working, waiting, self.waiting = None, self.waiting, None
            if waiting is not None:
                self._start(waiting)

    def restore(self, working: Decision | None, waiting: Decision | None) -> None:
        """A resumed run's decisions in progress (:func:`tradelab.engine.live_resume.in_progress`);
        nothing is sent before :meth:`progress`, i.e. after the start's reconciliation."""
        self.working, self.waiting = working, waiting
        log.info("portfolio_decision_restored",
                 working=None if working is None else working.decided.isoformat(),
                 sells=0 if working is None else len(working.sells),
                 buys=None if working is None or working.buys is None else len(working.buys),
                 waiting=None if waiting is None else waiting.decided.isoformat())

    @property
    def busy(self) -> bool:
        """A decision is working or waiting."""
        return self.working is not None or self.waiting is not None

    def _start(self, decision: Decision) -> None:
        self.working = decision
        decision.sells = self._send(decision, "sell")
        self.progress()  # no sells (or all refused): the buys leave now

    def _send(self, decision: Decision, side: str) -> list[str]:
        engine = self.engine
        intents = engine.intents(decision.targets, decision.prices, decision.tradable)
        selling = {i.symbol for i in intents if i.side == "sell"}
        if side == "buy" and selling:
            # A sell that did not fill would be sized again here, its proceeds counted
            # for the buys: the buys are sized without those symbols, on the cash held.
            intents = engine.intents(decision.targets, decision.prices,
                                     decision.tradable - selling)
        return [engine.submit(i, decision.decided, decision.prices) for i in intents
                if i.side == side]

    def _final(self, client_order_ids: list[str]) -> bool:
        book = self.engine.orders.orders
        return all(cid not in book or not book[cid].is_open for cid in client_order_ids)


__all__ = ["SIZING", "Decision", "VenueRebalance", "venue_lots"]
