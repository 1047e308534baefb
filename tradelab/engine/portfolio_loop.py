"""The engine for a :class:`~tradelab.strategy.portfolio.PortfolioStrategy`: one step per time stamp.

A portfolio decides on the whole universe at once, so the engine acts once per
time stamp, after it has every symbol's bar of that time stamp.

**When a time stamp is complete.** A replay is wrapped in :class:`TimestampBatches`,
which groups the bars the feed delivers consecutively with the same time. A replay
(:class:`~tradelab.feeds.replay.ReplayFeed` over several symbols) delivers bars merged
in time order, so a time stamp is complete when the first bar of a later time stamp
arrives or the feed ends; a symbol without a bar then is missing at that time stamp
(the alignment rule of :mod:`tradelab.data.universe`: its last close is held and it is
not traded). A live multi-symbol feed (``App.portfolio_engine(feed=...)``, ``tradelab
paper STRATEGY --feed ...``) delivers a time stamp's bars interleaved, in any symbol
order, and a symbol may be late or silent: it is wrapped in
:class:`~tradelab.feeds.stamps.LiveStamps`, whose rule is: *t* is complete when every
symbol delivered its bar for *t*, or ``[feeds] stamp_cutoff`` seconds (default 5) after
the first bar of *t* arrived, or when a bar of a later time stamp arrives, or at the
end of the feed (or a stop); a symbol without a bar then is missing, as above; a bar
for a time stamp already complete is late: not applied, counted, logged and recorded
by the data-quality gate (``dropped``/``late_bar``); a stop completes the time stamp
pending (:meth:`PortfolioEngine._shutdown` when it came during a step). Its batches list the bars in
universe order, as a replay's, so a live run trades like the replay of the bars it
applied (``tests/integration/test_portfolio_live_feed.py``).

**A step** (time stamp *t*, bars of the symbols that have one):

1. A decision pending from *t-1* (``fill="next_open"``) is sized now, at *t*'s opens
   (on close-only data the open is the close, so it fills at *t*'s close):
   :meth:`Rebalancer.orders` calls :func:`~tradelab.orders.rebalance.rebalance` with
   the book's positions and cash, at the prices the orders fill at — research's
   convention (orders sized at the fill price, like bt and like the paper broker's
   percent entries sized at fill). The orders (one per symbol, sells first) go through
   the normal pipeline in list order (risk → write-ahead order row → broker), decided on
   ``created_at = t-1``; the paper broker fills them in this time stamp's open phase,
   the symbols with orders first, in the orders' order, so sells fund the buys.
2. The bars are appended to the :class:`~tradelab.engine.rebalancer.Rebalancer`'s
   panel; on a rebalance bar the strategy's weights on everything seen are the targets.
   With ``fill="close"`` they are sized at *t*'s closes and filled in the close phase;
   otherwise they wait for step 1 of the next time stamp (none on the last bar).
3. On the store poll (as the kill switch): the dashboard's close requests
   (:func:`~tradelab.engine.closer.act_on_close_requests`), one FLATTEN order per
   requested symbol held, priced at *t*'s close and filled at the next time stamp's
   open. Until it fills, a rebalance does not trade that symbol; after it, the next
   rebalance may establish the position again (the strategy's targets still say hold).
4. Every symbol is marked at its close; one equity point, one stored snapshot and one
   progress mark per time stamp (``run_bars`` keeps every bar).

**At a real venue** (``App.portfolio_engine(broker=...)`` with a broker that is not
simulated) the fill prices are unknown when the orders leave: a decision is sized at its
time stamp's closes, whatever ``fill`` says, on the venue's lot grid; its sells leave
first and its buys, across later steps, once the venue desk's news says every sell is
final, sized on the cash held then (:mod:`tradelab.engine.live_rebalance`). Steps 1 and
3-4 are as above; the venue's reports replace the paper broker's open and close phases.

**Resume** (``App.portfolio_engine(resume=RUN)``): the book, orders and broker come back
from the store like any run's; the panel is rebuilt from the replay's bars up to the
last processed time stamp and the decision taken on it is pending again (same client
order ids, so an order already written ahead is not sent twice). At a real venue the
panel is rebuilt from the bars the run applied and the decision in progress at the
crash comes back from its stored orders (:mod:`tradelab.engine.live_resume`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

import structlog

from tradelab.engine.closer import act_on_close_requests
from tradelab.engine.live_rebalance import SIZING, VenueRebalance
from tradelab.engine.live_resume import StoredRun, in_progress, replay_panel, stamps
from tradelab.engine.loop import Engine
from tradelab.engine.rebalancer import Rebalancer
from tradelab.errors import halt_reason
from tradelab.interfaces import Bar
from tradelab.money import MONEY_CONTEXT, book
from tradelab.orders.model import Order, client_order_id
from tradelab.orders.rebalance import OrderIntent
from tradelab.risk.manager import FLATTEN, FLATTEN_MARK

log = structlog.get_logger("tradelab.engine")


class TimestampBatches:
    """A feed of bars as a feed of time stamps: lists of the bars with one time
    (consecutive in the underlying feed; see the module docstring)."""

    def __init__(self, feed: Any) -> None:
        self.feed = feed

    @property
    def start_after(self) -> Any:
        """The underlying replay's resume point (set by a resume)."""
        return getattr(self.feed, "start_after", None)

    @start_after.setter
    def start_after(self, value: Any) -> None:
        self.feed.start_after = value

    def close(self) -> None:
        """Stop after the current time stamp."""
        close = getattr(self.feed, "close", None)
        if close is not None:
            close()

    def history(self, symbol: str, through: datetime | None, n: int) -> Any:
        return self.feed.history(symbol, through, n)

    def __iter__(self) -> Iterator[list[Bar]]:
        batch: list[Bar] = []
        for bar in self.feed:
            if batch and bar[1] != batch[0][1]:
                yield batch
                batch = []
            batch.append(bar)
        if batch:
            yield batch


class PortfolioEngine(Engine):
    """An :class:`~tradelab.engine.loop.Engine` whose step is one time stamp of a universe.

    Built by :meth:`tradelab.app.App.portfolio_engine` through
    :func:`tradelab.app.wiring.assemble_engine` (``factory=``); ``rebalancer`` decides.
    The feed must yield lists of bars (:class:`TimestampBatches`). ``stored``: a resumed
    run at a real venue, its bars and orders from the store (engine.live_resume).

    Raises
    ------
    ValueError
        A resume at a real venue without its stored bars and orders (no store).
    """

    def __init__(self, rebalancer: Rebalancer, *args: Any, stored: StoredRun | None = None,
                 **kwargs: Any) -> None:
        super().__init__([], *args, **kwargs)
        #: At a real venue: the decisions worked sells first (engine.live_rebalance).
        self.live: VenueRebalance | None = None
        #: Client ids the run wrote before this process: never written or sent again.
        self.written: set[str] = set()
        if not self._simulated:
            if self.resumed_from is not None and stored is None:
                raise ValueError(f"resume = {self.run_id}: a portfolio run at a real venue "
                                 "resumes from its stored bars and orders (a store is needed)")
            self.live = VenueRebalance(self)
            log.warning("portfolio_live_sizing", venue=self.broker.name, sizing=SIZING)
        self.rebalancer = rebalancer
        self.name = rebalancer.strategy.name
        self._pending: tuple[datetime, dict] | None = None
        self._fill_open = self.execution.fill == "next_open" and self.live is None
        if self.live is not None and stored is not None:
            self._restore_live(stored)
        elif self.resumed_from is not None:
            self._restore(self.resumed_from)

    def _restore_live(self, stored: StoredRun) -> None:
        """A resumed run at a real venue: the panel from the bars it applied, the decision
        working and the one waiting from its stored orders (engine.live_resume)."""
        assert self.live is not None
        symbols, through = self.rebalancer.symbols, self.resumed_from
        # The bars up to the run's last processed time stamp: the feed delivers the next.
        rows = [] if through is None else [r for r in stored.bars if r["at"] <= through]
        decided = replay_panel(self.rebalancer, stamps(rows, symbols))
        self.written = {o.client_order_id for o in stored.orders}
        run, name = str(self.run_id), self.name
        self.live.restore(*in_progress(decided, self.written, symbols,
                                       lambda s, at, side: client_order_id(run, name, s, at, side)))

    def _restore(self, through: datetime) -> None:
        """A resumed run: the panel again from the replay's bars up to the last processed
        time stamp, and the decision taken on it (pending under next-open fills)."""
        stamps: dict[Any, list[Bar]] = {}
        for sym in self.rebalancer.symbols:
            frame = self.feed.history(sym, through, 10**9)
            for t, row in zip(frame.index.to_pydatetime(), frame[
                    ["open", "high", "low", "close", "volume"]].itertuples(index=False),
                    strict=True):
                stamps.setdefault(t, []).append(Bar(sym, t, *row))
        times = sorted(stamps)
        desk = self.rebalancer
        for i, t in enumerate(times):
            desk.add(t, stamps[t])
            if desk.schedule == "change" or i == len(times) - 1:
                decided = desk.targets()  # "change" compares with the previous bar's weights
                if i == len(times) - 1 and decided is not None and self._fill_open:
                    self._pending = (t, decided)

    def step(self, bar: Any) -> None:
        """Process one time stamp (a list of bars with one time)."""
        bars = cast(list[Bar], bar)
        self._t0 = self._timer()
        t = bars[0][1]
        self.clock.advance(t)
        self.bars += len(bars)
        desk, manager, venue = self.rebalancer, self.orders, self._venue
        if self.live is not None:
            self._live_step(t, bars)
            self._after(t, bars)
            return
        desk.add(t, bars)
        first: list[str] = []
        if self._pending is not None:
            decided, targets = self._pending
            self._pending = None
            first = self._send(decided, targets, fill_open=True)
        for b in _ordered(bars, first):
            for update in venue.on_bar(b[0], t, b[2], b[3], b[4], b[5], b[6], "open"):
                manager.apply(update)
        if self._flatten and self.kill_switch.engaged:
            for b in bars:
                self._do_flatten(b[0], t, b[5])
        first = []
        if not self.kill_switch.engaged:
            chosen = desk.targets()
            if chosen is not None:
                if self._fill_open:
                    self._pending = (t, chosen)
                else:
                    first = self._send(t, chosen, fill_open=False)
        for b in _ordered(bars, first):
            for update in venue.on_bar(b[0], t, b[2], b[3], b[4], b[5], b[6], "close"):
                manager.apply(update)
        self._after(t, bars)

    def _live_step(self, t: datetime, bars: list[Bar]) -> None:
        """A real venue's part of a step: its news, then the decision working (its buys once
        its sells are final), then this time stamp's decision (engine.live_rebalance)."""
        assert self.live is not None and self.desk is not None
        reason = self.desk.news(self._t0, t)
        if reason is not None and self.halt_reason is None:
            self.halt_reason = reason
        self.rebalancer.add(t, bars)
        if self.halt_reason is not None:
            return  # the run halts after this step: nothing more leaves
        self._guarded(self.live.progress)
        if self._flatten and self.kill_switch.engaged:
            for b in bars:
                self._do_flatten(b[0], t, b[5])
        if not self.kill_switch.engaged:
            chosen = self.rebalancer.targets()
            if chosen is not None:
                self._guarded(self.live.decide, t, chosen)

    def _after(self, t: datetime, bars: list[Bar]) -> None:
        """The end of a step: the store poll (kill switch, close requests), marks, records."""
        if (self.store_backed and self._t0 >= self._next_kill_poll):
            self._next_kill_poll = self._timer() + self.config.kill_poll_seconds
            if self.kill_switch.refresh() and self.kill_switch.reason.startswith(FLATTEN_MARK):
                self._flatten = True
                for b in bars:
                    self._do_flatten(b[0], t, b[5])
            # the dashboard's "Close", priced at this close (engine.closer)
            act_on_close_requests(self, t, {b[0]: b[5] for b in bars})
        pf = self.portfolio
        for b in bars:
            pf.mark(b[0], b[5])
        cash, value = pf.cash, pf.positions_value
        equity = MONEY_CONTEXT.add(cash, value) if value else cash
        self.risk.on_equity(t, equity)
        self.curve.append((t, float(equity)))
        rec = self.recorder
        if rec is not None:
            rec.snapshot(t, cash, value, equity)
            for b in bars:
                rec.record_bar(b)
            rec.end_bar(t)

    def _shutdown(self, status: str) -> None:
        # A stop completes a live feed's pending time stamp (its bars arrived before the
        # stop; feeds.stamps): stopped while waiting, the feed itself delivered it; stopped
        # during a step, the loop left it pending. A replay has nothing pending.
        drain = getattr(self.feed, "drain", None)
        if status == "stopped" and self.halt_reason is None and drain is not None:
            try:
                for batch in drain():
                    self.step(batch)
            except Exception as exc:  # the run ends failed, like any step that raises
                status = "failed"
                self.halt_reason = halt_reason(exc)
        super()._shutdown(status)

    def _send(self, decided: datetime, targets: dict, *, fill_open: bool) -> list[str]:
        """Size the decision at the current time stamp's fill prices and send its orders."""
        prices, tradable = self.rebalancer.row(fill_open)
        orders = self.intents(targets, prices, tradable)
        for intent in orders:
            self.submit(intent, decided, prices)
        return [o.symbol for o in orders]

    def intents(self, targets: dict, prices: dict, tradable: set[str]) -> list[OrderIntent]:
        """The orders that move the book as it is now to ``targets``, sized at ``prices``."""
        pf = self.portfolio
        positions = {s: p.quantity for s, p in pf.positions.items() if p.quantity}
        orders = self.rebalancer.orders(targets, positions, pf.cash, prices, tradable)
        # A symbol being closed on request (a working FLATTEN order, engine.closer) is not
        # traded by this decision, sized before the close fills; the next rebalance may
        # buy it back.
        closing = {o.symbol for o in self.orders.open_orders() if o.strategy == FLATTEN}
        if closing:
            orders = [o for o in orders if o.symbol not in closing]
        return orders

    def submit(self, intent: OrderIntent, decided: datetime, prices: dict) -> str:
        """One order of a decision through the pipeline (guarded); its client order id."""
        cid = client_order_id(str(self.run_id), self.name, intent.symbol, decided, intent.side)
        self._guarded(self._submit, cid, intent, decided, prices)
        return cid

    def _submit(self, cid: str, intent: OrderIntent, decided: datetime, prices: dict) -> None:
        if cid in self.orders.orders:
            self.orders.submit(cid, started=self._t0)
            return
        if cid in self.written:  # written by the process before a resume, final since
            return
        order = Order(cid, self.account, self.name, intent.symbol, intent.side, intent.quantity,
                      decided, estimate=intent.quantity,
                      reference_price=book(prices[intent.symbol]), run_id=str(self.run_id))
        self.orders.add(order)

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        if self.live is not None:  # how a real venue's orders were sized (live_rebalance)
            out["sizing"] = SIZING
            out["rebalances_done"] = self.live.done
            out["rebalance_unfinished"] = self.live.busy
        return out


def _ordered(bars: list[Bar], first: list[str]) -> list[Bar]:
    """The bars of the symbols in ``first`` in that order, then the others."""
    if not first:
        return bars
    rank = {s: i for i, s in enumerate(first)}
    return sorted(bars, key=lambda b: rank.get(b[0], len(rank)))


__all__ = ["PortfolioEngine", "TimestampBatches"]
